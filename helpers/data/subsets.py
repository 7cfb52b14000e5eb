"""Balanced subsets of a labelled data set (N_B X-rays for a sweep, the clips of a small task A)."""
from __future__ import annotations

import torch
from torch import Tensor


def stratified_subset(y: Tensor, n: int, seed: int, n_classes: int | None = None) -> Tensor:
    """Indices of ``n`` examples with (as nearly as possible) equal counts per class.

    ``n_classes``: draw from classes 0 .. n_classes - 1 only (default: every class in ``y``).
    """
    gen = torch.Generator().manual_seed(seed)
    n_classes = n_classes or int(y.max()) + 1
    per_class = [torch.nonzero(y == c)[:, 0] for c in range(n_classes)]
    shuffled = [idx[torch.randperm(len(idx), generator=gen)] for idx in per_class]
    # interleave classes, then take the first n: balanced up to one example
    order = torch.stack([s[: min(map(len, shuffled))] for s in shuffled], 1).flatten()
    if n > len(order):
        raise ValueError(f"asked for {n} examples of {n_classes} classes, but the pool holds {len(order)} balanced "
                         "ones: ask for fewer, or raise the pool's size in the profile (helpers/config.py)")
    return order[:n]
