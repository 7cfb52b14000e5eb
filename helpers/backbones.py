"""Pre-trained backbones for your own images: torchvision's ResNet-18 (ImageNet) or the course's CNN.

Both come as a :class:`Backbone`: a network with ``features`` and ``head`` (so the course's
surgery — ``models.replace_head``, ``models.freeze_backbone``, ``models.parameter_groups`` —
works on either) and the preprocessing it was trained with. Only one line of notebook 06 picks
the backbone; the rest of the code path is the same.

* ``"resnet18"``: torchvision's ResNet-18 with ``ResNet18_Weights.DEFAULT`` (ImageNet-1k, 1,000
  classes) and *its own* preprocessing (``weights.transforms()``: resize 256, centre crop 224,
  ImageNet mean and std). The weights (45 MB) are fetched once, on request, with torch.hub's
  download and hash check (``python data_scripts/fetch_real.py weights``), into
  ``artifacts/weights/``; a failed or interrupted download leaves nothing behind. Nothing here
  downloads unless asked to.
* ``"course"``: the course's CNN pre-trained on task A (notebook 01), 32x32 grayscale, each
  image standardised — offline, always available.
"""
from __future__ import annotations

import math
import re
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from helpers import experiments, models
from helpers.config import Profile, artifacts_dir

BACKBONES = ("resnet18", "course")


class WeightsError(RuntimeError):
    """Pre-trained weights cannot be fetched or read; the message says what to do."""


class WeightsMissing(WeightsError):
    """The weights were never fetched (and this code does not download unless asked to)."""


class Classifier(nn.Module):
    """``features`` (image -> embedding) followed by ``head`` (embedding -> logits)."""

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features, self.head = features, head

    @property
    def blocks(self) -> list[nn.Module]:
        """The stages of the backbone in order (ResNet: layer1..layer4; the course CNN: its conv blocks)."""
        return [m for m in self.features if isinstance(m, nn.Sequential)]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@dataclass
class Preprocess:
    """How a backbone wants its images: size, channels and normalisation (evaluation and training)."""

    crop_size: int  # the network's input side, pixels
    resize_size: int  # evaluation: resize the shorter side to this, then crop the centre
    channels: int  # 3 RGB, 1 grayscale
    mean: tuple[float, ...] | None  # per channel on 0-1 pixels; None: each image standardised on its own
    std: tuple[float, ...] | None

    def normalise(self, X: Tensor) -> Tensor:
        """float images at the input size -> what the network was trained on."""
        if self.mean is None:
            from helpers.data.images import normalize

            return normalize(X * 255.0)
        mean = torch.tensor(self.mean, device=X.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=X.device).view(1, -1, 1, 1)
        return (X - mean) / std

    def evaluation(self, X: Tensor) -> Tensor:
        """uint8 [N, C, H, W] -> normalised float [N, C, crop, crop]: resize, centre crop (no randomness)."""
        from torchvision.transforms.v2 import functional as F

        X = F.center_crop(F.resize(X, [self.resize_size], antialias=True), [self.crop_size, self.crop_size])
        return self.normalise(X.float() / 255.0)

    def training(self, X: Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.35, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True) -> Tensor:
        """Random resized crop (a different one per image) and mirror: uint8 -> normalised float.

        Each image gets its own crop of ``scale`` of its area with aspect ``ratio``, resized to the
        input size (bilinear), as torchvision's ``RandomResizedCrop``; all draws come from ``generator``.
        """
        n = len(X)
        area = torch.empty(n).uniform_(*scale, generator=generator)
        log_ratio = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
        aspect = log_ratio.exp()
        w = (area * aspect).sqrt().clamp(max=1.0)
        h = (area / aspect).sqrt().clamp(max=1.0)
        cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - w)
        cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - h)
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2] = w * sign, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        theta = theta.to(X.device)
        grid = nn.functional.affine_grid(theta, [n, X.shape[1], self.crop_size, self.crop_size], align_corners=False)
        out = nn.functional.grid_sample(X.float() / 255.0, grid, mode="bilinear", padding_mode="reflection",
                                        align_corners=False)
        return self.normalise(out)


@dataclass
class Backbone:
    """A pre-trained network ready for surgery, and how to feed it."""

    name: str
    model: Classifier  # ``head`` is still the pre-trained output layer (W[L], b[L])
    preprocess: Preprocess
    description: str
    source_classes: int  # outputs of the original head (ImageNet: 1,000)
    build: dict  # how to rebuild the architecture (saved with a trained model)

    @property
    def load_size(self) -> int:
        """The side at which a folder's images are stored for this backbone."""
        return self.preprocess.resize_size


# ---- ResNet-18 weights: fetched once, on request, verified by torch.hub's hash check ----------

def weights_dir() -> Path:
    """Where fetched weights live: ``artifacts/weights/``."""
    return artifacts_dir() / "weights"


def _resnet_weights():  # noqa: ANN202 - a torchvision enum member
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.DEFAULT


def weights_file(url: str | None = None) -> Path:
    """The path the ResNet-18 weights have (or will have) once fetched from ``url``."""
    url = url or _resnet_weights().url
    return weights_dir() / url.rsplit("/", 1)[-1]


def weights_available(url: str | None = None) -> bool:
    return weights_file(url).is_file()


def fetch_weights(url: str | None = None, progress: bool = True) -> Path:
    """Download ResNet-18's ImageNet weights (once) and check their hash; returns the file.

    torch.hub downloads into a temporary file beside the target and moves it into place only
    when the SHA-256 starts with the hash in the file's name (torchvision's convention,
    ``resnet18-f37072fd.pth``), so a failed, corrupt or interrupted download leaves nothing.
    ``url``: another address with the same naming convention (a mirror; the tests use a local one).
    """
    url = url or _resnet_weights().url
    name = url.rsplit("/", 1)[-1]
    if not re.search(r"-([a-f0-9]{6,})\.", name):
        raise WeightsError(f"{name}: the file name must carry its hash (like resnet18-f37072fd.pth) so that the "
                           "download can be checked")
    target = weights_file(url)
    if target.is_file():
        return target
    weights_dir().mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.load_state_dict_from_url(url, model_dir=str(weights_dir()), map_location="cpu", progress=progress,
                                           check_hash=True, weights_only=True)
    except urllib.error.URLError as exc:
        raise WeightsError(f"cannot download {url} ({getattr(exc, 'reason', exc)}); nothing was kept. Check the "
                           "network and run `python data_scripts/fetch_real.py weights` again, or use "
                           "backbone='course', which needs no download.") from exc
    except RuntimeError as exc:
        if "invalid hash value" in str(exc):
            raise WeightsError(f"the file downloaded from {url} does not match its hash ({exc}); it was deleted. "
                               "Run the command again; if it persists the server sends a different file.") from exc
        raise
    except OSError as exc:  # connection reset, incomplete read, disk full
        raise WeightsError(f"the download of {url} failed ({exc}); nothing was kept: run it again") from exc
    finally:
        for partial in weights_dir().glob(f"{name}.*.partial"):
            partial.unlink(missing_ok=True)
    return target


def _resnet_features(resnet: nn.Module) -> nn.Sequential:
    stages = [resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4]
    # the stages are the only Sequential children: Classifier.blocks finds them (the last block: layer4)
    return nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, *stages, resnet.avgpool, nn.Flatten())


def resnet18(url: str | None = None, weights: bool = True) -> Backbone:
    """ResNet-18 with its ImageNet weights (fetched before; see :func:`fetch_weights`).

    ``weights=False`` gives the same architecture randomly initialised (for timing and tests).
    """
    from torchvision.models import resnet18 as build_resnet18

    resnet = build_resnet18(weights=None)
    if weights:
        path = weights_file(url)
        if not path.is_file():
            raise WeightsMissing(f"ResNet-18's ImageNet weights are not in {weights_dir()}: fetch them once with "
                                 "`python data_scripts/fetch_real.py weights` (45 MB, needs a network), "
                                 "or use backbone='course', which runs offline.")
        try:
            resnet.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, OSError, EOFError) as exc:
            raise WeightsError(f"cannot read {path} ({exc}): delete it and fetch it again") from exc
    meta = _resnet_weights().transforms()
    preprocess = Preprocess(crop_size=meta.crop_size[0], resize_size=meta.resize_size[0], channels=3,
                            mean=tuple(meta.mean), std=tuple(meta.std))
    model = Classifier(_resnet_features(resnet), resnet.fc)
    described = "ResNet-18, ImageNet-1k weights (torchvision)" if weights else "ResNet-18, random weights"
    return Backbone("resnet18", model, preprocess, described, resnet.fc.out_features,
                    {"kind": "resnet18"})


def course(profile: Profile, device: torch.device | None = None) -> Backbone:
    """The course's CNN pre-trained on task A (built and cached by notebook 01 if needed)."""
    net, info = experiments.pretrained_backbone(profile, device=device)
    model = Classifier(net.features, net.head)
    preprocess = Preprocess(crop_size=32, resize_size=32, channels=1, mean=None, std=None)
    return Backbone("course", model, preprocess,
                    f"the course's CNN, pre-trained on task A ({info['n_task_a']:,} generated images)",
                    net.head.out_features, {"kind": "course", "width": profile.width})


def load(name: str, profile: Profile, device: torch.device | None = None, fallback: bool = False) -> Backbone:
    """The backbone called ``name``; with ``fallback``, the course's CNN when ResNet-18's weights are absent."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    if name == "resnet18":
        try:
            return resnet18()
        except WeightsMissing as missing:
            if not fallback:
                raise
            print(f"{missing}\n-> using the course's CNN instead (same code path).")
    return course(profile, device)


def architecture(build: dict, num_classes: int) -> Classifier:
    """A randomly initialised network of the saved kind with ``num_classes`` outputs (to load weights into)."""
    if build["kind"] == "resnet18":
        backbone = resnet18(weights=False)
        model = backbone.model
    elif build["kind"] == "course":
        net = models.ImageCNN(num_classes, width=build["width"])
        model = Classifier(net.features, net.head)
    else:
        raise ValueError(f"unknown architecture {build['kind']!r} in a saved model")
    return models.replace_head(model, num_classes)
