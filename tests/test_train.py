"""The training engine: fit, history, best-weights restore, Ctrl-C, cached features."""
import copy

import pytest
import torch
from torch import nn

from helpers import train

CPU = torch.device("cpu")


def separable_data(n: int = 256):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, 10, generator=gen)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return X, y


def test_fit_learns_a_separable_problem_and_records_history():
    X, y = separable_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))
    history = train.fit(model, X, y, epochs=15, lr=1e-2, batch_size=32, device=CPU, progress=False)
    assert len(history.train_loss) == 15 and history.train_loss[-1] < history.train_loss[0]
    assert train.accuracy(model, X, y) > 0.9


def test_fit_is_deterministic_for_a_seed():
    X, y = separable_data()
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(10, 2)
        train.fit(model, X, y, epochs=3, seed=5, device=CPU, progress=False)
        weights.append(model.weight.detach().clone())
    assert torch.equal(*weights)


def test_best_weights_are_restored():
    X, y = separable_data()
    torch.manual_seed(0)
    model = nn.Linear(10, 2)
    history = train.fit(model, X, y, epochs=6, device=CPU, X_val=X, y_val=y, progress=False)
    assert len(history.val_accuracy) == 6
    assert abs(train.accuracy(model, X, y) - max(history.val_accuracy)) < 1e-6


def test_ctrl_c_returns_the_best_model_so_far(monkeypatch):
    X, y = separable_data()
    after_epoch = []  # the weights at the end of each completed epoch
    real = train.train_one_epoch

    def interrupted(model, *args, **kwargs):
        if len(after_epoch) == 2:  # Ctrl-C in the middle of epoch 3, after some steps spoilt the weights
            with torch.no_grad():
                model.weight.add_(100.0)
            raise KeyboardInterrupt
        loss = real(model, *args, **kwargs)
        after_epoch.append(copy.deepcopy(model.state_dict()))
        return loss

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    torch.manual_seed(0)
    model = nn.Linear(10, 2)
    history = train.fit(model, X, y, epochs=10, device=CPU, X_val=X, y_val=y, progress=False)
    assert history.interrupted and len(history.train_loss) == len(history.val_accuracy) == 2
    assert history.best_epoch in (0, 1)
    best = after_epoch[history.best_epoch]
    assert all(torch.equal(model.state_dict()[name], best[name]) for name in best)


def test_cached_features_equal_the_backbone_output():
    backbone = nn.Sequential(nn.Linear(10, 4), nn.ReLU())
    X, _ = separable_data(50)
    with torch.no_grad():
        expected = backbone(X)
    assert torch.allclose(train.cached_features(backbone, X, device=CPU), expected)


def test_autocast_is_off_on_cpu():
    with train.autocast(CPU):
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.float32


def test_random_shift_flip_moves_and_mirrors_images_reproducibly():
    X = torch.arange(4 * 8 * 8, dtype=torch.float32).view(4, 1, 8, 8)
    out = train.random_shift_flip(X, torch.Generator().manual_seed(3), max_shift=2)
    again = train.random_shift_flip(X, torch.Generator().manual_seed(3), max_shift=2)
    assert out.shape == X.shape and torch.equal(out, again)
    assert not torch.equal(out, X)
    # no shift, no mirror: the images are unchanged
    assert torch.equal(train.random_shift_flip(X, torch.Generator().manual_seed(0), max_shift=0, flip=False), X)
    # a shift of zero keeps each image or its exact mirror image
    mirrored = train.random_shift_flip(X, torch.Generator().manual_seed(1), max_shift=0)
    for image, result in zip(X, mirrored):
        assert torch.equal(result, image) or torch.equal(result, image.flip(2))
    # every shifted image is a window of its reflect-padded original
    padded = nn.functional.pad(X, (2, 2, 2, 2), mode="reflect")
    shifted = train.random_shift_flip(X, torch.Generator().manual_seed(7), max_shift=2, flip=False)
    windows = {(dy, dx) for dy in range(5) for dx in range(5)
               if torch.equal(padded[:, :, dy:dy + 8, dx:dx + 8], shifted)}
    assert len(windows) == 1


def test_random_shift_flip_rejects_bad_input():
    with pytest.raises(ValueError, match="images"):
        train.random_shift_flip(torch.zeros(4, 8), torch.Generator())
    with pytest.raises(ValueError, match="max_shift"):
        train.random_shift_flip(torch.zeros(2, 1, 8, 8), torch.Generator(), max_shift=8)


def test_fit_applies_augment_to_training_batches_only():
    X, y = separable_data(64)
    seen = []

    def augment(batch, generator):
        seen.append(len(batch))
        return batch + 0.0
    torch.manual_seed(0)
    train.fit(nn.Linear(10, 2), X, y, epochs=2, batch_size=16, device=CPU, progress=False,
              augment=augment, X_val=X, y_val=y)
    assert seen == [16] * 8  # 4 batches x 2 epochs; validation is not augmented
