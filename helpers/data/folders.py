"""Your own images as a folder: one sub-folder per class, read once into tensors and cached.

The layout everyone uses (torchvision's ``ImageFolder``, Keras, fastai)::

    DIR/<class name>/*.png|jpg|...                      split here: 60 / 20 / 20 % (stratified)
    DIR/train/<class name>/...  DIR/val/<class name>/... (and DIR/test/...; a missing split is
                                                         carved out of train/, stratified)

Images are decoded with Pillow (as torchvision's ``ImageFolder`` does), converted to one colour mode, resized (shorter side) and centre-cropped to ``size`` pixels, and
stored as one uint8 tensor [N, C, size, size]. The result is cached under ``data/folders/``,
keyed by the folder's contents (every file's path, size and modification time), so a second
load is instant and an edited folder is read again.

What goes wrong in real folders, and what happens:

* fatal (:class:`ImageFolderError`, the message says what to do): the folder does not exist, it
  has fewer than two classes, a class has no readable images or too few to split, images lie
  directly in DIR instead of in class folders, a split names a class that train/ lacks, or the
  decoded images would not fit the memory bound (:data:`MAX_BYTES`);
* skipped and named in ``report``: unreadable or corrupt files, images smaller than
  :data:`MIN_SIDE` pixels;
* ignored and named: files that are not images (by suffix), hidden files silently;
* converted and counted: grayscale, grayscale + alpha, RGBA and 16-bit images are converted to
  the mode asked for (alpha is dropped).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}
MIN_SIDE = 16  # pixels: smaller images are skipped (named in the report)
MAX_BYTES = 2 * 1024 ** 3  # the decoded tensor's memory bound: 2 GiB (e.g. 11,000 RGB images at 256 px)
FOLDER_VERSION = 1  # bump when decoding or splitting changes (re-keys every cached folder)


class ImageFolderError(ValueError):
    """The folder cannot be used as it is; the message says what is wrong and what to do."""


@dataclass
class Scan:
    """What a folder holds before anything is decoded."""

    root: Path
    classes: tuple[str, ...]
    files: dict[str, list[tuple[Path, int]]]  # split -> [(file, class index)], splits found as folders
    ignored: list[str] = field(default_factory=list)  # non-image files (relative paths)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_files(class_dir: Path, root: Path, ignored: list[str]) -> list[Path]:
    """Image files under ``class_dir`` (nested folders too), sorted; non-images go to ``ignored``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not _visible(path):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
            else:
                ignored.append(str(path.relative_to(root)))
    return found


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def scan(root: str | Path) -> Scan:
    """Find the classes and image files of ``root`` (see the module's docstring for the layout)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise ImageFolderError(f"{root} {what}. Point TL_IMAGES (or IMAGES_DIR in the notebook) at a folder "
                               "with one sub-folder per class, e.g. DIR/cats/*.jpg and DIR/dogs/*.jpg.")
    loose = [p.name for p in root.iterdir() if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_SUFFIXES]
    subdirs = _class_dirs(root)
    split_dirs = {SPLIT_ALIASES[d.name.lower()]: d for d in subdirs if d.name.lower() in SPLIT_ALIASES}
    if loose:
        raise ImageFolderError(f"{root} has {len(loose)} image(s) directly inside it (e.g. {loose[0]}); the "
                               "class of an image is the name of its folder: move each image into "
                               "DIR/<class name>/.")
    ignored: list[str] = []
    if split_dirs:
        if "train" not in split_dirs:
            raise ImageFolderError(f"{root} has {', '.join(d.name for d in split_dirs.values())}/ but no train/ "
                                   "folder: add DIR/train/<class>/ (or use DIR/<class>/ and let the loader split).")
        others = [d.name for d in subdirs if d.name.lower() not in SPLIT_ALIASES]
        if others:
            raise ImageFolderError(f"{root} mixes split folders ({', '.join(split_dirs)}) with other folders "
                                   f"({', '.join(others)}): put every class under train/ (and val/, test/).")
        classes = tuple(d.name for d in _class_dirs(split_dirs["train"]))
        files: dict[str, list[tuple[Path, int]]] = {}
        for split, folder in split_dirs.items():
            names = [d.name for d in _class_dirs(folder)]
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise ImageFolderError(f"{folder} has class folder(s) {unknown} that train/ does not have: "
                                       "every class must be in train/ (check the spelling).")
            files[split] = [(path, classes.index(name)) for name in names
                            for path in _class_files(folder / name, root, ignored)]
    else:
        classes = tuple(d.name for d in subdirs)
        files = {"all": [(path, k) for k, d in enumerate(subdirs) for path in _class_files(d, root, ignored)]}
    if len(classes) < 2:
        found = f"one class folder ({classes[0]})" if classes else "no class folders"
        raise ImageFolderError(f"{root} has {found}: a classifier needs at least two classes, each in its own "
                               "sub-folder DIR/<class name>/ with its images.")
    return Scan(root, classes, files, ignored)


def contents_key(found: Scan) -> str:
    """A hash of every file's path, size and modification time: the folder's cache key."""
    digest = hashlib.sha256()
    for split in sorted(found.files):
        for path, label in found.files[split]:
            stat = path.stat()
            digest.update(f"{split}|{path.relative_to(found.root)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n"
                          .encode())
    return digest.hexdigest()[:16]


def _decode(path: Path) -> Tensor:
    """uint8 [C, H, W] as stored (C = 1, 2, 3 or 4), read with Pillow as torchvision's ImageFolder does.

    (torchvision's own ``decode_image`` is deprecated since 0.29 in favour of TorchCodec, which needs
    FFmpeg.) Palette images become RGB(A), 16-bit grayscale is scaled to 8 bits, other modes RGB.
    """
    import numpy as np
    from PIL import Image

    with Image.open(path) as handle:  # raises on a corrupt or unknown file: the caller names it
        handle.load()
        if handle.mode in ("L", "LA", "RGB", "RGBA"):
            array = np.asarray(handle)
        elif handle.mode in ("1", "P"):
            array = np.asarray(handle.convert("RGBA" if "transparency" in handle.info else
                                              "L" if handle.mode == "1" else "RGB"))
        elif handle.mode.startswith("I;16"):
            array = (np.asarray(handle, dtype=np.float64) / 257).round().astype(np.uint8)
        elif handle.mode in ("I", "F"):  # 32-bit: no fixed range, scale by the image's own maximum
            values = np.asarray(handle, dtype=np.float64)
            array = (values / max(values.max(), 1.0) * 255).clip(0, 255).round().astype(np.uint8)
        else:  # CMYK, YCbCr, LAB, HSV, ...
            array = np.asarray(handle.convert("RGB"))
    image = torch.from_numpy(np.array(array, dtype=np.uint8, copy=True))
    return image.unsqueeze(0) if image.dim() == 2 else image.permute(2, 0, 1)


def _to_mode(image: Tensor, channels: int) -> tuple[Tensor, str]:
    """Convert [C, H, W] to ``channels`` (1 or 3); returns the image and its original mode's name."""
    mode = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}[image.shape[0]]
    if image.shape[0] in (2, 4):
        image = image[:-1]  # drop alpha
    if channels == 3 and image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    elif channels == 1 and image.shape[0] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)  # ITU-R 601 luma, as PIL's "L"
        image = (image.float() * weights).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    return image, mode


def _square(image: Tensor, size: int) -> Tensor:
    """Resize the shorter side to ``size`` (antialiased) and crop the centre square."""
    from torchvision.transforms.v2 import functional as F

    return F.center_crop(F.resize(image, [size], antialias=True), [size, size])


def stratified_split(y: Tensor, fractions: tuple[float, ...], seed: int, classes: tuple[str, ...]) -> list[Tensor]:
    """Split indices of ``y`` into len(fractions) + 1 parts, each class in the same proportions.

    Every part gets at least one image of every class; a class with too few images is an error.
    """
    generator = torch.Generator().manual_seed(seed)
    parts: list[list[Tensor]] = [[] for _ in range(len(fractions) + 1)]
    for k, name in enumerate(classes):
        members = torch.nonzero(y == k).flatten()
        if len(members) < len(parts):
            raise ImageFolderError(f"class {name!r} has {len(members)} readable image(s); it needs at least "
                                   f"{len(parts)} (one for each of train, validation and test): add images or "
                                   "remove the class folder.")
        members = members[torch.randperm(len(members), generator=generator)]
        start = 0
        for i, fraction in enumerate(fractions):
            take = max(1, round(fraction * len(members)))
            parts[i + 1].append(members[start:start + take])
            start += take
        if start >= len(members):
            raise ImageFolderError(f"class {name!r} has too few images ({len(members)}) to keep any for training "
                                   "after the validation and test splits: add images.")
        parts[0].append(members[start:])
    return [torch.cat(p).sort().values for p in parts]


def _read_all(found: Scan, size: int, channels: int, progress: bool) -> dict[str, Any]:
    """Decode every image into one preallocated tensor; skipped files are named with the reason."""
    from tqdm.auto import tqdm

    entries = [(split, path, label) for split in sorted(found.files) for path, label in found.files[split]]
    needed = len(entries) * channels * size * size
    if needed > MAX_BYTES:
        raise ImageFolderError(f"{len(entries):,} images at {size} px need {needed / 2 ** 30:.1f} GiB of memory "
                               f"(limit {MAX_BYTES / 2 ** 30:.0f} GiB): use a smaller size or a sample of the folder.")
    X = torch.empty(len(entries), channels, size, size, dtype=torch.uint8)
    y, splits, files, skipped, modes = [], [], [], [], {}
    n = 0
    for split, path, label in tqdm(entries, desc=f"reading {found.root.name}", disable=not progress,
                                   unit="image", leave=False):
        relative = str(path.relative_to(found.root))
        try:
            image = _decode(path)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "unreadable": name it, go on
            skipped.append((relative, f"unreadable: not a complete image file ({type(exc).__name__})"))
            continue
        if min(image.shape[-2:]) < MIN_SIDE:
            skipped.append((relative, f"too small ({image.shape[-1]}x{image.shape[-2]} px, need {MIN_SIDE}+)"))
            continue
        image, mode = _to_mode(image, channels)
        modes[mode] = modes.get(mode, 0) + 1
        X[n] = _square(image, size)
        y.append(label)
        splits.append(split)
        files.append(relative)
        n += 1
    return {"X": X[:n].clone() if n < len(entries) else X, "y": torch.tensor(y, dtype=torch.long),
            "splits": splits, "files": files, "skipped": skipped, "modes": modes}


def load_image_folder(root: str | Path, size: int = 64, channels: int = 3, seed: int = 0,
                      fractions: tuple[float, float] = (0.2, 0.2), progress: bool = True,
                      cache_root: Path | None = None) -> dict[str, Any]:
    """Read the image folder ``root`` into tensors (cached); see the module's docstring.

    Returns a dict: ``X`` uint8 [N, channels, size, size], ``y`` (class indices), ``classes``,
    ``files`` (paths relative to ``root``), ``train``/``val``/``test`` (index tensors into X),
    ``skipped`` ([(file, reason)]), ``ignored`` (non-image files), ``modes`` (images per
    original colour mode), ``key`` (the cache key) and ``report`` (all of it in words).
    ``fractions``: the validation and test shares for a split the folder does not give.
    """
    from helpers.config import data_dir
    from helpers.data import cache

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if size < MIN_SIDE:
        raise ValueError(f"size must be at least {MIN_SIDE} pixels, got {size}")
    found = scan(root)
    config = {"version": FOLDER_VERSION, "root": str(found.root.resolve()), "contents": contents_key(found),
              "size": size, "channels": channels, "seed": seed, "fractions": list(fractions)}

    def build() -> dict[str, Any]:
        return _read_all(found, size, channels, progress)

    payload = cache.load_or_build("image_folder", config, build, root=cache_root or data_dir() / "folders")
    y = payload["y"]
    split_of = payload["splits"]
    for k, name in enumerate(found.classes):
        if not bool((y == k).any()):
            raise ImageFolderError(f"class {name!r} has no readable images in {found.root / name} (see the "
                                   "skipped files below, if any): add images or remove the folder.\n"
                                   + _describe_skipped(payload["skipped"]))
    indices = {split: torch.tensor([i for i, s in enumerate(split_of) if s == split], dtype=torch.long)
               for split in ("all", *SPLITS)}
    given = [s for s in SPLITS if len(indices[s])]
    if "all" in found.files:
        train, val, test = stratified_split(y, fractions, seed, found.classes)
        how = f"split here: {1 - sum(fractions):.0%} / {fractions[0]:.0%} / {fractions[1]:.0%} (stratified, seed {seed})"
    else:
        train, val, test = indices["train"], indices["val"], indices["test"]
        missing = [s for s in ("val", "test") if not len(indices[s])]
        if missing:
            shares = tuple(fractions[("val", "test").index(s)] for s in missing)
            carved = stratified_split(y[train], shares, seed, found.classes)
            for s, part in zip(missing, carved[1:], strict=True):
                if s == "val":
                    val = train[part]
                else:
                    test = train[part]
            train = train[carved[0]]
        how = f"given as folders: {', '.join(given)}" + (f"; {' and '.join(missing)} carved out of train "
                                                         "(stratified)" if missing else "")
    out = {**payload, "classes": found.classes, "train": train, "val": val, "test": test,
           "ignored": found.ignored, "key": config}
    out["report"] = describe(out, how)
    return out


def _describe_skipped(skipped: list[tuple[str, str]]) -> str:
    if not skipped:
        return ""
    lines = [f"skipped {len(skipped)} file(s):"] + [f"  {name}: {reason}" for name, reason in skipped[:20]]
    if len(skipped) > 20:
        lines.append(f"  ... and {len(skipped) - 20} more")
    return "\n".join(lines)


def describe(folder: dict[str, Any], how: str = "") -> str:
    """The loader's report in words: classes, split sizes, conversions, skipped and ignored files."""
    counts = torch.bincount(folder["y"], minlength=len(folder["classes"])).tolist()
    lines = [f"{len(folder['y'])} images in {len(folder['classes'])} classes: "
             + ", ".join(f"{c} ({n})" for c, n in zip(folder["classes"], counts, strict=True)),
             f"train {len(folder['train'])}, validation {len(folder['val'])}, test {len(folder['test'])} ({how})"]
    converted = {m: n for m, n in folder["modes"].items() if m != ("RGB" if folder["X"].shape[1] == 3 else "grayscale")}
    target = "RGB" if folder["X"].shape[1] == 3 else "grayscale"
    if converted:
        lines.append(f"converted to {target}: " + ", ".join(f"{n} {m}" for m, n in converted.items()))
    if folder["skipped"]:
        lines.append(_describe_skipped(folder["skipped"]))
    if folder["ignored"]:
        shown = ", ".join(folder["ignored"][:5]) + (" ..." if len(folder["ignored"]) > 5 else "")
        lines.append(f"ignored {len(folder['ignored'])} file(s) that are not images: {shown}")
    return "\n".join(lines)


def write_folder_atomically(target: Path, write: Any) -> Path:
    """Call ``write(folder)`` on a scratch folder and rename it to ``target`` when complete."""
    if target.is_dir():
        return target
    from helpers.data import cache

    if cache.read_only():  # a shared, read-only store (deploy/README.md): never written by a learner
        raise cache.missing_error(target.name, target, f"{cache.READ_ONLY_ENV} is set")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        write(scratch)
        os.chmod(scratch, 0o755)
        try:
            os.replace(scratch, target)
        except OSError:  # another process finished first: theirs is complete too
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


# ---- the course's own sample folder (notebook 06 runs on it; CI too) ---------------------------

SAMPLE_VERSION = 1  # bump when the sample's contents change
SAMPLE_SIZES = {"train": 20, "val": 20, "test": 50}  # images per class and split (task B: ~100 to train on)
SAMPLE_SIDE = 64  # pixels


def sample_folder_path() -> Path:
    from helpers.config import data_dir

    return data_dir() / "folders" / f"sample_xrays-v{SAMPLE_VERSION}"


def write_sample_folder(target: Path | None = None, seed: int = 0) -> Path:
    """Write task B's simulated X-rays as PNG files in the class-folder layout (once; atomic).

    ``train/``, ``val/`` and ``test/`` hold :data:`SAMPLE_SIZES` images per diagnosis at 64 px,
    mostly 8-bit grayscale PNG, plus what real folders contain, to show the loader's report: a
    few RGB JPEGs and RGBA PNGs (converted), a corrupt file and a 10-pixel thumbnail (skipped and
    named), and a notes file (ignored).
    """
    from PIL import Image

    from helpers.data import images

    target = target or sample_folder_path()

    def write(folder: Path) -> None:
        classes = images.TASK_B_CLASSES
        for s, (split, per_class) in enumerate(SAMPLE_SIZES.items()):
            X, y = images.make_task_b(per_class * len(classes), seed=seed * 100 + 50 + s, image_size=SAMPLE_SIDE)
            counters = [0] * len(classes)
            for image, label in zip(X, y.tolist(), strict=True):
                k = counters[label]
                counters[label] += 1
                directory = folder / split / classes[label]
                directory.mkdir(parents=True, exist_ok=True)
                gray = image[0].numpy()
                if split == "train" and k == 0:  # one RGB JPEG per class, as phones save them
                    Image.fromarray(gray).convert("RGB").save(directory / f"scan_{k:03d}.jpg", quality=95)
                elif split == "train" and k == 1:  # one RGBA PNG per class, as some tools save them
                    Image.fromarray(gray).convert("RGBA").save(directory / f"scan_{k:03d}.png")
                else:
                    Image.fromarray(gray).save(directory / f"scan_{k:03d}.png")
        train = folder / "train"
        (train / classes[1] / "scan_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this file was cut off")
        Image.new("L", (10, 10), 128).save(train / classes[2] / "thumbnail.png")
        (train / classes[0] / "notes.txt").write_text("Sample images of the transfer-learning course: simulated "
                                                      "chest X-rays (task B), not real patients.\n")

    return write_folder_atomically(target, write)
