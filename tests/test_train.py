"""The training engine: fit, history, best-weights restore, Ctrl-C, cached features."""
import copy

import pytest
import torch
from torch import nn

from helpers import runtime, train
from helpers.config import ConfigError
from helpers.recipes import FineTuneRecipe, experiment_key

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


def test_cached_features_equal_the_backbone_output(monkeypatch):
    backbone = nn.Sequential(nn.Linear(10, 4), nn.ReLU())
    X, _ = separable_data(50)
    with torch.no_grad():
        expected = backbone(X)
    monkeypatch.setenv("TL_CPU_BF16", "0")
    assert torch.allclose(train.cached_features(backbone, X, device=CPU), expected)
    monkeypatch.setenv("TL_CPU_BF16", "1")  # computed in bf16, returned as float32
    features = train.cached_features(backbone, X, device=CPU)
    assert features.dtype == torch.float32 and torch.allclose(features, expected, rtol=0.02, atol=0.02)


def test_autocast_on_cpu_follows_tl_cpu_bf16(monkeypatch):
    monkeypatch.setenv("TL_CPU_BF16", "0")
    with train.autocast(CPU):
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.float32 and runtime.numerics(CPU) == "fp32"
    monkeypatch.setenv("TL_CPU_BF16", "1")
    with train.autocast(CPU):
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and runtime.numerics(CPU) == "bf16 autocast"
    monkeypatch.delenv("TL_CPU_BF16")  # unset: what the CPU has
    assert runtime.numerics(CPU) == ("bf16 autocast" if runtime.cpu_has_bf16() else "fp32")
    monkeypatch.setenv("TL_CPU_BF16", "maybe")
    with pytest.raises(ConfigError, match="TL_CPU_BF16"):
        runtime.numerics(CPU)


def test_experiment_keys_name_the_numerics(monkeypatch):
    monkeypatch.setenv("TL_DEVICE", "cpu")
    keys = {}
    for setting in ("0", "1"):
        monkeypatch.setenv("TL_CPU_BF16", setting)
        keys[setting] = experiment_key("run", 1, recipes=[FineTuneRecipe()], seed=0)
    assert keys["0"]["numerics"] == "fp32" and keys["1"]["numerics"] == "bf16 autocast"
    assert {k: v for k, v in keys["0"].items() if k != "numerics"} == \
        {k: v for k, v in keys["1"].items() if k != "numerics"}


def test_fit_under_cpu_bf16_is_reproducible_and_learns(monkeypatch):
    monkeypatch.setenv("TL_CPU_BF16", "1")
    X, y = separable_data(256)
    weights, losses = [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(X.shape[1], 16), nn.ReLU(), nn.Linear(16, 2))
        history = train.fit(model, X, y, epochs=8, lr=1e-2, batch_size=32, seed=0, device=CPU, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        losses.append(history.train_loss)
    assert torch.equal(weights[0], weights[1]) and weights[0].dtype == torch.float32
    assert losses[0][-1] < losses[0][0] / 2
    assert train.accuracy(model, X, y) > 0.9


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


def _train_steps(optimizer_class, model: nn.Module, groups, steps: int = 25) -> nn.Module:
    """A few steps of a one-cycle schedule; ``groups`` maps the model to parameter groups."""
    gen = torch.Generator().manual_seed(3)
    X, y = torch.randn(32, 10, generator=gen), torch.randint(0, 3, (32,), generator=gen)
    optimizer = optimizer_class(groups(model), lr=2e-3, weight_decay=5e-4, **(
        {"fused": True} if optimizer_class is torch.optim.AdamW else {}))
    scheduler = train.one_cycle(optimizer, steps)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(X), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model


@pytest.mark.parametrize("grouping", ["one group", "two rates and an unused parameter"])
def test_lean_adamw_gives_torch_fused_adamws_weights_bit_for_bit(grouping):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    unused = nn.Parameter(torch.ones(4))  # in a group but never in the graph: no gradient, no update

    def groups(model):
        if grouping == "one group":
            return list(model.parameters())
        return [{"params": list(model[0].parameters()) + [unused], "lr": 2e-4}, {"params": model[2].parameters()}]

    torch_model = _train_steps(torch.optim.AdamW, copy.deepcopy(base), groups)
    lean_model = _train_steps(train.LeanAdamW, copy.deepcopy(base), groups)
    assert all(torch.equal(a, b) for a, b in zip(torch_model.state_dict().values(), lean_model.state_dict().values()))
    assert not torch.equal(torch_model[2].weight, base[2].weight)  # it trained
    assert torch.equal(unused, torch.ones(4))


def test_lean_adamw_state_round_trips_through_state_dict():
    torch.manual_seed(0)
    model = nn.Linear(10, 3)
    optimizer, _ = train.make_optimizer(model.parameters(), 1e-3, 0.0, 10)
    nn.functional.cross_entropy(model(torch.randn(4, 10)), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()
    again, _ = train.make_optimizer(model.parameters(), 1e-3, 0.0, 10)
    again.load_state_dict(optimizer.state_dict())
    assert float(again.state[model.weight]["step"]) == 1.0
    assert torch.equal(again.state[model.weight]["exp_avg"], optimizer.state[model.weight]["exp_avg"])


def test_lean_adamw_hands_what_it_does_not_cover_to_torch():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))

    def amsgrad(model):  # a group asking for AMSGrad: LeanAdamW's own step does not do it
        return [{"params": list(model[0].parameters()), "amsgrad": True}, {"params": model[2].parameters()}]

    torch_model = _train_steps(torch.optim.AdamW, copy.deepcopy(base), amsgrad)
    lean_model = _train_steps(train.LeanAdamW, copy.deepcopy(base), amsgrad)
    assert all(torch.equal(a, b) for a, b in zip(torch_model.state_dict().values(), lean_model.state_dict().values()))


def test_lean_adamw_hands_a_group_of_mixed_dtypes_to_torch():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    base[0].double()  # one layer in float64: torch's step groups tensors by dtype, one kernel each
    class Mixed(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model[2](self.model[1](self.model[0](x.double())).float())

    torch_model = _train_steps(torch.optim.AdamW, Mixed(copy.deepcopy(base)), lambda m: list(m.parameters()))
    lean_model = _train_steps(train.LeanAdamW, Mixed(copy.deepcopy(base)), lambda m: list(m.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(torch_model.state_dict().values(), lean_model.state_dict().values()))
