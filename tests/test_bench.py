"""helpers.authoring.bench: the ratios are naive time / our time, of equal work, printed as JSON last."""
from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import types

import pytest
import torch
from torch import nn

from helpers import models, train
from helpers.authoring import bench

CPU = torch.device("cpu")
RATIOS = {"fit_vs_dataloader_features", "fit_vs_dataloader_conv", "feature_cache_speedup"}


def test_ratio_is_the_best_of_each_side_after_a_warm_up_the_sides_taking_turns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock, calls = {"now": 0.0}, []
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))

    def takes(name: str, *seconds: float):
        """A function whose successive calls take these (fake) seconds."""
        queue = list(seconds)

        def run() -> None:
            calls.append(name)
            clock["now"] += queue.pop(0)
        return run

    # the first call of each is the warm-up; a slow spell (9.0, 7.0) does not count
    naive, ours = takes("naive", 50.0, 6.0, 9.0, 5.0), takes("ours", 40.0, 2.5, 7.0, 2.0)
    assert bench.ratio(naive, ours, repeats=3) == pytest.approx(5.0 / 2.0)
    assert calls == ["naive", "ours"] * 4


def test_naive_loop_trains_exactly_like_fit_on_one_full_batch() -> None:
    """Same optimiser, schedule and loss: with one batch per epoch (no shuffling to differ) the
    textbook loop and ``train.fit`` end with the same weights, so the bench compares equal work."""
    gen = torch.Generator().manual_seed(0)
    X, y = torch.randn(64, 10, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    torch.manual_seed(0)
    naive_model = nn.Linear(10, 3)
    ours_model, initial = copy.deepcopy(naive_model), copy.deepcopy(naive_model)
    bench.naive_fit(naive_model, X, y, epochs=3, batch_size=64, seed=0, device=CPU)
    train.fit(ours_model, X, y, epochs=3, batch_size=64, device=CPU, progress=False)
    assert not torch.equal(naive_model.weight, initial.weight)  # it did train
    for name, value in naive_model.state_dict().items():
        assert torch.allclose(value, ours_model.state_dict()[name], atol=1e-6), name


def test_cached_features_path_trains_the_same_head() -> None:
    """feature_cache_speedup compares equal work: a head trained over the frozen backbone and one
    trained on its cached features end with the same weights."""
    X = torch.randn(48, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.arange(48) % 4
    torch.manual_seed(0)
    frozen = models.ImageCNN(4, width=4)
    models.freeze(frozen.features)
    head = copy.deepcopy(frozen.head)
    train.fit(frozen, X, y, epochs=2, batch_size=16, device=CPU, progress=False)
    train.fit(head, train.cached_features(frozen.features, X, device=CPU), y, epochs=2, batch_size=16,
              device=CPU, progress=False)
    assert torch.allclose(frozen.head.weight, head.weight, atol=1e-5)
    assert torch.allclose(frozen.head.bias, head.bias, atol=1e-5)


def test_command_prints_each_ratio_then_json_last() -> None:
    out = subprocess.run([sys.executable, "-m", "helpers.authoring.bench", "--json", "--images", "200",
                          "--repeats", "1"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    *lines, last = out.strip().splitlines()
    ratios = json.loads(last)
    assert set(ratios) == RATIOS
    assert all(math.isfinite(value) and value > 0 for value in ratios.values())
    printed = {line.split()[0]: float(line.split()[1].rstrip("x")) for line in lines if line.split()[0] in RATIOS}
    assert printed.keys() == ratios.keys()
    assert all(abs(printed[name] - ratios[name]) <= 0.005 + 1e-9 for name in ratios)  # same figures, rounded


def test_command_refuses_fewer_than_one_repeat() -> None:
    done = subprocess.run([sys.executable, "-m", "helpers.authoring.bench", "--repeats", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--repeats must be 1 or more" in done.stderr
