"""The practitioner's recipe on a folder of your own images, and a command line for it.

    python -m helpers.transfer images DIR [--backbone resnet18|course] [--out model.pt]

trains a classifier for the classes of DIR (one sub-folder per class, see
:mod:`helpers.data.folders`), reports validation and test accuracy, and saves the model with its
class names. Notebook 06 runs the same functions step by step:

1. the lecture's surgery: delete the backbone's output layer (W[L], b[L]), new random head;
2. **head first** on the frozen backbone, with the backbone's features computed once (cached);
3. **then all layers** at discriminative learning rates (the pre-trained layers at a tenth of
   the head's rate) with target-side augmentation (random resized crop, mirror);
4. the epoch picked on the validation split (over both stages), the test split touched once;
5. the model saved atomically and reloaded with ``weights_only=True``; prediction on one file.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from helpers import backbones, models, train
from helpers.backbones import Backbone, Preprocess
from helpers.config import Profile
from helpers.data import folders
from helpers.runtime import get_device

MODEL_FORMAT = 1  # the layout of a saved model file; bump when it changes


@dataclass(frozen=True)
class FolderRecipe:
    """Fine-tuning a pre-trained backbone on a folder (and the scratch baseline), units in comments."""

    head_epochs: int = 30  # stage 1: the new head on cached features of the frozen backbone
    head_lr: float = 3e-3  # peak learning rate of stage 1 (AdamW, one-cycle)
    tune_epochs: int = 40  # stage 2: every layer, with augmentation
    tune_lr: float = 2e-3  # the head's peak rate in stage 2 ...
    backbone_lr_factor: float = 0.1  # ... and the pre-trained layers' rate: a tenth of it (ImageNet backbones)
    scratch_epochs: int = 50  # the baseline: the same network, random weights, all layers
    scratch_lr: float = 2e-3
    weight_decay: float = 5e-4
    batch_size: int = 32  # images per step
    crop_scale: tuple[float, float] = (0.35, 1.0)  # random resized crop: share of the image's area


# How far each backbone's features must move. ImageNet features suit most photographs: the
# pre-trained layers learn at a tenth of the head's rate (torchvision's and d2l's recipes). The
# course's CNN learned drawn objects; on X-rays its features must adapt (notebook 03, section 5:
# discriminative rates lost to one rate there), so its layers learn at the head's rate.
BACKBONE_LR_FACTORS = {"resnet18": 0.1, "course": 1.0}


def recipe_for(backbone: Backbone) -> FolderRecipe:
    """The default recipe with the backbone's learning-rate factor (BACKBONE_LR_FACTORS)."""
    return FolderRecipe(backbone_lr_factor=BACKBONE_LR_FACTORS.get(backbone.name, 0.1))


@dataclass
class FolderResult:
    """One trained classifier on a folder: the model, how it did, and how it got there."""

    model: nn.Module
    arm: str  # "fine-tuned <backbone>" or "scratch <architecture>"
    val_accuracy: float
    test_accuracy: float
    stage: str  # which stage's epoch the validation split picked
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def _split(folder: dict[str, Any], split: str, device: torch.device) -> tuple[Tensor, Tensor]:
    index = folder[split]
    return folder["X"][index].to(device), folder["y"][index].to(device)


def _check_fits(backbone: Backbone, folder: dict[str, Any]) -> None:
    channels, side = folder["X"].shape[1], folder["X"].shape[-1]
    pre = backbone.preprocess
    if channels != pre.channels or side != backbone.load_size:
        raise ValueError(f"the folder was read as {channels} channel(s) at {side} px but {backbone.name} wants "
                         f"{pre.channels} at {backbone.load_size} px: read it with "
                         f"load_folder(DIR, backbone) (or folders.load_image_folder(DIR, size={backbone.load_size}, "
                         f"channels={pre.channels}))")


def load_folder(root: str | Path, backbone: Backbone, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Read ``root`` at the size and colour mode ``backbone`` wants (cached)."""
    return folders.load_image_folder(root, size=backbone.load_size, channels=backbone.preprocess.channels,
                                     seed=seed, progress=progress)


def prepare(profile: Profile) -> None:
    """Build notebook 06's inputs (a data_scripts/prepare.py step): the sample folder, read for the
    course's network and, when its weights were fetched, for ResNet-18, so that a shared
    read-only store (deploy/README.md) holds what the notebook and its command line read."""
    sample = folders.write_sample_folder()
    names = ["course"] + (["resnet18"] if backbones.weights_available() else [])
    for name in names:
        backbone = backbones.load(name, profile, device=torch.device("cpu"))
        load_folder(sample, backbone, progress=False)
    print(f"your own images: the sample folder {sample}, read for {', '.join(names)}")


def fewer_training_images(folder: dict[str, Any], per_class: int, seed: int = 0) -> dict[str, Any]:
    """The folder with only ``per_class`` training images of each class (drawn with ``seed``);
    validation and test splits unchanged."""
    from helpers.data.subsets import stratified_subset

    train_labels = folder["y"][folder["train"]]
    counts = torch.bincount(train_labels, minlength=len(folder["classes"]))
    if not 1 <= per_class <= int(counts.min()):
        raise ValueError(f"per_class must be between 1 and {int(counts.min())} (the smallest class), got {per_class}")
    keep = stratified_subset(train_labels, per_class * len(folder["classes"]), seed, len(folder["classes"]))
    return {**folder, "train": folder["train"][keep]}


def new_model(backbone: Backbone, num_classes: int, seed: int) -> nn.Module:
    """A copy of the backbone with its output layer deleted and a new random head (the surgery)."""
    torch.manual_seed(seed)
    return models.replace_head(copy.deepcopy(backbone.model), num_classes)


def fine_tune(backbone: Backbone, folder: dict[str, Any], seed: int = 0, recipe: FolderRecipe | None = None,
              device: torch.device | None = None, progress: bool = False) -> FolderResult:
    """Head first on the frozen backbone, then all layers at discriminative rates; the best epoch kept.

    ``recipe``: default :func:`recipe_for` the backbone.
    """
    recipe, device = recipe or recipe_for(backbone), device or get_device()
    _check_fits(backbone, folder)
    start, pre = time.perf_counter(), backbone.preprocess
    model = new_model(backbone, len(folder["classes"]), seed).to(device)
    X_train, y_train = _split(folder, "train", device)
    X_val, y_val = _split(folder, "val", device)
    val_inputs = pre.evaluation(X_val)

    # stage 1: the head on cached features (the frozen backbone runs once, in eval mode)
    models.freeze(model.features)
    features = train.cached_features(model.features, pre.evaluation(X_train), device=device)
    val_features = train.cached_features(model.features, val_inputs, device=device)
    head = train.fit(model.head, features, y_train, epochs=recipe.head_epochs, lr=recipe.head_lr,
                     weight_decay=recipe.weight_decay, batch_size=recipe.batch_size, X_val=val_features,
                     y_val=y_val, seed=seed, device=device, progress=progress)
    after_head = copy.deepcopy(model.state_dict())

    # stage 2: every layer, the pre-trained ones at recipe.backbone_lr_factor x the head's rate, augmented
    models.unfreeze(model.features)
    groups = models.parameter_groups(model, head_lr=recipe.tune_lr,
                                     backbone_lr=recipe.tune_lr * recipe.backbone_lr_factor)
    tune = train.fit(model, X_train, y_train, epochs=recipe.tune_epochs, lr=recipe.tune_lr, params=groups,
                     weight_decay=recipe.weight_decay, batch_size=recipe.batch_size, X_val=val_inputs,
                     y_val=y_val, seed=seed, device=device, progress=progress,
                     augment=lambda X, g: pre.training(X, g, scale=recipe.crop_scale))
    stage = "all layers"
    if max(tune.val_accuracy, default=0.0) < max(head.val_accuracy, default=0.0):
        model.load_state_dict(after_head)  # fine-tuning never beat the head alone on validation
        stage = "head only"
    return FolderResult(model, f"fine-tuned {backbone.name}", _accuracy(model, pre, X_val, y_val),
                        evaluate(model, pre, folder, "test", device), stage,
                        {"head_val": head.val_accuracy, "tune_val": tune.val_accuracy,
                         "tune_loss": tune.train_loss}, time.perf_counter() - start)


def scratch(backbone: Backbone, folder: dict[str, Any], seed: int = 0, recipe: FolderRecipe | None = None,
            device: torch.device | None = None, progress: bool = False) -> FolderResult:
    """The backbone's architecture with random weights, every layer trained (augmented), best epoch kept."""
    recipe, device = recipe or FolderRecipe(), device or get_device()
    _check_fits(backbone, folder)
    start, pre = time.perf_counter(), backbone.preprocess
    torch.manual_seed(seed)
    model = backbones.architecture(backbone.build, len(folder["classes"])).to(device)
    X_train, y_train = _split(folder, "train", device)
    X_val, y_val = _split(folder, "val", device)
    history = train.fit(model, X_train, y_train, epochs=recipe.scratch_epochs, lr=recipe.scratch_lr,
                        weight_decay=recipe.weight_decay, batch_size=recipe.batch_size,
                        X_val=pre.evaluation(X_val), y_val=y_val, seed=seed, device=device, progress=progress,
                        augment=lambda X, g: pre.training(X, g, scale=recipe.crop_scale))
    return FolderResult(model, f"scratch ({backbone.name} architecture)", max(history.val_accuracy),
                        evaluate(model, pre, folder, "test", device), "all layers",
                        {"val": history.val_accuracy, "loss": history.train_loss}, time.perf_counter() - start)


def _accuracy(model: nn.Module, pre: Preprocess, X: Tensor, y: Tensor) -> float:
    return train.accuracy(model, pre.evaluation(X), y)


@torch.no_grad()
def probabilities(model: nn.Module, pre: Preprocess, X: Tensor) -> Tensor:
    """Class probabilities [N, classes] of uint8 images at the backbone's load size."""
    return train.predict(model, pre.evaluation(X)).softmax(1)


def evaluate(model: nn.Module, pre: Preprocess, folder: dict[str, Any], split: str = "test",
             device: torch.device | None = None) -> float:
    """Accuracy on one split of the folder."""
    X, y = _split(folder, split, device or next(model.parameters()).device)
    return _accuracy(model, pre, X, y)


# ---- saving, loading, predicting one file ----------------------------------------------------

def save_model(path: str | Path, model: nn.Module, backbone: Backbone, classes: tuple[str, ...] | list[str],
               **extra: float | int | str) -> Path:
    """Save weights, class names, architecture and preprocessing atomically (readable with weights_only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": MODEL_FORMAT, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
               "classes": list(classes), "build": dict(backbone.build), "preprocess": asdict(backbone.preprocess),
               "backbone": backbone.name, "extra": dict(extra)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


@dataclass
class SavedModel:
    """A classifier loaded from a file: the network, its class names and its preprocessing."""

    model: nn.Module
    classes: tuple[str, ...]
    preprocess: Preprocess
    backbone: str
    extra: dict[str, Any]


def load_model(path: str | Path) -> SavedModel:
    """Load a model saved by :func:`save_model` (``torch.load(weights_only=True)``: no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}: train one first (python -m helpers.transfer images DIR "
                                f"--out {path})")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a model saved by helpers.transfer (format {MODEL_FORMAT}): train it again")
    classes = tuple(payload["classes"])
    model = backbones.architecture(payload["build"], len(classes))
    model.load_state_dict(payload["state_dict"])
    pre = payload["preprocess"]
    preprocess = Preprocess(**{**pre, "mean": None if pre["mean"] is None else tuple(pre["mean"]),
                               "std": None if pre["std"] is None else tuple(pre["std"])})
    return SavedModel(model.eval(), classes, preprocess, payload["backbone"], payload["extra"])


def read_image(path: str | Path, preprocess: Preprocess) -> Tensor:
    """One image file as uint8 [1, C, S, S] at the size and colour mode ``preprocess`` wants."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file {path}")
    try:
        image = folders._decode(path)
    except Exception as exc:  # noqa: BLE001 - any decoder failure
        raise ValueError(f"cannot read {path} as an image ({exc})") from exc
    image, _ = folders._to_mode(image, preprocess.channels)
    return folders._square(image, preprocess.resize_size).unsqueeze(0)


def predict_file(saved: SavedModel, path: str | Path) -> list[tuple[str, float]]:
    """(class, probability) for one image file, most likely first."""
    probs = probabilities(saved.model, saved.preprocess, read_image(path, saved.preprocess))[0]
    order = probs.argsort(descending=True).tolist()
    return [(saved.classes[k], probs[k].item()) for k in order]


# ---- the command line --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.transfer images DIR``: 0 when trained and saved, 2 on bad input."""
    from helpers import config, runtime

    parser = argparse.ArgumentParser(prog="python -m helpers.transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", help="fine-tune a pre-trained backbone on a folder of images")
    images.add_argument("folder", help="DIR/<class name>/*.jpg (or DIR/train, DIR/val, DIR/test)")
    images.add_argument("--backbone", choices=backbones.BACKBONES, default="resnet18",
                        help="resnet18: ImageNet weights (fetch them once: data_scripts/fetch_real.py weights); "
                             "course: the course's CNN pre-trained on task A (offline)")
    images.add_argument("--out", default="model.pt", help="where to save the trained model (default model.pt)")
    images.add_argument("--profile", default=None, help="profile for the course backbone (default $TL_PROFILE)")
    images.add_argument("--seed", type=int, default=0)
    images.add_argument("--scratch", action="store_true", help="also train the same network from scratch")
    args = parser.parse_args(argv)
    runtime.configure_threads()
    device = runtime.get_device()
    try:
        profile = config.get_profile(args.profile)
        backbone = backbones.load(args.backbone, profile, device=device)
        folder = load_folder(args.folder, backbone, seed=args.seed)
    except (folders.ImageFolderError, backbones.WeightsError, config.ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(folder["report"])
    print(f"backbone: {backbone.description}; {runtime.describe(device)}")
    result = fine_tune(backbone, folder, seed=args.seed, device=device, progress=True)
    print(f"{result.arm}: validation {result.val_accuracy:.1%}, test {result.test_accuracy:.1%} "
          f"(epoch picked in stage '{result.stage}', {result.seconds:.0f} s)")
    if args.scratch:
        base = scratch(backbone, folder, seed=args.seed, device=device, progress=True)
        print(f"{base.arm}: validation {base.val_accuracy:.1%}, test {base.test_accuracy:.1%} ({base.seconds:.0f} s)")
    out = save_model(args.out, result.model, backbone, folder["classes"], test_accuracy=result.test_accuracy,
                     val_accuracy=result.val_accuracy)
    print(f"saved {out} (classes: {', '.join(folder['classes'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
