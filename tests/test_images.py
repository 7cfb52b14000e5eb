"""The generated image tasks: shapes, determinism, balance, normalisation, subsets."""
import torch

from helpers import experiments
from helpers.data import images


def test_task_a_and_b_shapes_and_labels():
    for make, classes in ((images.make_task_a, images.TASK_A_CLASSES), (images.make_task_b, images.TASK_B_CLASSES)):
        X, y = make(120, seed=3)
        assert X.shape == (120, 1, 32, 32) and X.dtype == torch.uint8
        assert y.min() >= 0 and y.max() < len(classes)
        counts = torch.bincount(y, minlength=len(classes))
        assert counts.max() - counts.min() <= 1  # balanced


def test_near_task_pairs_are_drawn_and_keyed_by_their_classes():
    X, y = images.make_near_task(240, seed=3)
    assert X.shape == (240, 1, 32, 32) and torch.bincount(y).tolist() == [20] * len(images.NEAR_CLASSES)
    assert len(images.NEAR_CLASSES) == 12 and (X.float().flatten(1).std(1) > 5).all()
    near = images.task_config("near", 60, 3, 20, 32)
    assert near["classes"] == list(images.NEAR_CLASSES) and "classes" not in images.task_config("A", 60, 3, 20, 32)


def test_generators_are_deterministic_and_seed_dependent():
    a1, _ = images.make_task_a(50, seed=1)
    a2, _ = images.make_task_a(50, seed=1)
    a3, _ = images.make_task_a(50, seed=2)
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)
    b1, _ = images.make_task_b(50, seed=1)
    assert torch.equal(b1, images.make_task_b(50, seed=1)[0])


def test_images_are_not_blank():
    X, _ = images.make_task_b(20, seed=0)
    assert (X.float().flatten(1).std(1) > 5).all()


def test_normalize_gives_zero_mean_unit_std_per_image():
    X = images.normalize(images.make_task_a(10, seed=0)[0])
    assert torch.allclose(X.mean(dim=(1, 2, 3)), torch.zeros(10), atol=1e-4)
    assert torch.allclose(X.std(dim=(1, 2, 3)), torch.ones(10), atol=1e-3)


def test_stratified_subset_is_balanced_and_deterministic():
    y = torch.arange(400) % 4
    index = experiments.stratified_subset(y, 100, seed=0)
    assert len(set(index.tolist())) == 100
    assert torch.bincount(y[index]).tolist() == [25, 25, 25, 25]
    assert torch.equal(index, experiments.stratified_subset(y, 100, seed=0))


def test_epochs_for_follows_the_recipe():
    assert experiments.epochs_for(100) * 100 >= experiments.RECIPE.min_samples
    assert experiments.epochs_for(5_000) * 5_000 <= experiments.RECIPE.max_samples + 5_000
