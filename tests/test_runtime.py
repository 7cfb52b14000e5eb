"""helpers.runtime: device choice, threads, seeds, the description line."""
from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from helpers import config, runtime

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


@pytest.fixture
def restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("cuda", "mps", "expected"), [(True, True, "cuda"), (True, False, "cuda"),
                                                      (False, True, "mps"), (False, False, "cpu")])
def test_default_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool,
                                                       expected: str) -> None:
    """The order of preference, checked on any machine by pretending which accelerators exist."""
    monkeypatch.delenv("TL_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(runtime, "_mps_available", lambda: mps)
    assert runtime.get_device() == torch.device(expected)


@needs_cuda
def test_default_device_on_a_gpu_machine_is_cuda_and_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TL_DEVICE", raising=False)
    device = runtime.get_device()
    assert device.type == "cuda"
    assert (torch.ones(3, device=device) * 2).sum().item() == 6.0
    assert torch.cuda.get_device_name(device) in runtime.describe(device)


def test_tl_device_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_DEVICE", " CPU ")
    assert runtime.get_device() == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu", "cpux"])
def test_bad_tl_device_lists_valid_devices(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("TL_DEVICE", name)
    with pytest.raises(config.ConfigError) as error:
        runtime.get_device()
    assert name in str(error.value) and "cpu" in str(error.value) and "cuda" in str(error.value)


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also checked on a GPU machine
    monkeypatch.setenv("TL_DEVICE", name)
    with pytest.raises(config.ConfigError, match="no CUDA GPU"):
        runtime.get_device()


def test_argument_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_DEVICE", "tpu")
    assert runtime.get_device("cpu").type == "cpu"


@pytest.mark.parametrize("value", ["two", "1.5", "0", "-3"])
def test_bad_tl_threads(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TL_THREADS", value)
    with pytest.raises(config.ConfigError, match="TL_THREADS"):
        runtime.configure_threads()


def test_tl_threads_applies(monkeypatch: pytest.MonkeyPatch, restore_threads: None) -> None:
    monkeypatch.setenv("TL_THREADS", "1")
    assert runtime.configure_threads() == 1 == torch.get_num_threads()
    monkeypatch.delenv("TL_THREADS")
    assert runtime.configure_threads() == 1  # unset: leaves the current setting alone


def test_seed_everything_is_reproducible() -> None:
    def draw() -> tuple[float, float, list[float], list[float]]:
        gen = runtime.seed_everything(123)
        return random.random(), float(np.random.rand()), torch.rand(3).tolist(), torch.rand(3, generator=gen).tolist()

    assert draw() == draw()
    first = draw()
    runtime.seed_everything(124)
    assert torch.rand(3).tolist() != first[2]


def test_describe_names_versions_device_profile(monkeypatch: pytest.MonkeyPatch, restore_threads: None) -> None:
    monkeypatch.setenv("TL_PROFILE", "quick")
    monkeypatch.delenv("TL_THREADS", raising=False)
    line = runtime.describe(torch.device("cpu"))
    assert torch.__version__ in line and "device cpu" in line and "profile quick" in line
    assert runtime.numerics(torch.device("cpu")) in line
    assert "\n" not in line


def test_describe_reports_bad_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_PROFILE", "nope")
    with pytest.raises(config.ConfigError, match="quick"):
        runtime.describe(torch.device("cpu"))


def test_a_build_is_announced_with_an_estimate_for_this_machine(capsys) -> None:
    import torch

    from helpers import runtime

    line = runtime.announce_build("pre-training", 360_000, 32, torch.device("cpu"))
    assert line.startswith("building (once, then cached): pre-training; about ") and "CPU thread" in line
    assert capsys.readouterr().out.strip() == line
    assert "GPU" in runtime.announce_build("x", 10, 32, torch.device("cuda"))


FAULTS_OF_BIG_TENSORS = """
import resource, sys, torch
from helpers import runtime
if sys.argv[1] == "reuse":
    assert runtime.reuse_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(12 << 20)  # 48 MiB (over glibc's largest default mapping size, 32 MiB), freed at once
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc only")
def test_freed_memory_is_reused_so_new_tensors_fault_fewer_pages() -> None:
    """Without reuse_freed_memory every 48-MiB tensor is a fresh mapping: 12,288 page faults each (measured
    245,815 for twenty); with it glibc keeps the freed block for the next (73,738)."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # glibc's malloc, not tcmalloc's
    env["PYTHONPATH"] = str(config.REPO_ROOT)
    faults = {how: int(subprocess.run([sys.executable, "-c", FAULTS_OF_BIG_TENSORS, how], env=env, check=True,
                                      capture_output=True, text=True, timeout=120).stdout)
              for how in ("plain", "reuse")}
    if faults["plain"] < 20 * (48 << 20) // 4096 * 0.9:  # not a fresh 4-KB-paged mapping each time
        pytest.skip(f"this machine faults {faults['plain']} pages for twenty fresh 48-MiB tensors "
                    "(transparent huge pages set to 'always'?): nothing for the setting to save")
    assert faults["reuse"] <= faults["plain"] / 2
