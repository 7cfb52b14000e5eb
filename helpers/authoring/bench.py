"""Benchmarks of the training engine: ``python -m helpers.authoring.bench [--json]``.

Three ratios (higher is better), each "naive time / our time" on the same model, data, seed and
number of epochs:

* ``fit_vs_dataloader_features`` — a linear head on cached features: our ``fit`` (tensors on the
  device, batches by slicing) against a ``DataLoader(TensorDataset)`` loop;
* ``fit_vs_dataloader_conv`` — the same comparison for the image CNN;
* ``feature_cache_speedup`` — training a head over a frozen backbone that is recomputed every
  step, against computing the backbone's features once (``train.cached_features``).

Each ratio is the best of ``--repeats`` (5) timed calls of each side, the two taking turns.

The last line printed is one JSON object with the three ratios.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import models, train
from helpers.data import images
from helpers.runtime import get_device, reuse_freed_memory


def naive_fit(model: nn.Module, X: Tensor, y: Tensor, epochs: int, batch_size: int, seed: int,
              device: torch.device) -> None:
    """The textbook loop: a DataLoader over a TensorDataset on the CPU, per-sample collation, each
    batch copied to the device; torch's AdamW (fused kernel) with the schedule of ``train.fit``, and
    the forward pass in ``train.fit``'s arithmetic (bf16 autocast where it uses it): equal work."""
    torch.manual_seed(seed)
    model.to(device)
    loader = DataLoader(TensorDataset(X.cpu(), y.cpu()), batch_size=batch_size, shuffle=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=5e-4, fused=True)
    scheduler = train.one_cycle(optimizer, epochs * len(loader))
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            with train.autocast(device):
                loss = nn.functional.cross_entropy(model(xb.to(device)), yb.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


REPEATS = 5  # timed calls of each side: the best of five (with two, 7.7x and 11.8x for the same code)


def ratio(naive: Callable[[], object], ours: Callable[[], object], repeats: int = REPEATS) -> float:
    """naive seconds / our seconds: the best of ``repeats`` calls of each after one warm-up call of
    each, the two sides taking turns (so that a slow spell of the machine falls on both)."""
    naive(), ours()
    naive_seconds, our_seconds = [], []
    for _ in range(repeats):
        naive_seconds.append(timed(naive))
        our_seconds.append(timed(ours))
    return min(naive_seconds) / min(our_seconds)


def bench(n_images: int = 3_000, epochs: int = 2, device: torch.device | None = None,
          repeats: int = REPEATS) -> dict[str, float]:
    """Measure the three ratios on generated task-A images; returns them as a dict."""
    device = device or get_device()
    reuse_freed_memory()  # as the course's processes do (configure_threads); both sides alike
    X_uint8, y = images.make_task_a(n_images, seed=0)
    X = images.normalize(X_uint8)
    backbone = models.ImageCNN(len(images.TASK_A_CLASSES))
    features = train.cached_features(backbone.features, X, device=device).cpu()
    head = nn.Linear(features.shape[1], len(images.TASK_A_CLASSES))
    fit = lambda m, A, e: train.fit(m, A, y, epochs=e, batch_size=64, device=device, progress=False)  # noqa: E731
    new_net = lambda: models.ImageCNN(len(images.TASK_A_CLASSES))  # noqa: E731
    frozen = new_net()
    models.freeze(frozen.features)
    return {
        "fit_vs_dataloader_features": ratio(lambda: naive_fit(head, features, y, 20, 64, 0, device),
                                            lambda: fit(head, features, 20), repeats),
        "fit_vs_dataloader_conv": ratio(lambda: naive_fit(new_net(), X, y, epochs, 64, 0, device),
                                        lambda: fit(new_net(), X, epochs), repeats),
        "feature_cache_speedup": ratio(lambda: fit(frozen, X, 20),
                                       lambda: fit(frozen.head, train.cached_features(frozen.features, X), 20),
                                       repeats),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark the training engine.")
    parser.add_argument("--json", action="store_true", help="end with one JSON line (always printed last)")
    parser.add_argument("--images", type=int, default=3_000, help="task-A images to train on")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed calls of each side (the best counts)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be 1 or more, got {args.repeats}")
    results = bench(args.images, repeats=args.repeats)
    for name, value in results.items():
        print(f"{name:32s} {value:6.2f}x")
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))


if __name__ == "__main__":
    main()
