"""Real images as *check tasks*: do task A's features help on images the course did not draw?

Two small real data sets that install offline with a package (nothing is downloaded at run time):

* **Photo patches** — 32x32 grayscale patches cut from the 20 photographs the scikit-image wheel
  ships (astronaut, brick, camera, ...): the class is the photograph a patch comes from. Each
  photo is first scaled so that its shorter side is ``PHOTO_SIDE`` pixels, so a patch shows a
  recognisable part of it (an edge of the rocket, the cat's fur) rather than a few pixels of
  texture. Training patches come from the left half of each photo and test patches from the
  right half, so no test pixel was ever seen in training.
* **Handwritten digits** — the 1,797 scanned digits (8x8, 17 grey levels) that scikit-learn
  ships as ``load_digits``, scaled up to 32x32: ten classes, a fixed test set per class.

And one real-image *pre-training* task, for notebook 03's "a task A of photographs":

* **Photo crops** — ``N_CROP_CLASSES`` "exemplar" classes (Dosovitskiy et al. 2014), each one
  region of one of three photographs that scikit-learn and matplotlib ship (``CROP_PHOTOS``: a
  temple, a flower, Grace Hopper; none of them among the check photos), shown as random crops of
  it (position, zoom, brightness curve, noise). Telling the regions apart takes the features of
  photographs (bark, fur, fabric, print, soft shading), which the course's drawn task A lacks.

All three are read straight from the installed packages' data folders, without importing the
packages (scikit-image takes seconds to import and is not needed for anything else), and are cached as
uint8 [n, 1, 32, 32] like the generated tasks (helpers.data.images).
"""
from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image  # Pillow comes with matplotlib and torchvision (whose own decoders are deprecated)
from torch import Tensor

from helpers.data import cache

PHOTOS_VERSION = 1  # bump when the patch-cutting code changes: old caches are then ignored
PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png", "coins.png",
    "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png",
    "moon.png", "page.png", "retina.jpg", "rocket.jpg", "text.png", "motorcycle_left.png", "clock_motion.png",
)
PHOTO_CLASSES = tuple(name.split(".")[0] for name in PHOTOS)
CROP_PHOTOS = (  # (distribution, module, folder, file) of the photo-crop task's photographs
    ("scikit-learn", "sklearn", "datasets/images", "china.jpg"),
    ("scikit-learn", "sklearn", "datasets/images", "flower.jpg"),
    ("matplotlib", "matplotlib", "mpl-data/sample_data", "grace_hopper.jpg"),
)
N_CROP_CLASSES = 500  # one class per region; the regions are the same for every split and seed
CROP_REGION_SEED = 4321
PHOTO_SIDE = 128  # pixels of each photo's shorter side once scaled (a 32-px patch: 1/4 of it)
DIGIT_CLASSES = tuple(str(d) for d in range(10))
# (training region, evaluation region) of each photo, as (left, top, right, bottom) fractions.
# "test": the left half to train, the right half to test. "validation", for choosing settings
# without ever reading the right half: the left quarter to train, the second quarter to evaluate,
# side by side as in "test". (Top and bottom of the left half were tried first: the top and the
# bottom of a photo differ more than its left and right, and the figures disagreed with "test".)
HOLDOUTS = {"test": ((0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)),
            "validation": ((0.0, 0.0, 0.25, 1.0), (0.25, 0.0, 0.5, 1.0))}


class CheckDataMissing(RuntimeError):
    """The package that ships a check task's images is not installed; the message says what to do."""


def package_data_dir(distribution: str, module: str, subfolder: str) -> Path:
    """The data folder inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CheckDataMissing(f"the real-image check tasks read images shipped with {distribution}, which is not "
                               f"installed: run `python -m pip install {distribution}` (or `make setup`)")
    return Path(list(spec.submodule_search_locations)[0]) / subfolder


def _distribution_of(path: Path) -> str:
    """The distribution whose data folder ``path`` lies in (for error messages)."""
    names = {"skimage": "scikit-image", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}
    return next((names[part] for part in path.parts if part in names), "scikit-image")


def _package_version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


def read_gray(path: Path, side: int | None = PHOTO_SIDE) -> Tensor:
    """One image file as float32 [H, W] in [0, 1], scaled (antialiased) so its shorter side is
    ``side`` (None: as stored)."""
    if not path.exists():
        raise CheckDataMissing(f"{path} is missing: reinstall the package that ships it (`python -m pip install "
                               f"--force-reinstall {_distribution_of(path)}`)")
    with Image.open(path) as file:
        gray = np.asarray(file.convert("L"), dtype=np.float32) / 255
    image = torch.from_numpy(gray)[None, None]  # [1, 1, H, W]
    if side is None:
        return image[0, 0]
    h, w = image.shape[-2:]
    size = (round(h * side / min(h, w)), round(w * side / min(h, w)))
    return torch.nn.functional.interpolate(image, size=size, mode="bilinear", antialias=True)[0, 0].clamp(0, 1)


def cut_patches(photo: Tensor, region: tuple[float, float, float, float], n: int, gen: torch.Generator,
                size: int = 32) -> Tensor:
    """``n`` patches [n, size, size] at random positions inside ``region`` (fractions of the photo)."""
    h, w = photo.shape
    left, top, right, bottom = round(region[0] * w), round(region[1] * h), round(region[2] * w), round(region[3] * h)
    if right - left < size or bottom - top < size:
        raise ValueError(f"region {region} of a {h}x{w} photo is smaller than a {size}-px patch")
    xs = torch.randint(left, right - size + 1, (n,), generator=gen).tolist()
    ys = torch.randint(top, bottom - size + 1, (n,), generator=gen).tolist()
    return torch.stack([photo[y:y + size, x:x + size] for x, y in zip(xs, ys)])


def _to_uint8(X: Tensor) -> Tensor:
    return (X * 255).round().to(torch.uint8)[:, None]


def photo_patches_config(n_train: int, n_test: int, seed: int, holdout: str = "test",
                         side: int | None = PHOTO_SIDE) -> dict:
    """The cache config of :func:`photo_patches` (the package version is part of it)."""
    if holdout not in HOLDOUTS:
        raise ValueError(f"unknown holdout {holdout!r}: choose one of {', '.join(HOLDOUTS)}")
    return {"version": PHOTOS_VERSION, "source": f"scikit-image {_package_version('scikit-image')}",
            "photos": list(PHOTOS), "side": side, "n_train": n_train, "n_test": n_test, "seed": seed,
            "holdout": holdout, "regions": HOLDOUTS[holdout]}


def _build_photo_patches(config: dict) -> dict[str, Tensor]:
    folder = package_data_dir("scikit-image", "skimage", "data")
    gen = torch.Generator().manual_seed(config["seed"])
    train_region, test_region = HOLDOUTS[config["holdout"]]
    X, X_test = [], []
    for name in config["photos"]:
        photo = read_gray(folder / name, config["side"])
        X.append(cut_patches(photo, train_region, config["n_train"], gen))
        X_test.append(cut_patches(photo, test_region, config["n_test"], gen))
    labels = torch.arange(len(config["photos"]))
    return {"X": _to_uint8(torch.cat(X)), "y": labels.repeat_interleave(config["n_train"]),
            "X_test": _to_uint8(torch.cat(X_test)), "y_test": labels.repeat_interleave(config["n_test"])}


def photo_patches(n_train: int = 50, n_test: int = 50, seed: int = 0, holdout: str = "test",
                  side: int | None = PHOTO_SIDE) -> dict:
    """The photo-patch check task: ``X`` uint8 [20 n_train, 1, 32, 32], ``y`` (the photo),
    ``X_test``, ``y_test`` (``n_test`` a photo), ``classes``; built once, cached under data/.

    ``n_train`` patches a photo form a pool to draw small training sets from
    (helpers.data.subsets.stratified_subset). ``holdout="validation"`` gives a split for choosing
    settings that never reads the right halves (see HOLDOUTS). ``side``: pixels of each photo's
    shorter side once scaled (None: the photos as stored, so a patch is a small piece of texture).
    """
    config = photo_patches_config(n_train, n_test, seed, holdout, side)
    data = cache.load_or_build("photo_patches", config, lambda: _build_photo_patches(config))
    return {**data, "classes": PHOTO_CLASSES}


def crop_regions(k: int = N_CROP_CLASSES, seed: int = CROP_REGION_SEED, side: int = 96) -> Tensor:
    """The photo-crop task's ``k`` regions [k, side, side] in [0, 1], the same on every machine.

    Each is a random square (64-239 px) of one of CROP_PHOTOS in turn, scaled to ``side``;
    squares with almost no structure (a patch of sky) are skipped, as Exemplar-CNN skipped flat
    patches.
    """
    pictures = [read_gray(package_data_dir(dist, module, folder) / name, side=None)
                for dist, module, folder, name in CROP_PHOTOS]
    gen = torch.Generator().manual_seed(seed)
    regions: list[Tensor] = []
    while len(regions) < k:
        picture = pictures[len(regions) % len(pictures)]
        h, w = picture.shape
        s = int(torch.randint(64, min(h, w, 240), (1,), generator=gen))
        top, left = (int(torch.randint(0, d - s + 1, (1,), generator=gen)) for d in (h, w))
        square = picture[top:top + s, left:left + s][None, None]
        region = torch.nn.functional.interpolate(square, size=(side, side), mode="bilinear", antialias=True)
        if region.std() > 0.1:
            regions.append(region[0, 0].clamp(0, 1))
    return torch.stack(regions)


def random_crops(regions: Tensor, labels: Tensor, gen: torch.Generator, size: int = 32) -> Tensor:
    """One random view [n, size, size] in [0, 1] of each label's region: a square of 0.3-0.7 of its
    side anywhere in it, a random brightness curve (gamma 0.6-1.6) and a little noise."""
    n = len(labels)
    scale = 0.3 + 0.4 * torch.rand(n, generator=gen)
    shift = (1 - scale)[:, None] * (2 * torch.rand(n, 2, generator=gen) - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale, scale, shift
    grid = torch.nn.functional.affine_grid(theta, [n, 1, size, size], align_corners=False)
    view = torch.nn.functional.grid_sample(regions[labels][:, None], grid, align_corners=False)[:, 0]
    gamma = torch.exp(torch.rand(n, 1, 1, generator=gen) - 0.5)
    view = view.clamp(1e-4, 1) ** gamma
    return (view + 0.02 * torch.randn(view.shape, generator=gen)).clamp(0, 1)


def photo_crops_config(n_train: int, n_test: int, seed: int, size: int = 32) -> dict:
    """The cache config of :func:`photo_crops` (the versions of the packages that ship the photos
    are part of it)."""
    return {"version": PHOTOS_VERSION, "photos": [f"{dist} {_package_version(dist)} {name}"
                                                  for dist, _, _, name in CROP_PHOTOS],
            "classes": N_CROP_CLASSES, "region_seed": CROP_REGION_SEED, "n_train": n_train, "n_test": n_test,
            "seed": seed, "size": size}


def _build_photo_crops(config: dict, chunk: int = 2_000) -> dict[str, Tensor]:
    regions = crop_regions(config["classes"], config["region_seed"])
    out: dict[str, Tensor] = {}
    for split, n, seed in (("", config["n_train"], config["seed"]), ("_test", config["n_test"], 10_000 + config["seed"])):
        gen = torch.Generator().manual_seed(seed)
        labels = torch.arange(n).remainder(config["classes"])[torch.randperm(n, generator=gen)]
        # in chunks: fresh memory pages are expensive (helpers.data.images.CHUNK)
        views = [_to_uint8(random_crops(regions, labels[i:i + chunk], gen, config["size"])) for i in range(0, n, chunk)]
        out["X" + split], out["y" + split] = torch.cat(views), labels
    return out


def photo_crops(n_train: int, n_test: int = 2_000, seed: int = 1, size: int = 32) -> dict:
    """The photo-crop task: ``X`` uint8 [n_train, 1, size, size], ``y`` (the region, balanced),
    ``X_test``, ``y_test`` (other views of the same regions), ``classes``; cached under data/."""
    config = photo_crops_config(n_train, n_test, seed, size)
    data = cache.load_or_build("photo_crops", config, lambda: _build_photo_crops(config))
    return {**data, "classes": tuple(f"region {i}" for i in range(config["classes"]))}


def digits_config(n_test_per_class: int, seed: int) -> dict:
    """The cache config of :func:`digits` (the package version is part of it)."""
    return {"version": PHOTOS_VERSION, "source": f"scikit-learn {_package_version('scikit-learn')}",
            "n_test_per_class": n_test_per_class, "seed": seed, "size": 32}


def read_digits() -> tuple[Tensor, Tensor]:
    """The 1,797 digits scikit-learn ships: float32 [n, 8, 8] in [0, 1] and labels [n]."""
    path = package_data_dir("scikit-learn", "sklearn", "datasets") / "data" / "digits.csv.gz"
    if not path.exists():
        raise CheckDataMissing(f"{path} is missing: run `python -m pip install --force-reinstall scikit-learn`")
    with gzip.open(path) as file:
        table = np.loadtxt(file, delimiter=",", dtype=np.float32)
    return torch.from_numpy(table[:, :-1] / 16).view(-1, 8, 8), torch.from_numpy(table[:, -1]).long()


def _build_digits(config: dict) -> dict[str, Tensor]:
    images, labels = read_digits()
    images = torch.nn.functional.interpolate(images[:, None], size=(config["size"],) * 2, mode="bilinear",
                                             align_corners=False)[:, 0].clamp(0, 1)
    gen = torch.Generator().manual_seed(config["seed"])
    test = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):  # the same number of test digits in every class
        members = torch.nonzero(labels == digit)[:, 0]
        test[members[torch.randperm(len(members), generator=gen)[:config["n_test_per_class"]]]] = True
    return {"X": _to_uint8(images[~test]), "y": labels[~test], "X_test": _to_uint8(images[test]),
            "y_test": labels[test]}


def digits(n_test_per_class: int = 100, seed: int = 0) -> dict:
    """The handwritten-digit check task: ``X``, ``y`` (a pool of ~80 a class), ``X_test``,
    ``y_test`` (``n_test_per_class`` a class, fixed), ``classes``; uint8 [n, 1, 32, 32]."""
    config = digits_config(n_test_per_class, seed)
    data = cache.load_or_build("digits", config, lambda: _build_digits(config))
    return {**data, "classes": DIGIT_CLASSES}
