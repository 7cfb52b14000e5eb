"""The image backbone: a small CNN whose last layer is called ``head`` (W[L], b[L])."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def conv_block(c_in: int, c_out: int, pool: bool = True) -> nn.Sequential:
    """conv 3x3 -> (max-pool) -> BatchNorm -> ReLU.

    Pooling before BN/ReLU gives the same function class as after it (max commutes with the
    monotone ReLU; BN then sees 4x fewer pixels), and trains ~1.5x faster on a CPU.
    """
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class ImageCNN(nn.Module):
    """Four conv blocks, global average pooling, and one linear output layer ``head``.

    ``features`` (blocks + pooling) maps an image to an embedding; ``head`` maps the embedding to
    one logit per class. Transfer learning in this course is surgery on ``head``.
    """

    def __init__(self, num_classes: int, width: int = 32, in_channels: int = 1) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_block(in_channels, w), conv_block(w, 2 * w), conv_block(2 * w, 4 * w),
            conv_block(4 * w, 4 * w, pool=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * w, num_classes)

    @property
    def blocks(self) -> list[nn.Module]:
        """The conv blocks in order (the last one is "the last block" of the lecture)."""
        return [m for m in self.features if isinstance(m, nn.Sequential)]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def filter_structure(weights: Tensor) -> float:
    """How spatially organised conv filters [out, in, k, k] are, from -1 to 1.

    The correlation between horizontally and vertically neighbouring weights (each filter's
    mean removed). Edge, bar and blob detectors change smoothly across the kernel (positive);
    random initial weights score about 0.
    """
    w = weights.float().flatten(0, 1)
    w = w - w.mean(dim=(1, 2), keepdim=True)
    pairs = [(w[:, :, :-1], w[:, :, 1:]), (w[:, :-1, :], w[:, 1:, :])]
    a = torch.cat([p.flatten() for p, _ in pairs])
    b = torch.cat([q.flatten() for _, q in pairs])
    return torch.corrcoef(torch.stack([a, b]))[0, 1].item()
