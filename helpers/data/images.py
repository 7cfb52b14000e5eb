"""Generated images for the two image tasks of the course (all SIMULATED, all offline).

* **Task A — "generic image recognition"** stands in for a million labelled photos: grayscale
  procedural objects in 24 classes (shapes filled and outlined, strokes, junctions, blob
  counts, gratings, textures, a star, and "nothing"), each drawn at a random position, scale
  (blob-like classes down to a few pixels), rotation, edge softness and contrast polarity over a
  *structured* background — smooth shading, a faint grating in most images and a large, soft,
  low-contrast shape — then blurred and noised. To tell the classes apart a network has to find
  small, faint edges, curves, corners, blobs and textures among background structure: the
  low-level features that lecture point 4 says transfer. It is deliberately hard: at 32 px, even
  with the largest pre-training budget of the profiles (helpers/config.py: ``n_task_a`` images x
  ``pretrain_epochs``) the small CNN stays well short of 100 % on its test set (README.md lists
  the measured accuracies).
* **Task B — "X-ray diagnosis"** stands in for a hundred labelled radiographs: *simulated* chest
  phantoms (body outline, dark lung fields, ribs, spine, heart) with a diagnosis each — normal,
  nodule, cavity, spiculated mass, effusion or cardiomegaly — under varying pose, anatomy,
  exposure, blur and noise. They are NOT real X-rays and nothing learned here is medical
  knowledge.

Everything is vectorised: images are rendered in chunks from signed-distance fields on a pixel
grid, deterministically from a seed, and cached as uint8 under ``data/``.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

GENERATOR_VERSION = 3  # bump when any drawing code changes: old caches are then ignored
CHUNK = 2_000  # images per chunk: measured ~5x faster than one giant tensor on this VM

TASK_A_CLASSES = (
    "disc", "circle", "square", "square outline", "triangle", "triangle outline", "plus", "bar",
    "parallel bars", "arc", "corner", "t-junction", "two discs", "three discs",
    "coarse grating", "fine grating", "checkerboard", "dot lattice",
    "bullseye", "ring with dot", "blob field", "speckle patch",
    "star", "nothing",
)
TASK_B_CLASSES = ("normal", "nodule", "cavity", "spiculated mass", "effusion", "cardiomegaly")


def _grid(n: int, size: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates in [-1, 1], shaped [n, size, size] (x to the right, y down)."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return x.expand(n, size, size), y.expand(n, size, size)


def _col(t: Tensor) -> Tensor:
    return t.view(-1, 1, 1)


def _frame(x: Tensor, y: Tensor, cx: Tensor, cy: Tensor, angle: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """Coordinates in each object's own frame: shifted, rotated and scaled to unit size."""
    dx, dy = x - _col(cx), y - _col(cy)
    cos, sin = _col(torch.cos(angle)), _col(torch.sin(angle))
    return (cos * dx + sin * dy) / _col(scale), (-sin * dx + cos * dy) / _col(scale)


def _box(u: Tensor, v: Tensor, half_w: float | Tensor, half_h: float | Tensor) -> Tensor:
    return torch.maximum(u.abs() - half_w, v.abs() - half_h)


def _disc(u: Tensor, v: Tensor, r: float | Tensor, du: float = 0.0, dv: float = 0.0) -> Tensor:
    return torch.sqrt((u - du) ** 2 + (v - dv) ** 2) - r


def _triangle(u: Tensor, v: Tensor) -> Tensor:
    sides = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
    return torch.stack([u * cu + v * cv for cu, cv in sides]).amax(0) - 0.45


def _star(u: Tensor, v: Tensor) -> Tensor:
    """A round core with radiating spikes."""
    angle = torch.atan2(v, u)
    return torch.sqrt(u**2 + v**2) - (0.3 + 0.45 * torch.cos(angle * 6).clamp(min=0) ** 3)


def _outline(d: Tensor, width: float = 0.12) -> Tensor:
    return d.abs() - width


def _texture(u: Tensor, v: Tensor, inside: Tensor, pattern: Tensor) -> Tensor:
    """A texture clipped to a disc: negative (ink) where the pattern is on."""
    return torch.maximum(inside, -pattern)


# Each shape maps object-frame coordinates (u, v) and a per-image random tensor r in [0, 1)
# to a signed distance: negative inside the ink.
SHAPES: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "disc": lambda u, v, r: _disc(u, v, 0.6),
    "circle": lambda u, v, r: _outline(_disc(u, v, 0.6)),
    "square": lambda u, v, r: _box(u, v, 0.5, 0.5),
    "square outline": lambda u, v, r: _outline(_box(u, v, 0.5, 0.5)),
    "triangle": lambda u, v, r: _triangle(u, v) * 1.4,
    "triangle outline": lambda u, v, r: _outline(_triangle(u, v) * 1.4),
    "plus": lambda u, v, r: torch.minimum(_box(u, v, 0.7, 0.14), _box(u, v, 0.14, 0.7)),
    "bar": lambda u, v, r: _box(u, v, 0.85, 0.14),
    "parallel bars": lambda u, v, r: torch.minimum(_box(u, v - 0.35, 0.8, 0.12), _box(u, v + 0.35, 0.8, 0.12)),
    "arc": lambda u, v, r: torch.maximum(_outline(_disc(u, v, 0.6)), v - 0.1),
    "corner": lambda u, v, r: torch.minimum(_box(u + 0.3, v, 0.13, 0.7), _box(u + 0.05, v - 0.57, 0.35, 0.13)),
    "t-junction": lambda u, v, r: torch.minimum(_box(u, v + 0.57, 0.75, 0.13), _box(u, v + 0.05, 0.13, 0.6)),
    "two discs": lambda u, v, r: torch.minimum(_disc(u, v, 0.3, -0.45), _disc(u, v, 0.3, 0.45)),
    "three discs": lambda u, v, r: torch.minimum(torch.minimum(
        _disc(u, v, 0.26, -0.5, 0.3), _disc(u, v, 0.26, 0.5, 0.3)), _disc(u, v, 0.26, 0.0, -0.5)),
    "coarse grating": lambda u, v, r: _texture(u, v, _disc(u, v, 0.8), torch.sin(u * 7.0)),
    "fine grating": lambda u, v, r: _texture(u, v, _disc(u, v, 0.8), torch.sin(u * 14.0)),
    "checkerboard": lambda u, v, r: _texture(u, v, _box(u, v, 0.7, 0.7), torch.sin(u * 6) * torch.sin(v * 6)),
    "dot lattice": lambda u, v, r: _texture(u, v, _box(u, v, 0.75, 0.75),
                                            torch.cos(u * 9) + torch.cos(v * 9) - 1.0),
    "bullseye": lambda u, v, r: torch.minimum(_outline(_disc(u, v, 0.65), 0.1), _disc(u, v, 0.22)),
    "ring with dot": lambda u, v, r: torch.minimum(_outline(_disc(u, v, 0.65), 0.1), _disc(u, v, 0.14, 0.3, 0.2)),
    "blob field": lambda u, v, r: _texture(u, v, _disc(u, v, 0.85),
                                           torch.sin(u * 4 + 9 * _col(r)) * torch.sin(v * 5 + 5 * _col(r)) - 0.4),
    "speckle patch": lambda u, v, r: _texture(u, v, _box(u, v, 0.7, 0.7),
                                              torch.sin(u * 17 + v * 5) * torch.sin(v * 15 - u * 3) - 0.2),
    "star": lambda u, v, r: _star(u, v),
    "nothing": lambda u, v, r: torch.ones_like(u),  # no object (only a faint uniform offset)
}
assert tuple(SHAPES) == TASK_A_CLASSES

# The NEAR task: new object classes that task A never showed, drawn the same way over the same
# scenes. Its low-level features (edges, curves, corners at these scales) are task A's, so it is
# the task where "retrain only the last layer(s)" should win with little data (notebook 03). Its
# twelve classes come in six look-alike pairs (an ellipse and a narrow one, a crescent and a thin
# one, ...): telling the pairs apart takes finer distinctions than any task A made, which all
# layers can learn with enough images and a frozen backbone cannot. With only the first of each
# pair (six classes), the standard profile's frozen backbone kept up: all layers led by +2.5 points
# at 2,000 a class (seeds 0-4), short of notebook 03's bar (research/issue13_task_a/near_pairs.*).
NEAR_SHAPES: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "ellipse": lambda u, v, r: _disc(u, v * 2.0, 0.6) * 0.6,
    "narrow ellipse": lambda u, v, r: _disc(u, v * 3.2, 0.65) * 0.45,
    "crescent": lambda u, v, r: torch.maximum(_disc(u, v, 0.6), -_disc(u, v, 0.5, 0.3)),
    "thin crescent": lambda u, v, r: torch.maximum(_disc(u, v, 0.6), -_disc(u, v, 0.55, 0.15)),
    "half disc": lambda u, v, r: torch.maximum(_disc(u, v, 0.65), v - 0.05),
    "quarter disc": lambda u, v, r: torch.maximum(torch.maximum(_disc(u + 0.3, v + 0.3, 0.85), v - 0.3), u - 0.3),
    "arrow": lambda u, v, r: torch.minimum(_box(u + 0.2, v, 0.5, 0.11), _triangle(-v, u - 0.45) * 1.4),
    "double arrow": lambda u, v, r: torch.minimum(torch.minimum(_box(u, v, 0.5, 0.11), _triangle(-v, u - 0.5) * 1.6),
                                                  _triangle(v, -u - 0.5) * 1.6),
    "zigzag": lambda u, v, r: torch.minimum(torch.minimum(_box(u, v - 0.5, 0.55, 0.1), _box(u, v + 0.5, 0.55, 0.1)),
                                            _box((u + v) * 0.7071, (v - u) * 0.7071, 0.7, 0.1)),
    "wave": lambda u, v, r: torch.maximum((v - 0.3 * torch.sin(u * 5)).abs() - 0.12, u.abs() - 0.8),
    "dumbbell": lambda u, v, r: torch.minimum(torch.minimum(_disc(u, v, 0.25, -0.55), _disc(u, v, 0.25, 0.55)),
                                              _box(u, v, 0.55, 0.08)),
    "chain": lambda u, v, r: torch.minimum(torch.minimum(_disc(u, v, 0.2, -0.6), _disc(u, v, 0.2, 0.6)),
                                           torch.minimum(_disc(u, v, 0.2), _box(u, v, 0.6, 0.06))),
}
NEAR_CLASSES = tuple(NEAR_SHAPES)


def _smooth_noise(n: int, size: int, cells: int, gen: torch.Generator) -> Tensor:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bilinearly."""
    coarse = torch.rand(n, 1, cells, cells, generator=gen) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def _blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Per-image Gaussian blur (sigma in pixels, 0 = none) via a 5-tap separable kernel."""
    taps = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-taps**2 / (2 * sigma.clamp(min=1e-3).view(-1, 1) ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # [n, 5]
    padded = torch.nn.functional.pad(images[:, None], (2, 2, 2, 2), mode="replicate")[:, 0]
    rows = sum(kernel[:, i].view(-1, 1, 1) * padded[:, :, i:i + images.shape[-1]] for i in range(5))
    return sum(kernel[:, i].view(-1, 1, 1) * rows[:, i:i + images.shape[-2], :] for i in range(5))


def _ink(distance: Tensor, size: int) -> Tensor:
    """Anti-aliased coverage from a signed distance (about one pixel wide edge)."""
    return torch.sigmoid(-distance * size / 1.5)


def _grating(x: Tensor, y: Tensor, n: int, gen: torch.Generator) -> Tensor:
    """A sinusoidal grating in [-1, 1] of random frequency, orientation and phase per image."""
    angle = _col(torch.rand(n, generator=gen) * math.pi)
    freq = _col(4 + 14 * torch.rand(n, generator=gen))
    phase = _col(torch.rand(n, generator=gen) * 2 * math.pi)
    return torch.sin((torch.cos(angle) * x + torch.sin(angle) * y) * freq + phase)


def _scene(n: int, size: int, gen: torch.Generator) -> Tensor:
    """A structured background: smooth shading, a faint grating (in some images) and a large,
    soft, low-contrast shape, so that objects must be found against structure, not a flat field."""
    x, y = _grid(n, size)
    rand = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)  # noqa: E731
    cells = int(torch.randint(3, 7, (1,), generator=gen))
    scene = 0.5 + _col(rand(0.05, 0.2)) * _smooth_noise(n, size, cells, gen)
    scene = scene + _col(rand(0.0, 0.08) * (torch.rand(n, generator=gen) < 0.6)) * _grating(x, y, n, gen)
    u, v = _frame(x, y, rand(-1, 1), rand(-1, 1), rand(0, math.pi), rand(0.5, 1.2))
    big = torch.sigmoid(-(torch.sqrt(u**2 + (v * _col(rand(1, 2.5))) ** 2) - 0.8) * 4)
    return scene + _col(rand(-0.15, 0.15)) * big


SMALL_SCALE, LARGE_SCALE = 0.16, 0.42  # smallest object scale (x half the image width)
SMALL_CLASSES = ("disc", "circle", "star", "nothing")  # may be tiny: still recognisable at 2-3 px


def _task_a_chunk(labels: Tensor, size: int, gen: torch.Generator,
                  shapes: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = SHAPES) -> Tensor:
    """One object per image (its class = its label: an index into ``shapes``) over a structured
    scene; [0, 1] images."""
    n = len(labels)
    x, y = _grid(n, size)
    rand = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)  # noqa: E731
    floor = torch.tensor([SMALL_SCALE if name in SMALL_CLASSES else LARGE_SCALE for name in shapes])
    log_lo = torch.log(floor[labels])
    scale = torch.exp(log_lo + (math.log(0.7) - log_lo) * torch.rand(n, generator=gen))  # small and large
    reach = 0.85 - scale * 0.7
    u, v = _frame(x, y, rand(-1, 1) * reach, rand(-1, 1) * reach, rand(0, 2 * math.pi), scale)
    extra = torch.rand(n, generator=gen)
    sharp = rand(0.4, 1.0)  # soft or crisp edges
    distance = torch.empty(n, size, size)
    for index, shape in enumerate(shapes.values()):
        mask = labels == index
        if mask.any():
            distance[mask] = shape(u[mask], v[mask], extra[mask]) * _col((scale * sharp)[mask])
    ink = _ink(distance, size)
    polarity = torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0)
    image = _scene(n, size, gen) + _col(polarity * rand(0.25, 0.5)) * ink
    image = _blur(image, rand(0.0, 0.9))
    return (image + _col(rand(0.01, 0.06)) * torch.randn(image.shape, generator=gen)).clamp(0, 1)


def _task_b_chunk(labels: Tensor, size: int, gen: torch.Generator) -> Tensor:
    """Simulated chest radiographs: bright = dense (bone, heart, fluid), dark = air (lungs)."""
    n = len(labels)
    rand = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)  # noqa: E731
    x, y = _grid(n, size)
    # patient pose: off-centre, slightly rotated, bigger or smaller on the detector
    x, y = _frame(x, y, rand(-0.1, 0.1), rand(-0.08, 0.08), rand(-0.15, 0.15), rand(0.85, 1.1))
    lung_w, lung_h, lung_y = rand(0.26, 0.34), rand(0.5, 0.62), rand(-0.12, 0.0)
    lungs = torch.maximum(*(_ink(_disc((x - s * 0.36) / _col(lung_w), (y - _col(lung_y)) / _col(lung_h), 1.0), size)
                            for s in (-1, 1)))
    ribs = 0.5 + 0.5 * torch.cos((y + 0.25 * x.abs() ** 2) * _col(rand(20, 26)) + _col(rand(0, 6.3)))
    heart_r = rand(0.22, 0.29) * torch.where(labels == 5, rand(1.25, 1.5), 1.0)  # cardiomegaly
    heart = _ink(_disc((x + 0.1) / 1.15, y - _col(lung_y + 0.28), 0.0) - _col(heart_r), size)
    density = (0.45 * _ink(_disc(x / 0.88, y / 1.1, 0.9), size) + 0.35 * _ink(_box(x, y, 0.07, 1.2), size)
               + 0.12 * ribs * lungs - 0.35 * lungs + 0.35 * heart)
    lesion = _lesion(labels, x, y, lung_y, lung_h, size, gen)
    return _expose(density + lesion, gen)


def _spiculated(u: Tensor, v: Tensor) -> Tensor:
    """A round core with radiating spikes (a star): the classic sign of a malignant mass."""
    angle = torch.atan2(v, u)
    return torch.sqrt(u**2 + v**2) - (0.45 + 0.4 * torch.cos(angle * 7).clamp(min=0) ** 3)


def _lesion(labels: Tensor, x: Tensor, y: Tensor, lung_y: Tensor, lung_h: Tensor, size: int,
            gen: torch.Generator) -> Tensor:
    """Extra density of each focal finding, placed somewhere in one lung: a round nodule, a
    ring-shaped cavity, a spiculated mass, or fluid with a curved upper edge at one lung base
    (effusion). Cardiomegaly (an enlarged heart) is drawn in ``_task_b_chunk``."""
    n = len(labels)
    rand = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)  # noqa: E731
    side = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    u, v = _frame(x, y, side * rand(0.26, 0.44), lung_y + lung_h * rand(-0.5, 0.4),
                  rand(-0.5, 0.5), rand(0.14, 0.22))
    nodule = _ink(_disc(u, v, 0.6) * 0.2, size)
    cavity = _ink(_outline(_disc(u, v, 0.75), 0.2) * 0.2, size)
    mass = _ink(_spiculated(u, v) * 0.2, size)
    level = lung_y + lung_h * rand(0.3, 0.7)  # fluid line height inside the lung
    meniscus = y - _col(level) + 0.35 * (x - _col(side * 0.36)) ** 2 * _col(side) * torch.sign(x)
    fluid = _ink(-meniscus, size) * _ink(_disc((x - _col(side) * 0.36) / 0.4,
                                             (y - _col(lung_y)) / _col(lung_h * 1.1), 1.0), size)
    findings = ((1, nodule), (2, cavity), (3, mass), (4, fluid))
    return _col(rand(0.35, 0.55)) * sum(_col(labels == k) * pattern for k, pattern in findings)


def _expose(density: Tensor, gen: torch.Generator) -> Tensor:
    """Exposure (gain/offset/gamma), scatter blur and quantum noise; returns [0, 1] images."""
    n = density.shape[0]
    rand = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)  # noqa: E731
    image = (_col(rand(0.15, 0.3)) + _col(rand(0.8, 1.2)) * density).clamp(0, 1) ** _col(rand(0.7, 1.4))
    image = image + 0.06 * _smooth_noise(n, density.shape[-1], 3, gen)
    image = _blur(image, rand(0.3, 1.0))
    return (image + _col(rand(0.03, 0.08)) * torch.randn(image.shape, generator=gen)).clamp(0, 1)


def _render(chunk_fn: Callable[[Tensor, int, torch.Generator], Tensor], labels: Tensor, size: int,
            seed: int) -> Tensor:
    """Render all images in chunks into one preallocated uint8 tensor [n, 1, size, size]."""
    out = torch.empty(len(labels), 1, size, size, dtype=torch.uint8)
    for start in range(0, len(labels), CHUNK):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + start)  # chunk-wise: reproducible
        chunk = chunk_fn(labels[start:start + CHUNK], size, gen)
        out[start:start + CHUNK, 0] = (chunk * 255).round().to(torch.uint8)
    return out


def _balanced_labels(n: int, num_classes: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.arange(n).remainder(num_classes)[torch.randperm(n, generator=gen)]


def make_task_a(n: int, seed: int, image_size: int = 32) -> tuple[Tensor, Tensor]:
    """``n`` task-A images (uint8 [n, 1, H, W]) with balanced labels, deterministic from ``seed``."""
    labels = _balanced_labels(n, len(TASK_A_CLASSES), seed)
    return _render(_task_a_chunk, labels, image_size, seed), labels


def make_near_task(n: int, seed: int, image_size: int = 32) -> tuple[Tensor, Tensor]:
    """``n`` images of the near task (NEAR_CLASSES: objects task A never showed, drawn like task A)."""
    labels = _balanced_labels(n, len(NEAR_CLASSES), seed)
    chunk = lambda lab, size, gen: _task_a_chunk(lab, size, gen, NEAR_SHAPES)  # noqa: E731
    return _render(chunk, labels, image_size, seed), labels


def make_task_b(n: int, seed: int, image_size: int = 32) -> tuple[Tensor, Tensor]:
    """``n`` simulated chest radiographs (uint8 [n, 1, H, W]) with balanced diagnoses."""
    labels = _balanced_labels(n, len(TASK_B_CLASSES), seed)
    return _render(_task_b_chunk, labels, image_size, seed), labels


def normalize(images: Tensor) -> Tensor:
    """uint8 images -> float32, each image standardised to zero mean and unit variance.

    Both tasks go through the same function, so the statistics a pre-trained network saw on
    task A are the ones it sees on task B.
    """
    x = images.float()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp(min=1.0)
    return (x - mean) / std


def task_config(task: str, n: int, seed: int, n_test: int, image_size: int) -> dict:
    """The cache config of a generated image task (``"A"``, ``"B"`` or ``"near"``): what :func:`task_data` builds."""
    if task not in ("A", "B", "near"):
        raise ValueError(f"unknown image task {task!r}: use 'A', 'B' or 'near'")
    config = {"version": GENERATOR_VERSION, "task": task, "n": n, "seed": seed, "n_test": n_test, "size": image_size}
    # the near task's classes are part of its key: a change of them rebuilds it, not tasks A and B
    return {**config, "classes": list(NEAR_CLASSES)} if task == "near" else config


def task_data(config: dict) -> dict[str, Tensor]:
    """A generated image task, built once and cached under data/: ``X``, ``y`` (the training
    images) and ``X_test``, ``y_test`` (a fixed test set drawn with another seed)."""
    from helpers.data import cache  # here: keeps this module importable without the cache's deps

    make = {"A": make_task_a, "B": make_task_b, "near": make_near_task}[config["task"]]
    name = f"task_{config['task'].lower()}"

    def build() -> dict[str, Tensor]:
        X, y = make(config["n"], config["seed"], config["size"])
        X_test, y_test = make(config["n_test"], 10_000 + config["seed"], config["size"])
        return {"X": X, "y": y, "X_test": X_test, "y_test": y_test}

    return cache.load_or_build(name, config, build)
