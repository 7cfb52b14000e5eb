"""The image-folder loader (notebook 06): the layouts people use, and every way a folder is wrong."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.data import folders


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))


def _image(path: Path, side: int = 24, mode: str = "L", value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2}[mode]
    rng = np.random.default_rng(value)
    array = rng.integers(0, 256, size=(side, side, channels), dtype=np.uint8)
    Image.fromarray(array[:, :, 0] if channels == 1 else array, mode).save(path)
    return path


def _classes(root: Path, per_class: int = 6, names: tuple[str, ...] = ("cats", "dogs", "owls")) -> Path:
    for k, name in enumerate(names):
        for i in range(per_class):
            _image(root / name / f"{i}.png", value=100 * k + i)
    return root


def test_class_folders_are_split_stratified_and_cached(tmp_path: Path) -> None:
    root = _classes(tmp_path / "photos", per_class=10)
    first = folders.load_image_folder(root, size=16, channels=3, progress=False)
    assert first["classes"] == ("cats", "dogs", "owls")
    assert first["X"].shape == (30, 3, 16, 16) and first["X"].dtype == torch.uint8
    parts = [set(first[s].tolist()) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == 30 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    for split in ("train", "val", "test"):  # every class in every split, in the same proportions
        assert torch.bincount(first["y"][first[split]], minlength=3).tolist() == \
            {"train": [6] * 3, "val": [2] * 3, "test": [2] * 3}[split]
    again = folders.load_image_folder(root, size=16, channels=3, progress=False)
    assert torch.equal(again["X"], first["X"]) and again["key"] == first["key"]
    os.utime(root / "cats" / "0.png", ns=(1, 1))  # an edited file re-keys the cache
    assert folders.load_image_folder(root, size=16, channels=3, progress=False)["key"] != first["key"]


def test_split_folders_are_used_and_a_missing_test_split_is_carved_from_train(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _classes(root / "train", per_class=10)
    _classes(root / "validation", per_class=3)
    folder = folders.load_image_folder(root, size=16, channels=1, progress=False)
    assert len(folder["val"]) == 9 and all(folder["files"][i].startswith("validation/") for i in folder["val"])
    assert len(folder["test"]) == 6 and all(folder["files"][i].startswith("train/") for i in folder["test"])
    assert len(folder["train"]) == 24 and "carved out of train" in folder["report"]


def test_nested_images_belong_to_their_class_folder(tmp_path: Path) -> None:
    root = _classes(tmp_path / "photos")
    _image(root / "cats" / "2024" / "summer.png")
    folder = folders.load_image_folder(root, size=16, channels=1, progress=False)
    assert "cats/2024/summer.png" in folder["files"] and len(folder["y"]) == 19


def test_bad_files_are_named_skipped_ignored_or_converted(tmp_path: Path) -> None:
    root = _classes(tmp_path / "photos")
    (root / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    _image(root / "dogs" / "thumb.png", side=8)
    (root / "owls" / "readme.txt").write_text("notes")
    (root / "owls" / ".DS_Store").write_bytes(b"\0")
    _image(root / "owls" / "colour.png", mode="RGB")
    _image(root / "owls" / "alpha.png", mode="RGBA")
    _image(root / "owls" / "gray_alpha.png", mode="LA")
    Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16)).save(root / "dogs" / "deep.png")  # 16-bit
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(root / "dogs" / "old.bmp")
    folder = folders.load_image_folder(root, size=16, channels=3, progress=False)
    skipped = dict(folder["skipped"])
    assert set(skipped) == {"cats/broken.jpg", "dogs/thumb.png"}
    assert "unreadable" in skipped["cats/broken.jpg"] and "too small" in skipped["dogs/thumb.png"]
    assert folder["ignored"] == ["owls/readme.txt"]  # hidden files are not even mentioned
    assert folder["modes"] == {"grayscale": 19, "RGB": 2, "RGBA": 1, "grayscale+alpha": 1}
    assert {"dogs/deep.png", "dogs/old.bmp"} <= set(folder["files"])
    deep = folder["X"][folder["files"].index("dogs/deep.png")]
    assert deep.dtype == torch.uint8 and deep.max() == round(40000 / 257)
    gray = folder["X"][folder["files"].index("owls/gray_alpha.png")]
    assert torch.equal(gray[0], gray[1])  # grayscale became RGB: three equal channels
    for words in ("skipped 2 file(s)", "cats/broken.jpg", "ignored 1 file(s)", "converted to RGB"):
        assert words in folder["report"]


@pytest.mark.parametrize(("layout", "message"), [
    ("missing", "does not exist"),
    ("file", "is a file, not a folder"),
    ("one class", "one class folder (cats)"),
    ("no classes", "no class folders"),
    ("loose images", "directly inside it"),
    ("empty class", "class 'owls' has no readable images"),
    ("all corrupt", "class 'owls' has no readable images"),
    ("too few", "class 'owls' has 2 readable image(s)"),
    ("unknown class in val", "that train/ does not have"),
    ("val without train", "no train/ folder"),
    ("mixed layout", "mixes split folders"),
])
def test_bad_folders_stop_with_a_message_that_says_what_to_do(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "photos"
    if layout == "file":
        root.write_text("not a folder")
    elif layout == "one class":
        _classes(root, names=("cats",))
    elif layout == "no classes":
        root.mkdir()
    elif layout == "loose images":
        _classes(root)
        _image(root / "stray.png")
    elif layout == "empty class":
        _classes(root, names=("cats", "dogs"))
        (root / "owls").mkdir()
    elif layout == "all corrupt":
        _classes(root, names=("cats", "dogs"))
        (root / "owls").mkdir()
        (root / "owls" / "a.png").write_bytes(b"garbage")
    elif layout == "too few":
        _classes(root, names=("cats", "dogs"))
        _classes(root, per_class=2, names=("owls",))
    elif layout == "unknown class in val":
        _classes(root / "train", names=("cats", "dogs"))
        _classes(root / "val", names=("cats", "dgos"))
    elif layout == "val without train":
        _classes(root / "val")
    elif layout == "mixed layout":
        _classes(root / "train")
        _classes(root, names=("extra",))
    with pytest.raises(folders.ImageFolderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        folders.load_image_folder(root, size=16, progress=False)


def test_too_many_images_for_memory_stop_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _classes(tmp_path / "photos")
    monkeypatch.setattr(folders, "MAX_BYTES", 10_000)
    with pytest.raises(folders.ImageFolderError, match="need .* GiB of memory"):
        folders.load_image_folder(root, size=32, channels=3, progress=False)


def test_bad_arguments_are_errors(tmp_path: Path) -> None:
    root = _classes(tmp_path / "photos")
    with pytest.raises(ValueError, match="channels must be 1"):
        folders.load_image_folder(root, channels=4)
    with pytest.raises(ValueError, match="at least 16"):
        folders.load_image_folder(root, size=8)


def test_the_sample_folder_is_written_once_and_complete(tmp_path: Path) -> None:
    path = folders.write_sample_folder(tmp_path / "sample")
    mtime = path.stat().st_mtime_ns
    assert folders.write_sample_folder(tmp_path / "sample") == path and path.stat().st_mtime_ns == mtime
    folder = folders.load_image_folder(path, size=32, channels=1, progress=False)
    per_split = {s: len(folder[s]) for s in ("train", "val", "test")}
    classes = len(folder["classes"])
    assert per_split == {"train": 20 * classes, "val": 20 * classes, "test": 50 * classes}
    assert len(folder["skipped"]) == 2 and folder["ignored"] == ["train/normal/notes.txt"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no scratch folder left


def test_a_folder_of_real_photographs_in_the_formats_people_have(tmp_path: Path) -> None:
    """Real photos (scikit-image's wheel), as a learner's folder: RGB JPEGs and grayscale PNGs of
    different sizes, one class per photograph."""
    pytest.importorskip("skimage")
    from helpers.data import photos

    source = photos.package_data_dir("scikit-image", "skimage", "data")
    root = tmp_path / "my_photos"
    for name in ("astronaut.png", "camera.png", "coffee.png"):
        image = Image.open(source / name)
        folder = root / name.split(".")[0]
        folder.mkdir(parents=True)
        for k, side in enumerate((60, 90, 130, 200, 75)):
            crop = image.crop((10 * k, 5 * k, 10 * k + side, 5 * k + side + 7))  # not square either
            crop.save(folder / (f"{k}.jpg" if image.mode == "RGB" else f"{k}.png"), quality=85)
    for channels, size in ((3, 64), (1, 32)):
        folder = folders.load_image_folder(root, size=size, channels=channels, progress=False)
        assert folder["X"].shape == (15, channels, size, size) and not folder["skipped"]
        assert folder["modes"] == {"RGB": 10, "grayscale": 5}
        assert sum(len(folder[s]) for s in ("train", "val", "test")) == 15
    colour = folders.load_image_folder(root, size=64, channels=3, progress=False)
    astronaut = colour["X"][colour["y"] == colour["classes"].index("astronaut")].float()
    assert (astronaut[:, 0] - astronaut[:, 2]).abs().mean() > 5  # colour kept, not flattened to gray
