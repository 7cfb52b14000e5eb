"""The real-image check tasks (helpers.data.photos): layout, determinism, disjoint halves, errors."""
import importlib.util
from pathlib import Path

import pytest
import torch

from helpers.data import photos


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    return tmp_path


def test_every_photo_ships_with_scikit_image():
    folder = photos.package_data_dir("scikit-image", "skimage", "data")
    assert [name for name in photos.PHOTOS if not (folder / name).exists()] == []


def test_photo_patches_layout_and_labels(data_dir: Path):
    task = photos.photo_patches(n_train=3, n_test=2, seed=0)
    assert task["X"].shape == (60, 1, 32, 32) and task["X"].dtype == torch.uint8
    assert task["X_test"].shape == (40, 1, 32, 32) and len(task["classes"]) == 20
    assert torch.bincount(task["y"]).tolist() == [3] * 20 and torch.bincount(task["y_test"]).tolist() == [2] * 20
    assert (task["X"].float().flatten(1).std(1) > 0).all()  # no blank patch
    assert list(data_dir.glob("photo_patches-*.pt"))  # cached like the generated tasks


def test_photo_patches_are_deterministic_and_seed_dependent(data_dir: Path):
    first = photos.photo_patches(n_train=2, n_test=1, seed=0)["X"]
    again = photos._build_photo_patches(photos.photo_patches_config(2, 1, 0))["X"]
    other = photos.photo_patches(n_train=2, n_test=1, seed=1)["X"]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_training_and_test_regions_do_not_overlap():
    for train_region, test_region in photos.HOLDOUTS.values():
        left, top, right, bottom = train_region
        other_left, other_top, other_right, other_bottom = test_region
        assert right <= other_left or bottom <= other_top  # side by side, or one above the other


def test_cut_patches_stay_inside_their_region():
    photo = torch.arange(64 * 128, dtype=torch.float32).view(64, 128)  # value = position
    patches = photos.cut_patches(photo, (0.0, 0.0, 0.5, 1.0), 50, torch.Generator().manual_seed(0))
    columns = (patches.long() % 128)
    assert patches.shape == (50, 32, 32) and columns.max() < 64
    with pytest.raises(ValueError, match="smaller than"):
        photos.cut_patches(photo, (0.0, 0.0, 0.2, 1.0), 1, torch.Generator())


def test_digits_layout_and_fixed_test_set(data_dir: Path):
    task = photos.digits(n_test_per_class=10, seed=0)
    assert task["X"].shape == (1_797 - 100, 1, 32, 32) and task["X"].dtype == torch.uint8
    assert torch.bincount(task["y_test"]).tolist() == [10] * 10
    assert torch.equal(task["X_test"], photos._build_digits(photos.digits_config(10, 0))["X_test"])


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(photos.CheckDataMissing, match="pip install scikit-image"):
        photos.package_data_dir("scikit-image", "skimage", "data")


def test_unknown_holdout_lists_the_valid_ones():
    with pytest.raises(ValueError, match="test, validation"):
        photos.photo_patches_config(1, 1, 0, holdout="left")


def test_read_gray_scales_the_shorter_side_or_keeps_the_photo():
    path = photos.package_data_dir("scikit-image", "skimage", "data") / "page.png"  # 191 x 384, grayscale
    native, scaled = photos.read_gray(path, side=None), photos.read_gray(path)
    assert native.shape == (191, 384) and min(scaled.shape) == photos.PHOTO_SIDE
    assert 0 <= scaled.min() and scaled.max() <= 1


def test_crop_photos_ship_with_the_packages_and_are_not_check_photos():
    for distribution, module, folder, name in photos.CROP_PHOTOS:
        assert (photos.package_data_dir(distribution, module, folder) / name).exists()
        assert name not in photos.PHOTOS


def test_crop_regions_are_fixed_and_have_structure():
    regions = photos.crop_regions(k=6, side=24)
    assert regions.shape == (6, 24, 24) and 0 <= regions.min() and regions.max() <= 1
    assert (regions.flatten(1).std(1) > 0.1).all()  # no flat patch of sky
    assert torch.equal(regions, photos.crop_regions(k=6, side=24))
    assert not torch.equal(regions, photos.crop_regions(k=6, seed=5, side=24))


def test_random_crops_are_views_of_their_own_region():
    regions = torch.stack([torch.zeros(48, 48), torch.ones(48, 48)])  # a black and a white region
    views = photos.random_crops(regions, torch.tensor([0, 1, 1, 0]), torch.Generator().manual_seed(0), size=16)
    assert views.shape == (4, 16, 16) and 0 <= views.min() and views.max() <= 1
    assert views[[0, 3]].mean() < 0.1 < 0.9 < views[[1, 2]].mean()  # noise aside, the region's own pixels


def test_photo_crops_layout_labels_and_cache(data_dir: Path):
    task = photos.photo_crops(n_train=1_000, n_test=500, seed=1, size=32)
    assert task["X"].shape == (1_000, 1, 32, 32) and task["X"].dtype == torch.uint8
    assert task["X_test"].shape == (500, 1, 32, 32) and len(task["classes"]) == photos.N_CROP_CLASSES
    assert torch.bincount(task["y"], minlength=photos.N_CROP_CLASSES).tolist() == [2] * photos.N_CROP_CLASSES
    assert not torch.equal(task["X"][:500], task["X_test"])  # other views, drawn with another seed
    assert list(data_dir.glob("photo_crops-*.pt"))
    config = photos.photo_crops_config(1_000, 500, 1)
    assert any(entry.startswith("scikit-learn ") for entry in config["photos"])  # the package version is keyed
