"""Per-seed summaries of experiment rows (one dict per run): the values of a metric by seed, and
gains over scratch. The image sweep (``strategy`` rows, accuracy) and the wake-word arms (``arm``
rows, EER) use the same two functions."""
from __future__ import annotations

import torch
from torch import Tensor


def per_seed(rows: list[dict], key: str, **where: object) -> Tensor:
    """``key`` of the rows matching every ``field=value`` in ``where``, ordered by seed (float64)."""
    picked = sorted((r["seed"], r[key]) for r in rows if all(r.get(f) == v for f, v in where.items()))
    if not picked:
        found = sorted({tuple(r.get(f) for f in where) for r in rows}, key=str)
        raise ValueError(f"no runs with {where} among these rows ({', '.join(map(str, found))})")
    return torch.tensor([value for _, value in picked], dtype=torch.float64)


def gain_over(rows: list[dict], key: str, field: str, value: str, baseline: str = "scratch",
              lower_is_better: bool = False, **where: object) -> Tensor:
    """Per-seed gain, in points, of rows with ``field=value`` over those with ``field=baseline``:
    (value - baseline) x 100, or (baseline - value) x 100 for a metric where lower is better."""
    ours, theirs = per_seed(rows, key, **{field: value}, **where), per_seed(rows, key, **{field: baseline}, **where)
    if len(ours) != len(theirs):
        raise ValueError(f"{value!r} has {len(ours)} seeds but {baseline!r} has {len(theirs)}: compare like with like")
    return (theirs - ours if lower_is_better else ours - theirs) * 100
