"""A keyword-spotting backbone for log-mel input: TC-ResNet (temporal convolutions).

TC-ResNet (Choi et al., 2019) treats the mel bands as *channels* and convolves along time
only, so a small network sees the whole spectrum in its first layer and stays fast on a CPU.
``KeywordNet(width=16)`` is TC-ResNet8: ~66k parameters.

The network is split the way the lecture talks about it::

    model.features(x)   # all but the last layer (nn.Sequential): embedding [n, embedding_dim]
    model.head          # the last layer, nn.Linear: W[L], b[L]

so head surgery is ``model.head = nn.Sequential(...)``, and ``forward(x)`` is
``head(features(x))``. Global average pooling over time makes the embedding independent of the
clip length: a network trained on 1-s words runs unchanged on 1.5-s wake-word windows.
"""
from __future__ import annotations

import torch
from torch import nn


class TemporalBlock(nn.Module):
    """Two (1 x 9) temporal convolutions with BatchNorm and a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int = 9) -> None:
        super().__init__()
        pad = (0, kernel // 2)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (1, kernel), (1, stride), pad, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (1, kernel), 1, pad, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        # A 1x1 projection only where the shape changes, as in ResNet.
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, (1, stride), bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class MelsAsChannels(nn.Module):
    """[n, 1, n_mels, frames] -> [n, n_mels, 1, frames]: mel bands become conv channels."""

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.n_mels = n_mels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ValueError(f"expected log-mel input [n, 1, {self.n_mels}, frames], "
                             f"got {tuple(x.shape)}")
        return x.transpose(1, 2)


class KeywordNet(nn.Module):
    """TC-ResNet8-style keyword spotter: log-mel [n, 1, n_mels, frames] -> logits [n, num_classes].

    ``width`` is the stem's channel count; the three blocks have 1.5x, 2x and 3x as many
    (width 16: TC-ResNet8, width 24: TC-ResNet8-1.5). ``features`` (an nn.Sequential: per-mel
    BatchNorm, since the features are absolute dB; stem; blocks; pooling) maps a clip to an
    embedding of ``embedding_dim``; ``head`` (nn.Linear) maps it to one logit per class.
    """

    def __init__(self, n_mels: int = 40, num_classes: int = 2, width: int = 16) -> None:
        super().__init__()
        if n_mels < 1 or num_classes < 1 or width < 2:
            raise ValueError(f"need n_mels >= 1, num_classes >= 1, width >= 2; got "
                             f"{n_mels}, {num_classes}, {width}")
        channels = [width, width * 3 // 2, width * 2, width * 3]
        self.features = nn.Sequential(
            MelsAsChannels(n_mels),
            nn.BatchNorm2d(n_mels),
            nn.Conv2d(n_mels, channels[0], (1, 3), padding=(0, 1), bias=False),  # the stem
            *(TemporalBlock(c_in, c_out, stride=2) for c_in, c_out in zip(channels, channels[1:])),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.embedding_dim = channels[-1]
        self.head = nn.Linear(self.embedding_dim, num_classes)

    @property
    def blocks(self) -> list[nn.Module]:
        """The residual blocks in order (the last one is "the last block" of the lecture)."""
        return [m for m in self.features if isinstance(m, TemporalBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
