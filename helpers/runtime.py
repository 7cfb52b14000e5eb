"""Device, seeds and a one-line description of where the course runs."""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import random
import sys

import numpy as np
import torch

from helpers.config import ConfigError, get_profile

VALID_DEVICES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def get_device(name: str | None = None) -> torch.device:
    """The device to train on: ``name``, else ``$TL_DEVICE``, else cuda > mps > cpu.

    Raises ConfigError when the device asked for does not exist here.
    """
    name = (name or os.environ.get("TL_DEVICE") or "").strip().lower()
    if not name:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    kind = name.split(":")[0]
    if kind not in VALID_DEVICES:
        raise ConfigError(f"unknown device {name!r}: use one of {', '.join(VALID_DEVICES)} (TL_DEVICE)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("TL_DEVICE asks for cuda, but PyTorch sees no CUDA GPU here: "
                          "unset TL_DEVICE (or set TL_DEVICE=cpu), or install a CUDA build of torch")
    if kind == "mps" and not _mps_available():
        raise ConfigError("TL_DEVICE asks for mps, but this machine has no Apple GPU: unset TL_DEVICE")
    return torch.device(name)


_ON, _OFF = ("1", "on", "yes", "true"), ("0", "off", "no", "false")


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX), which oneDNN's kernels use."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe() for probe in probes if probe is not None)


def cpu_bf16() -> bool:
    """Whether training on the CPU runs under bf16 autocast: ``$TL_CPU_BF16`` (1 / 0), else when the
    CPU has bf16 instructions.

    Measured on this course's 2-core CI machine (AMD EPYC with AVX-512 BF16, one thread, torch 2.14;
    issue 17): a training step of the image CNN 1,737-1,885 images/s under autocast against
    1,141-1,237 in fp32 (batch 32), 1,944-2,181 against 1,288-1,310 (batch 128), inference 1.6x,
    the speech recognizer's step 1.5x. A CPU without those instructions emulates bf16 and is
    several times slower: it trains in fp32.
    """
    wanted = os.environ.get("TL_CPU_BF16", "").strip().lower()
    if wanted in _ON:
        return True
    if wanted in _OFF:
        return False
    if wanted:
        raise ConfigError(f"TL_CPU_BF16={wanted!r}: use 1 (bf16 autocast on the CPU) or 0 (fp32), or unset it "
                          "(bf16 where the CPU has bf16 instructions)")
    return cpu_has_bf16()


def numerics(device: torch.device | None = None) -> str:
    """The arithmetic training runs in on ``device`` (default: :func:`get_device`): "bf16 autocast"
    on CUDA and on a CPU with bf16 (:func:`cpu_bf16`), else "fp32". Part of every experiment's
    cache key: the two give close but not equal results."""
    device = device or get_device()
    if device.type == "cuda" or (device.type == "cpu" and cpu_bf16()):
        return "bf16 autocast"
    return "fp32"


# glibc's malloc: keep freed memory up to these sizes for reuse (see reuse_freed_memory)
MALLOC_MMAP_THRESHOLD = 64 << 20  # bytes: smaller blocks come from the heap, not a fresh mapping
MALLOC_TRIM_THRESHOLD = 256 << 20  # bytes of free memory at the heap's top kept, not given back


@functools.cache
def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for the next tensor instead of handing it back to
    the operating system; True where that was done (Linux with glibc), False elsewhere.

    By default glibc maps a block over its adaptive threshold (128 KB, rising to at most 32 MB as
    such blocks are freed) afresh and returns the top of its heap when it is freed, so the next
    batch's activations and oneDNN's scratch buffers may touch new pages, one page fault each (and
    in a virtual machine first-touch pages are slow). Whether that happens depended on the order of
    allocations: measured on this course's 2-core CI machine (Intel Xeon with AMX, 2026-12-08, one
    thread, the bench's feature-cache workload: a frozen CNN trained over 3,000 images, then
    ``cached_features`` and the head), 181,000 and 1,374,000 page faults in two runs without this,
    165,000-203,000 with it (tcmalloc, which ``make`` preloads where it is installed: 138,000); the
    feature cache 10.3x and 6.9x faster than the frozen network without it, 9.5-10.0x with it.
    Results do not change (only where memory comes from). Keeps at most MALLOC_TRIM_THRESHOLD of
    freed memory per process. Called by ``configure_threads`` and by the training engine; without
    effect where tcmalloc serves the allocations.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold,
                                                                                     MALLOC_TRIM_THRESHOLD))


def configure_threads() -> int:
    """Apply ``$TL_THREADS`` (torch intra-op threads) if set; return the thread count in use.
    Also keeps freed memory for reuse (:func:`reuse_freed_memory`)."""
    reuse_freed_memory()
    wanted = os.environ.get("TL_THREADS")
    if wanted:
        try:
            count = int(wanted)
        except ValueError:
            raise ConfigError(f"TL_THREADS={wanted!r} is not a whole number of threads") from None
        if count < 1:
            raise ConfigError(f"TL_THREADS={count} must be at least 1")
        torch.set_num_threads(count)
    return torch.get_num_threads()


def prepare_workers() -> int:
    """Worker processes of ``data_scripts/prepare.py``: ``$TL_PREPARE_WORKERS``, else 2 on a CPU with
    2+ cores (one thread each), else 1 (one process drives a GPU)."""
    wanted = os.environ.get("TL_PREPARE_WORKERS")
    if wanted:
        try:
            return max(1, int(wanted))
        except ValueError:
            raise ConfigError(f"TL_PREPARE_WORKERS={wanted!r} is not a whole number of worker processes") from None
    if get_device().type != "cpu":
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def threads_beside_prepare() -> int:
    """Torch threads for a notebook kernel while prepare's workers are busy: the cores they leave, at
    least 1. In a cold quick ``make run`` on two cores, kernels with two threads beside the two
    one-thread workers ran notebooks 01, 04 and 06 in 121, 214 and 321 s; with one thread, 50, 26
    and 91 s (likely: a thread of a team that waits for a core holds up the others)."""
    return max(1, (os.cpu_count() or 1) - prepare_workers())


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def describe(device: torch.device | None = None) -> str:
    """One line: Python, torch, device, arithmetic (bf16 autocast or fp32), threads and profile."""
    device = device or get_device()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    return (f"python {platform.python_version()} | torch {torch.__version__} | device {device}{gpu}"
            f" | {numerics(device)} | threads {configure_threads()} | profile {get_profile().name}")


# Measured on the 2-core CI machine (issue 17): pre-training the width-32 image CNN costs about
# 0.36 ms per task-A image shown with two threads (9,000 images in 3.2 s; quick: 360,000 in 142 s).
CPU_SECONDS_PER_IMAGE = 0.4e-3  # in fp32
BF16_SPEEDUP = 1.5  # under bf16 autocast on a CPU with bf16 (cpu_bf16: 1.4-1.7x measured)


def announce_build(what: str, images_shown: int, width: int = 32, device: torch.device | None = None) -> str:
    """Say, before an expensive cache miss, what is built (once, then cached) and about how long it takes.

    The estimate scales the measured cost per image shown with the network's width (squared)
    and this machine's threads; on a GPU it only says "well under a minute" (H200: 38 s for the
    full profile's pre-training). Returns the line it printed.
    """
    device = device or get_device()
    if device.type == "cuda":
        estimate = "well under a minute on this GPU"
    else:
        seconds = images_shown * CPU_SECONDS_PER_IMAGE * (width / 32) ** 2 * 2 / max(torch.get_num_threads(), 1)
        seconds /= BF16_SPEEDUP if numerics(device) == "bf16 autocast" else 1.0
        estimate = (f"about {seconds / 60:.0f} minutes" if seconds >= 90 else f"about {seconds:.0f} s") + \
            f" on this machine ({torch.get_num_threads()} CPU thread(s))"
    line = f"building (once, then cached): {what}; {estimate}"
    print(line, flush=True)
    return line
