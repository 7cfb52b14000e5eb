"""Head surgery and freezing: the operations the lecture describes, as small functions."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn


def replace_head(model: nn.Module, num_classes: int, hidden: Sequence[int] = ()) -> nn.Module:
    """Delete ``model.head`` (W[L], b[L]) and put a new, randomly initialised head in its place.

    ``hidden`` adds several new layers (Linear -> ReLU per width) before the new output layer,
    as in the lecture's wake-word example. Returns the model (changed in place).
    """
    in_features = model.head.in_features if isinstance(model.head, nn.Linear) \
        else model.head[0].in_features
    del model.head  # the old output layer and its weights are gone
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    model.head = layers[0] if len(layers) == 1 else nn.Sequential(*layers)
    return model


def _keep_frozen_bn_in_eval(layer: nn.Module, _inputs: object) -> None:
    """Forward pre-hook: a frozen BatchNorm layer never runs in train mode."""
    if layer._tl_frozen:
        layer.training = False


def _batchnorms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _iter_modules(modules: nn.Module | Iterable[nn.Module]) -> list[nn.Module]:
    return [modules] if isinstance(modules, nn.Module) else list(modules)


def freeze(modules: nn.Module | Iterable[nn.Module]) -> None:
    """Stop training ``modules``: no gradients, and their BatchNorm statistics stay fixed.

    ``requires_grad=False`` alone is not enough: a BatchNorm layer in train mode keeps updating
    its running mean/var from every batch it sees, so a "frozen" backbone would still drift. A
    pre-hook therefore keeps frozen BatchNorm layers in eval mode even after ``model.train()``.
    """
    for module in _iter_modules(modules):
        for param in module.parameters():
            param.requires_grad_(False)
        for layer in _batchnorms(module):
            layer._tl_frozen = True  # type: ignore[assignment]
            layer.training = False
            if not getattr(layer, "_tl_hooked", False):
                layer.register_forward_pre_hook(_keep_frozen_bn_in_eval)
                layer._tl_hooked = True  # type: ignore[assignment]


def unfreeze(modules: nn.Module | Iterable[nn.Module]) -> None:
    """Train ``modules`` again (gradients on, BatchNorm follows ``model.train()`` again)."""
    for module in _iter_modules(modules):
        for param in module.parameters():
            param.requires_grad_(True)
        for layer in _batchnorms(module):
            layer._tl_frozen = False  # type: ignore[assignment]


def freeze_backbone(model: nn.Module, train_last_blocks: int = 0) -> None:
    """Freeze everything but ``model.head`` and the last ``train_last_blocks`` conv blocks."""
    freeze(model.features)
    if train_last_blocks:
        unfreeze(model.blocks[-train_last_blocks:])


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def parameter_groups(model: nn.Module, head_lr: float, backbone_lr: float) -> list[dict]:
    """Two optimiser groups: the head at ``head_lr``, the (trainable) rest at ``backbone_lr``."""
    head = [p for p in model.head.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head, "lr": head_lr, "name": "head"}]
    return groups + ([{"params": rest, "lr": backbone_lr, "name": "backbone"}] if rest else [])
