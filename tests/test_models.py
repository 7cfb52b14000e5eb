"""Head surgery, freezing and parameter groups of helpers.models."""
import pytest
import torch
from torch import nn

from helpers import models, train


def small_net(classes: int = 5) -> models.ImageCNN:
    torch.manual_seed(0)
    return models.ImageCNN(classes, width=8)


def test_replace_head_keeps_backbone_and_changes_head():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    models.replace_head(net, 3)
    assert net.head.out_features == 3
    for name, value in net.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(value, before[name]), name
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 3)


def test_replace_head_with_several_new_layers():
    net = models.replace_head(small_net(), 2, hidden=(16, 8))
    linears = [m for m in net.head if isinstance(m, nn.Linear)]
    assert [layer.out_features for layer in linears] == [16, 8, 2]
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 2)


def test_frozen_backbone_is_bit_identical_after_training_including_batchnorm():
    net = models.replace_head(small_net(), 3)
    models.freeze_backbone(net)
    frozen_before = {k: v.clone() for k, v in net.features.state_dict().items()}
    X, y = torch.randn(64, 1, 32, 32), torch.randint(0, 3, (64,))
    train.fit(net, X, y, epochs=2, batch_size=16, device=torch.device("cpu"), progress=False)
    net.train()  # even after model.train(), frozen BatchNorm must not update
    net(torch.randn(8, 1, 32, 32))
    for name, value in net.features.state_dict().items():
        assert torch.equal(value, frozen_before[name]), name
    assert any("running_mean" in name for name in frozen_before)


def test_naive_freeze_lets_batchnorm_drift():
    net = small_net()
    net.features.requires_grad_(False)
    before = net.features[0][2].running_mean.clone()
    net.train()(torch.randn(8, 1, 32, 32) + 3)
    assert not torch.equal(before, net.features[0][2].running_mean)


def test_unfrozen_last_block_trains_and_its_batchnorm_updates():
    net = models.replace_head(small_net(), 3)
    models.freeze_backbone(net, train_last_blocks=1)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in net.named_parameters() if n.startswith(("features.3.", "head."))}
    before = net.blocks[-1][1].running_mean.clone()
    net.train()(torch.randn(8, 1, 32, 32))
    assert not torch.equal(before, net.blocks[-1][1].running_mean)


def test_optimizer_holds_only_trainable_parameters():
    net = models.replace_head(small_net(), 3)
    models.freeze_backbone(net)
    optimizer, _ = train.make_optimizer(models.trainable_parameters(net), 1e-3, 0.0, 10)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(net.head.weight), id(net.head.bias)}


def test_parameter_groups_have_their_own_learning_rates():
    net = small_net()
    groups = models.parameter_groups(net, head_lr=1e-2, backbone_lr=1e-3)
    assert [g["lr"] for g in groups] == [1e-2, 1e-3]
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_filter_structure_separates_smooth_from_random_filters():
    smooth = torch.linspace(-1, 1, 3).view(1, 1, 1, 3).expand(8, 1, 3, 3).clone()
    assert models.filter_structure(smooth) > 0.3
    assert abs(models.filter_structure(torch.randn(256, 1, 3, 3))) < 0.2


def test_unknown_strategy_is_an_error():
    from helpers import experiments
    with pytest.raises(ValueError, match="choose one of"):
        experiments.split_for_strategy(small_net(), "middle layers")
