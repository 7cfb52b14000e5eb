"""The image experiments of the course, each load-or-build and keyed by its config.

* ``pretrained_backbone`` — the image recognizer trained on task A (cached under artifacts/).
* ``fine_tune`` — one transfer run: a strategy, a target size N_B and a seed.
* ``sweep`` — strategies x target sizes x seeds (notebook 03); ``reversed_sizes`` (notebook 05).

The data come from helpers.data.sources (generated, or real with ``TL_DATA=real``). Every
strategy, scratch included, uses the same recipe (RECIPE, a helpers.recipes.FineTuneRecipe): only
the initialisation and which parameters train differ. Pre-training on task A (PRETRAIN) augments
its images with random shifts and mirror images, as pre-training on photos does. Every cached
network and run is keyed by helpers.recipes.experiment_key. Run
``python -m helpers.experiments images --profile quick``.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from helpers import models, runs, runtime, train
from helpers.config import Profile, artifacts_dir, get_profile
from helpers.data import cache, images, sources
from helpers.data.subsets import stratified_subset
from helpers.recipes import FineTuneRecipe, PretrainRecipe, experiment_key
from helpers.results import atomic_write_text
from helpers.runtime import get_device

STRATEGIES = ("scratch", "last layer", "last block", "all layers")
# The near task asks how much of a pre-trained network to retrain; scratch answers another question
# (the X-ray sweep's) and its runs on the near task's 12,000 images cost 92 s of one worker (issue 17).
NEAR_STRATEGIES = ("last layer", "last block", "all layers")
EXPERIMENT_VERSION = 4  # bump when the code of an experiment changes (a recipe change re-keys by itself)

# One recipe for every strategy: the comparison is about initialisation, not tuning.
RECIPE = FineTuneRecipe()
# Pre-training augments task A (PretrainRecipe.max_shift, .flip). Measured on the quick profile:
# without it, a task A of 100 images is memorised and then costs 2-4 points when fine-tuning on
# 1,000 X-rays (-3.65 / -0.85 / -2.25 for seeds 0-2); with it, -1.1 / -0.1 / -0.75, and the big
# task A gives +8.3 instead of +6.4 at N_B = 100. Fine-tuning and scratch are not augmented.
# Shifts of 3, 4 and 6 px were tried. 4 was first picked on test figures, then checked on a
# validation split of task B's pool (1,500 X-rays outside every N_B <= 100 subset): gain at
# N_B = 50 / 100 of +9.9 / +5.1 (3 px), +11.8 / +6.2 (4 px), +10.4 / +6.6 (6 px).
PRETRAIN = PretrainRecipe()
# A seed replicates every random choice it can afford to: a task A of at most this many images
# (the 100 of the reversed sizes, whose claims read every seed) is pre-trained afresh for every
# seed (seconds); larger ones (the gain map's middle rows, the big task A) once, with seed 0, and
# shared: the fine-tuning seeds still vary the X-rays drawn and the new head (issue 17: the gain
# map's 3,000-image row per seed cost two more pre-trainings for a row that carries no claim).
PER_SEED_PRETRAIN_MAX = 1_000
# The shuffled-pixel task A of condition 3 (notebook 05) sees its images once: the control needs a
# network that learned its task (well above chance) from the same data, not the real task A's budget.
# Measured (quick, seeds 0-2, one-thread worker): 1 pass, 18.9 % on its test set, gain at N_B = 100
# -4.03 points (-4.10, -3.95, -4.05); 4 passes (the real task A's), 24.65 % and -4.15 (-3.65, -4.25,
# -4.55) for 4x the time (323 s against 89 s; issue 17).
SHUFFLED_PIXELS_EPOCHS = 1
# The learning curves (point 4) measure this many of task B's test images after every epoch (a
# fixed, class-balanced subset): 2,000 x 40 epochs cost 5x the training itself (issue 17).
CURVE_TEST_IMAGES = 500


def _scramble(X: Tensor, y: Tensor, variant: str, seed: int) -> tuple[Tensor, Tensor]:
    """Task-A variants for condition 3: keep the images but break what they can teach."""
    gen = torch.Generator().manual_seed(seed)
    if variant == "random labels":  # same images, labels that mean nothing
        return X, y[torch.randperm(len(y), generator=gen)]
    if variant == "shuffled pixels":  # same pixel values and labels, no spatial structure
        return X.flatten(1)[:, torch.randperm(X[0].numel(), generator=gen)].view_as(X), y
    if variant not in ("standard", "untrained", "not augmented", "photo crops"):
        raise ValueError(f"unknown task-A variant {variant!r}: use standard, not augmented, random labels, "
                         "shuffled pixels, untrained or photo crops")
    return X, y


def augments(variant: str) -> bool:
    """Whether pre-training augments this task-A variant. Not "shuffled pixels": its pixels are
    permuted once, so a shift or a mirror image would move every pixel to where the network has
    never seen it and leave nothing to learn; without augmentation it learns its task (notebook
    05 prints how well), so its useless features are not confused with "learned nothing". Nor
    "not augmented": the same task A without augmentation (notebook 05's optional experiment:
    a small task A memorised)."""
    return variant not in ("shuffled pixels", "not augmented")


def pretrain_recipe(profile: Profile) -> PretrainRecipe:
    """PRETRAIN with the profile's ``pretrain_min_samples``: the examples a small task A is shown at least.

    The quick profile's 20,000 (not 40,000) halves the 100- and 3,000-image pre-trainings (issue 17).
    Measured (a fresh clone's make test, quick, one-thread workers, 2026-12-07): each 100-image network
    15-16 s instead of 30 s, the 3,000-image one 17 s instead of 31 s (task A 44.95 % instead of 58.0 %);
    reversed sizes -0.33 points (-1.25, +0.25, 0.00; -0.33 before), the gain map at N_B = 100 +1.73 /
    +3.85 / +7.23 for N_A = 100 / 3,000 / 90,000 (+1.13 / +4.48 / +7.23 before): the claims that read
    them hold (README, "What the budgets buy"). Since 52b9e88 quick's gain map has no 3,000 row.
    """
    return dataclasses.replace(PRETRAIN, min_samples=profile.pretrain_min_samples)


def _pretrain_epochs(profile: Profile, n_task_a: int, variant: str = "standard") -> int:
    if variant == "shuffled pixels":
        return SHUFFLED_PIXELS_EPOCHS
    return pretrain_recipe(profile).epochs_for(n_task_a, profile.pretrain_epochs)


def task_a_spec(profile: Profile, n_task_a: int, variant: str = "standard") -> sources.DataSpec:
    """The images a task-A variant pre-trains on: task A's, or for "photo crops" a task A of
    photographs (sources.photo_crops_spec: crops of three photos; notebook 03 compares the two on
    real photographs)."""
    if variant == "photo crops":
        return sources.photo_crops_spec(profile, n_task_a)
    return sources.task_a_images_spec(profile, n_task_a)


def pretrained_key(profile: Profile, n_task_a: int, seed: int, variant: str) -> dict:
    """The cache key of a pre-trained image recognizer (part of the key of every run that uses it)."""
    data = task_a_spec(profile, n_task_a, variant)
    return experiment_key("pretrained_images", EXPERIMENT_VERSION, data=[data.key()],
                          recipes=[pretrain_recipe(profile)],
                          seed=seed, variant=variant, epochs=_pretrain_epochs(profile, n_task_a, variant),
                          width=profile.width, augmented=augments(variant))


def pretrained_backbone(profile: Profile, n_task_a: int | None = None, seed: int = 0,
                        variant: str = "standard", device: torch.device | None = None) -> tuple[nn.Module, dict]:
    """The image recognizer trained on task A: load it from artifacts/, or train and save it.

    Returns the model (on the CPU) and an info dict: test accuracy on task A, per-epoch
    history, training seconds, the number of task-A images and epochs.
    """
    n_task_a = n_task_a or profile.n_task_a
    epochs = _pretrain_epochs(profile, n_task_a, variant)
    spec = task_a_spec(profile, n_task_a, variant)
    # the photo-crop task keys its number of classes; task A's are named by the data source
    num_classes = spec.config["classes"] if variant == "photo crops" else len(sources.image_classes("A", profile))

    def build() -> dict:
        if variant != "untrained":
            runtime.announce_build(f"pre-training the image recognizer ({variant}) on {n_task_a:,} task-A images x "
                                   f"{epochs} epochs", n_task_a * epochs, profile.width, device)
        data = spec.load()
        X, y = _scramble(images.normalize(data["X"]), data["y"], variant, seed)
        # before the model is built: its initial weights come from this seed ("untrained", the
        # control of notebook 05, is never trained and must not share scratch's initial weights)
        torch.manual_seed(seed + (10_000 if variant == "untrained" else 0))
        model = models.ImageCNN(num_classes, width=profile.width)
        if variant == "untrained":
            model.to(device or get_device())
            history = train.History()
        else:
            augment = pretrain_augment if augments(variant) else None
            history = train.fit(model, X, y, epochs=epochs, seed=seed, device=device, augment=augment,
                                **PRETRAIN.optimiser())
        # the test images get the same pixel permutation; random labels are tested on true ones
        X_test, _ = _scramble(images.normalize(data["X_test"]), data["y_test"],
                              "shuffled pixels" if variant == "shuffled pixels" else "standard", seed)
        on = next(model.parameters()).device
        return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "test_accuracy": train.accuracy(model, train.to_device(X_test, on), data["y_test"].to(on)),
                "train_loss": history.train_loss, "seconds": history.seconds, "n_task_a": n_task_a,
                "epochs": epochs}

    config = pretrained_key(profile, n_task_a, seed, variant)
    payload = cache.load_or_build("pretrained_images", config, build, root=artifacts_dir())
    model = models.ImageCNN(num_classes, width=profile.width)
    model.load_state_dict(payload["state_dict"])
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


def pretrain_augment(X: Tensor, generator: torch.Generator) -> Tensor:
    """The augmentation of pre-training: a random shift and mirror image (see PretrainRecipe)."""
    return train.random_shift_flip(X, generator, max_shift=PRETRAIN.max_shift, flip=PRETRAIN.flip)


def epochs_for(n_examples: int, recipe: FineTuneRecipe | None = None) -> int:
    """Epochs of a fine-tuning run on ``n_examples`` (see FineTuneRecipe.epochs_for)."""
    return (recipe or RECIPE).epochs_for(n_examples)


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
        return models.ImageCNN(num_classes, width=width)
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
              recipe: FineTuneRecipe | None = None, curve: list[float] | None = None,
              curve_test_images: int | None = None) -> RunResult:
    """Train one strategy on (X, y) (normalised images) and measure it on (X_test, y_test).

    ``curve``: when given, the test accuracy after every epoch is appended to it, measured on
    ``curve_test_images`` of the test images (a fixed class-balanced subset; default all).
    """
    device, recipe = device or get_device(), recipe or RECIPE
    start = time.perf_counter()
    model = new_target_model(strategy, pretrained, int(y.max()) + 1, width, seed)
    frozen, trained = split_for_strategy(model, strategy)
    features = train.cached_features(frozen, X, device=device)
    measure = None
    if curve is not None:  # a fixed, class-balanced subset of the test set, measured every epoch
        subset = curve_test_images is not None and curve_test_images < len(y_test)
        index = stratified_subset(y_test, curve_test_images, 0) if subset else torch.arange(len(y_test))
        X_curve, y_curve = train.to_device(X_test[index], device), y_test[index].to(device)
        measure = lambda _: curve.append(train.accuracy(model, X_curve, y_curve))  # noqa: E731
    X_test, y_test = train.to_device(X_test, device), y_test.to(device)
    train.fit(trained, features, y, epochs=recipe.epochs_for(len(X)), seed=seed, device=device, progress=False,
              after_epoch=measure, **recipe.optimiser())
    accuracy = train.accuracy(model, X_test, y_test)
    return RunResult(strategy, len(X), seed, accuracy, time.perf_counter() - start,
                     models.count_parameters(trained, trainable_only=True))


EXERCISE_N_B = 300  # notebook 03's predict-run-explain exercise: the gain at a size between the sweep's
# task B (the X-rays), the near task (new objects drawn like task A's), real photographs (patches)
TARGETS = ("B", "near", "photos")
PHOTO_CHECK_SIZES = (40, 100)  # the real-photo check: 2 and 5 patches a photo (20 photos), issue 13's sizes
PHOTO_CHECK_STRATEGIES = ("scratch", "last layer", "all layers")  # "last layer": a linear probe of the features
# The task A of photographs (variant "photo crops", notebook 03) has this share of task A's images,
# pre-trained with the same recipe and passes. Measured (quick, seeds 0-2, one-thread worker, a
# prototype of this code, research/issue13_task_a/): 45,000 crops, 33 % on its test crops, 252 s of
# training beside two other processes; all layers minus scratch on the photo check +11.6 / +7.2 points
# at 2 / 5 a photo, linear probe +10.7, X-rays at N_B = 100 +3.8 — against +13.6 / +9.3, +11.8 and
# +1.9 from 90,000 crops, for half the time (issue 17).
PHOTO_CROPS_SHARE = 0.5


def _target_spec(profile: Profile, target: str) -> sources.DataSpec:
    specs = {"B": sources.task_b_images_spec, "near": sources.near_task_images_spec,
             "photos": sources.photo_patches_spec}
    if target not in specs:
        raise ValueError(f"unknown target task {target!r}: choose one of {', '.join(TARGETS)}")
    return specs[target](profile)


def _task_b_tensors(profile: Profile, target: str = "B") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    data = _target_spec(profile, target).load()
    return images.normalize(data["X"]), data["y"], images.normalize(data["X_test"]), data["y_test"]


def pretraining_seed(n_task_a: int | None, seed: int) -> int | None:
    """The seed of the pre-trained net a run of ``seed`` starts from (None: no pre-training)."""
    if n_task_a is None:
        return None
    return seed if n_task_a <= PER_SEED_PRETRAIN_MAX else 0


def run_key(profile: Profile, strategy: str, n_b: int, seed: int, n_task_a: int | None, variant: str,
            target: str = "B", kind: str = "run", **settings: object) -> dict:
    """The cache key of one fine-tuning run: the target task's data, the recipe, the run's settings
    and the key of the pre-trained network it starts from (None for scratch, which needs no task A).
    ``kind`` and ``settings`` name variants of the run (measured every epoch, another learning rate)."""
    pretrain_seed = pretraining_seed(n_task_a, seed)
    pretrained = None if n_task_a is None else pretrained_key(profile, n_task_a, pretrain_seed, variant)
    return experiment_key(kind, EXPERIMENT_VERSION, data=[_target_spec(profile, target).key()],
                          recipes=[RECIPE], strategy=strategy, n_b=n_b, seed=seed, width=profile.width,
                          pretrained=pretrained, **settings)


def _run_settings(profile: Profile, strategy: str, n_task_a: int | None, variant: str) -> tuple[int | None, str]:
    """(task-A size, variant) of a run as keyed: scratch has neither."""
    if strategy == "scratch":
        return None, "none"
    return n_task_a or profile.n_task_a, variant


def run_path(profile: Profile, strategy: str, n_b: int, seed: int, n_task_a: int | None = None,
             variant: str = "standard", target: str = "B") -> Path:
    """Where :func:`cached_run` keeps this run."""
    n_task_a, variant = _run_settings(profile, strategy, n_task_a, variant)
    return cache.entry_path("run", run_key(profile, strategy, n_b, seed, n_task_a, variant, target),
                            artifacts_dir())


def run_needs(profile: Profile, strategy: str, n_b: int, seed: int, n_task_a: int | None = None,
              variant: str = "standard", target: str = "B") -> list[Path]:
    """The cache entries a run builds or waits for: the run, and the pre-trained network it starts from."""
    paths = [run_path(profile, strategy, n_b, seed, n_task_a, variant, target)]
    n_task_a, variant = _run_settings(profile, strategy, n_task_a, variant)
    if n_task_a is not None:
        key = pretrained_key(profile, n_task_a, pretraining_seed(n_task_a, seed), variant)
        paths.append(cache.entry_path("pretrained_images", key, artifacts_dir()))
    return paths


def cached_run(profile: Profile, strategy: str, n_b: int, seed: int, n_task_a: int | None = None,
               variant: str = "standard", device: torch.device | None = None, target: str = "B") -> dict:
    """One fine-tuning run (a RunResult as a dict), loaded from artifacts/ when it was run before.

    Runs are cached one by one, so the sweep, the gain map and the counter-examples share every
    run they have in common (scratch does not depend on task A at all). ``target``: "B" (the
    X-rays) or "near" (new objects drawn like task A's).
    """
    n_task_a, variant = _run_settings(profile, strategy, n_task_a, variant)
    pretrain_seed = pretraining_seed(n_task_a, seed)
    config = run_key(profile, strategy, n_b, seed, n_task_a, variant, target)

    def build() -> dict:
        pretrained = None
        if strategy != "scratch":
            pretrained, _ = pretrained_backbone(profile, n_task_a=n_task_a, seed=pretrain_seed, variant=variant,
                                                device=device)
        X_pool, y_pool, X_test, y_test = _task_b_tensors(profile, target)
        index = stratified_subset(y_pool, n_b, seed)
        result = fine_tune(strategy, pretrained, X_pool[index], y_pool[index], X_test, y_test, seed,
                           width=profile.width, device=device)
        return asdict(result)

    return {**cache.load_or_build("run", config, build, root=artifacts_dir()), "n_a": n_task_a, "variant": variant}


def run_grid(profile: Profile, strategies: tuple[str, ...], target_sizes: tuple[int, ...],
             seeds: tuple[int, ...], n_task_a: int | None = None, variant: str = "standard",
             device: torch.device | None = None, target: str = "B") -> list[dict]:
    """Every (seed, N_B, strategy) combination; one dict per run (see RunResult)."""
    combos = [(seed, n_b, strategy) for seed in seeds for n_b in target_sizes for strategy in strategies]
    # runs another process is building right now (a second prepare worker) come last, then load
    order = cache.deferring(combos, lambda c: run_needs(profile, c[2], c[1], c[0], n_task_a, variant, target))
    rows = {combo: cached_run(profile, combo[2], combo[1], combo[0], n_task_a, variant, device, target)
            for combo in tqdm(order, total=len(combos), desc="runs", leave=False)}
    return [rows[combo] for combo in combos]


def sweep(profile: Profile, device: torch.device | None = None) -> list[dict]:
    """Strategies x target sizes x seeds on task B (notebook 03); runs cached under artifacts/."""
    return run_grid(profile, STRATEGIES, profile.target_sizes, profile.seeds, device=device)


def near_sweep(profile: Profile, device: torch.device | None = None) -> list[dict]:
    """The pre-trained strategies (NEAR_STRATEGIES) x sizes x seeds on the NEAR task (new objects
    drawn like task A's; notebook 03's other half of "how much to retrain"): the sizes are
    ``profile.near_target_sizes``."""
    return run_grid(profile, NEAR_STRATEGIES, profile.near_target_sizes, profile.seeds, device=device, target="near")


def photo_crops_size(profile: Profile) -> int:
    """How many images the task A of photographs ("photo crops") pre-trains on (see PHOTO_CROPS_SHARE)."""
    return max(1, round(profile.n_task_a * PHOTO_CROPS_SHARE))


def photo_check(profile: Profile, variant: str = "standard", device: torch.device | None = None) -> list[dict]:
    """Task A's features on real photographs: scratch, a linear probe of the frozen features ("last
    layer") and all layers fine-tuned, on 2 and 5 patches a photo (``PHOTO_CHECK_SIZES``) of the
    20 photos scikit-image ships; the same recipe and seeds as the X-rays. ``variant="photo crops"``:
    the network pre-trained on the task A of photographs instead of the drawn one (scratch is the same)."""
    n_task_a = photo_crops_size(profile) if variant == "photo crops" else None
    return run_grid(profile, PHOTO_CHECK_STRATEGIES, PHOTO_CHECK_SIZES, profile.seeds, n_task_a, variant,
                    device=device, target="photos")


def photo_crops_on_xrays(profile: Profile, n_b: int = 100, device: torch.device | None = None) -> list[dict]:
    """The other half of notebook 03's two-by-two: the task A of photographs fine-tuned (all layers)
    on ``n_b`` X-rays, with scratch; rows for "scratch" and "all layers"."""
    return run_grid(profile, ("scratch", "all layers"), (n_b,), profile.seeds, photo_crops_size(profile),
                    "photo crops", device=device)


def reversed_sizes(profile: Profile, n_task_a: int = 100, n_b: int = 1_000,
                   device: torch.device | None = None) -> list[dict]:
    """The counter-example: pre-train on only ``n_task_a`` images, fine-tune on ``n_b`` X-rays."""
    return run_grid(profile, ("scratch", "all layers"), (n_b,), profile.seeds, n_task_a, device=device)


def accuracies(rows: list[dict], strategy: str, n_b: int) -> Tensor:
    """Test accuracies (0-1) of one strategy at one N_B, ordered by seed."""
    return runs.per_seed(rows, "accuracy", strategy=strategy, n_b=n_b)


def transfer_gain(rows: list[dict], n_b: int, strategy: str = "all layers") -> Tensor:
    """Per-seed gain of ``strategy`` over scratch at ``n_b``, in percentage points."""
    return runs.gain_over(rows, "accuracy", "strategy", strategy, n_b=n_b)


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
    sources.task_b_images(profile)
    _, info = pretrained_backbone(profile)
    print(f"images: pre-trained on {info['n_task_a']} task-A images, "
          f"{info['test_accuracy']:.1%} on task A's test set ({info['seconds']:.0f} s of training)")


def prepare_retraining(profile: Profile) -> None:
    """Build notebook 03's experiments: the sweep on the X-rays and on the near task, the
    learning curves, the real-photo check from both task As (drawn, and photo crops, with the
    photo crops' X-ray runs) and the learning-rate schemes (a data_scripts/prepare.py step)."""
    # A second prepare worker walks these from the other end. The first measures the learning
    # curves first: they store the sweep's runs at N_B = 100 as they go. The second arrives while
    # task A may still be training: it starts with the task A of photographs, which needs no task A
    # (with the curves first, it waited 64 s for task A in a fresh clone's make test), and reaches
    # the curves last, when they are built.
    parts = [learning_curves, sweep, near_sweep, photo_check, lr_schemes,
             lambda p: run_grid(p, ("scratch", "all layers"), (EXERCISE_N_B,), p.seeds),  # notebook 03, exercise 2
             photo_crops_on_xrays, lambda p: photo_check(p, "photo crops")]
    for part in cache.in_worker_order(parts):
        part(profile)
    print(f"images: notebook 03's runs built ({len(profile.seeds)} seeds)")


def prepare_counterexamples(profile: Profile) -> None:
    """Build notebook 05's image experiments: reversed sizes, the gain map, a useless task A."""
    # a second prepare worker starts from the other end: the long shuffled-pixel pre-training first
    for part in cache.in_worker_order([reversed_sizes, untrained_control, gain_grid, useless_task_a]):
        part(profile)
    print(f"images: gain map over N_A {list(profile.grid_task_a_sizes)} x N_B {list(profile.grid_target_sizes)} built")


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
    # a second prepare worker starts from the largest task A: its smallest row shares runs with
    # reversed_sizes, which the first worker builds first (the second would wait for them)
    for i, size_a in cache.in_worker_order(enumerate(n_a)):
        tuned = run_grid(profile, ("all layers",), n_b, profile.seeds, size_a, device=device)
        rows += tuned
        gain[i] = torch.stack([transfer_gain(scratch + tuned, size_b).mean() for size_b in n_b])
    return {"n_a": list(n_a), "n_b": list(n_b), "gain": gain, "rows": rows}


def untrained_control(profile: Profile, n_b: int = 1_000, device: torch.device | None = None,
                      n_task_a: int = 100) -> list[dict]:
    """The noise floor of ``reversed_sizes``: the same transfer path (head replaced, all layers
    fine-tuned) from a network that was never trained, so it differs from scratch only by the
    draw of its random weights; rows for "scratch" and "all layers"."""
    return run_grid(profile, ("scratch", "all layers"), (n_b,), profile.seeds, n_task_a, "untrained", device)


def useless_task_a(profile: Profile, variant: str = "shuffled pixels", n_b: int = 100,
                   device: torch.device | None = None) -> list[dict]:
    """Condition 3: pre-train on a task A whose low-level features cannot help (same amount of
    data), then fine-tune all layers on ``n_b`` X-rays; rows for "scratch" and "all layers"."""
    return run_grid(profile, ("scratch", "all layers"), (n_b,), profile.seeds, variant=variant, device=device)


def _curve_key(profile: Profile, strategy: str, n_b: int, seed: int) -> dict:
    return run_key(profile, strategy, n_b, seed, *_run_settings(profile, strategy, None, "standard"), kind="curve",
                   curve_test_images=CURVE_TEST_IMAGES)


def learning_curve(profile: Profile, strategy: str, n_b: int, seed: int,
                   device: torch.device | None = None) -> list[float]:
    """Test accuracy on task B after every epoch of one run (cached), on CURVE_TEST_IMAGES of the
    test images: the run of the sweep with the same settings, measured along the way (the sweep's
    accuracy is on every test image). Built first, it stores that run for the sweep too, so the
    run is never trained twice."""
    n_task_a, variant = _run_settings(profile, strategy, None, "standard")
    config = _curve_key(profile, strategy, n_b, seed)

    def build() -> dict:
        pretrained = None if n_task_a is None else pretrained_backbone(profile, device=device)[0]
        X_pool, y_pool, X_test, y_test = _task_b_tensors(profile)
        index, curve = stratified_subset(y_pool, n_b, seed), []
        result = fine_tune(strategy, pretrained, X_pool[index], y_pool[index], X_test, y_test, seed,
                           width=profile.width, device=device, curve=curve, curve_test_images=CURVE_TEST_IMAGES)
        cache.load_or_build("run", run_key(profile, strategy, n_b, seed, n_task_a, variant), lambda: asdict(result),
                            root=artifacts_dir())  # the sweep's run: the same training, measured along the way
        return {"curve": curve}

    return list(cache.load_or_build("curve", config, build, root=artifacts_dir())["curve"])


def learning_curves(profile: Profile, n_b: int = 100, device: torch.device | None = None) -> dict[str, Tensor]:
    """Point 4, "learns faster": test accuracy per epoch [seeds, epochs] of "scratch" and of "all
    layers" (pre-trained, every layer fine-tuned) at ``n_b``, for the profile's seeds."""
    combos = [(strategy, seed) for strategy in ("scratch", "all layers") for seed in profile.seeds]
    order = cache.deferring(combos, lambda c: cache.entry_path("curve", _curve_key(profile, c[0], n_b, c[1]),
                                                                artifacts_dir()))
    curves = {combo: learning_curve(profile, combo[0], n_b, combo[1], device) for combo in order}
    return {strategy: torch.tensor([curves[strategy, seed] for seed in profile.seeds])
            for strategy in ("scratch", "all layers")}


def epochs_to_reach(curve: Tensor, target: float) -> int:
    """The first epoch (counting from 1) after which the mean ``curve`` reaches ``target``; past
    the end when it never does."""
    reached = torch.nonzero(curve >= target)
    return int(reached[0, 0]) + 1 if len(reached) else len(curve) + 1


# ----------------------------------------------------------------------------- learning rates
LR_SCHEMES = ("one rate", "discriminative", "two stages")
BACKBONE_LR_FACTOR = 0.1  # pre-trained layers at a tenth of the head's rate (d2l's fine-tuning, fastai)


def fine_tune_scheme(scheme: str, pretrained: nn.Module, X: Tensor, y: Tensor, X_test: Tensor, y_test: Tensor,
                     seed: int, width: int, device: torch.device | None = None) -> float:
    """Fine-tune every layer with a learning-rate ``scheme``, the same budget (RECIPE) for each:
    "one rate" for every layer; "discriminative" (pre-trained layers at BACKBONE_LR_FACTOR x the
    new head's rate); "two stages" (half the epochs train the new head on the frozen backbone,
    the other half every layer at the backbone's lower rate). Returns the test accuracy."""
    device = device or get_device()
    if scheme not in LR_SCHEMES:
        raise ValueError(f"unknown learning-rate scheme {scheme!r}: choose one of {', '.join(LR_SCHEMES)}")
    if scheme == "one rate":
        return fine_tune("all layers", pretrained, X, y, X_test, y_test, seed, width, device).accuracy
    model = new_target_model("all layers", pretrained, int(y.max()) + 1, width, seed)
    epochs, low = RECIPE.epochs_for(len(X)), RECIPE.lr * BACKBONE_LR_FACTOR
    settings = {"seed": seed, "device": device, "progress": False, "batch_size": RECIPE.batch_size,
                "weight_decay": RECIPE.weight_decay}
    if scheme == "discriminative":
        groups = models.parameter_groups(model, head_lr=RECIPE.lr, backbone_lr=low)
        train.fit(model, X, y, epochs=epochs, params=groups, **settings)
    else:
        head_epochs = epochs // 2
        models.freeze_backbone(model)
        train.fit(model.head, train.cached_features(model.features, X, device=device), y, epochs=head_epochs,
                  lr=RECIPE.lr, **settings)
        models.unfreeze(model)
        train.fit(model, X, y, epochs=epochs - head_epochs, lr=low, **settings)
    return train.accuracy(model, train.to_device(X_test, device), y_test.to(device))


def lr_schemes(profile: Profile, sizes: tuple[int, ...] | None = None, device: torch.device | None = None
               ) -> list[dict]:
    """Every learning-rate scheme x N_B x seed on the X-rays, from the big pre-trained network; one
    row per run ("scheme", "n_b", "seed", "accuracy"), cached one by one. ``sizes``: default
    ``profile.lr_scheme_sizes``."""
    sizes = sizes or profile.lr_scheme_sizes
    combos = [(seed, n_b, scheme) for seed in profile.seeds for n_b in sizes for scheme in LR_SCHEMES]
    order = cache.deferring(combos, lambda c: _scheme_path(profile, c[2], c[1], c[0]))
    rows = {combo: _scheme_run(profile, combo[2], combo[1], combo[0], device) for combo in order}
    return [rows[combo] for combo in combos]


def _scheme_key(profile: Profile, scheme: str, n_b: int, seed: int) -> dict:
    return run_key(profile, "all layers", n_b, seed, profile.n_task_a, "standard", kind="scheme_run",
                   scheme=scheme, backbone_lr_factor=BACKBONE_LR_FACTOR)


def _scheme_path(profile: Profile, scheme: str, n_b: int, seed: int) -> Path:
    if scheme == "one rate":
        return run_path(profile, "all layers", n_b, seed)
    return cache.entry_path("scheme_run", _scheme_key(profile, scheme, n_b, seed), artifacts_dir())


def _scheme_run(profile: Profile, scheme: str, n_b: int, seed: int, device: torch.device | None) -> dict:
    if scheme == "one rate":  # the sweep's "all layers" run: shared, not trained twice
        return {**cached_run(profile, "all layers", n_b, seed, device=device), "scheme": scheme}
    config = _scheme_key(profile, scheme, n_b, seed)

    def build() -> dict:
        pretrained, _ = pretrained_backbone(profile, device=device)
        X_pool, y_pool, X_test, y_test = _task_b_tensors(profile)
        index = stratified_subset(y_pool, n_b, seed)
        accuracy = fine_tune_scheme(scheme, pretrained, X_pool[index], y_pool[index], X_test, y_test, seed,
                                    profile.width, device)
        return {"strategy": "all layers", "n_b": n_b, "seed": seed, "accuracy": accuracy}

    return {**cache.load_or_build("scheme_run", config, build, root=artifacts_dir()), "scheme": scheme}


def scheme_gain(rows: list[dict], scheme: str, n_b: int) -> Tensor:
    """Per-seed gain, in points, of a learning-rate scheme over "one rate" at ``n_b``."""
    return runs.gain_over(rows, "accuracy", "scheme", scheme, baseline="one rate", n_b=n_b)


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
    model = new_target_model("all layers", pretrained, len(sources.image_classes("B", profile)), profile.width, seed)
    if properly:
        models.freeze(model.features)
    else:
        model.features.requires_grad_(False)
    X_pool, y_pool, X_test, y_test = _task_b_tensors(profile)
    index = stratified_subset(y_pool, n_b, seed)
    before = batchnorm_state(model)
    train.fit(model, X_pool[index], y_pool[index], epochs=RECIPE.epochs_for(n_b), seed=seed, device=device,
              progress=False, **RECIPE.optimiser())
    accuracy = train.accuracy(model, train.to_device(X_test, device), y_test.to(device))
    return {"batchnorm_drift": batchnorm_drift({k: v.to(device) for k, v in before.items()}, model),
            "accuracy": accuracy}


if __name__ == "__main__":
    main()
