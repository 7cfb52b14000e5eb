"""helpers.data.cache: load-or-build, keyed by config, verified, atomic, built once."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers.data import cache

CONFIG = {"version": 1, "n": 4, "seed": 0}


class Builder:
    """A build function that counts its calls."""

    def __init__(self, value: float = 1.0) -> None:
        self.calls = 0
        self.value = value

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"X": torch.full((4, 2), self.value), "n": 4, "name": "toy"}


def test_builds_once_then_loads(tmp_path: Path) -> None:
    build = Builder()
    first = cache.load_or_build("toy", CONFIG, build, root=tmp_path)
    second = cache.load_or_build("toy", CONFIG, build, root=tmp_path)
    assert build.calls == 1
    assert torch.equal(first["X"], second["X"]) and second["n"] == 4 and second["name"] == "toy"
    assert sorted(p.suffix for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [".json", ".pt"]


def test_config_change_gives_a_new_entry(tmp_path: Path) -> None:
    build = Builder()
    changed = {**CONFIG, "version": 2}
    assert cache.config_key(CONFIG) != cache.config_key(changed)
    assert cache.config_key(CONFIG) == cache.config_key(dict(reversed(list(CONFIG.items()))))
    cache.load_or_build("toy", CONFIG, build, root=tmp_path)
    cache.load_or_build("toy", changed, build, root=tmp_path)
    assert build.calls == 2
    assert cache.entry_path("toy", CONFIG, tmp_path) != cache.entry_path("toy", changed, tmp_path)


def test_corrupt_payload_is_rebuilt(tmp_path: Path) -> None:
    cache.load_or_build("toy", CONFIG, Builder(), root=tmp_path)
    path = cache.entry_path("toy", CONFIG, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    rebuild = Builder(value=2.0)
    payload = cache.load_or_build("toy", CONFIG, rebuild, root=tmp_path)
    assert rebuild.calls == 1 and payload["X"][0, 0] == 2.0
    assert cache.load_or_build("toy", CONFIG, rebuild, root=tmp_path)["X"][0, 0] == 2.0  # now intact


@pytest.mark.parametrize("damage", ["truncate", "delete_sidecar", "bad_sidecar"])
def test_damaged_entries_are_rebuilt(tmp_path: Path, damage: str) -> None:
    cache.load_or_build("toy", CONFIG, Builder(), root=tmp_path)
    path = cache.entry_path("toy", CONFIG, tmp_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:20])
    elif damage == "delete_sidecar":
        path.with_suffix(".json").unlink()
    else:
        path.with_suffix(".json").write_text("{broken")
    rebuild = Builder()
    cache.load_or_build("toy", CONFIG, rebuild, root=tmp_path)
    assert rebuild.calls == 1


def test_loads_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached files are read with weights_only=True: they cannot run code when loaded."""
    seen: list[Any] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    cache.load_or_build("toy", CONFIG, Builder(), root=tmp_path)
    monkeypatch.setattr(torch, "load", spy)
    cache.load_or_build("toy", CONFIG, Builder(), root=tmp_path)
    assert seen == [True]


class NotATensor:
    """An arbitrary object: allowed by pickle, refused by weights_only loading."""


def test_arbitrary_objects_are_refused_on_load(tmp_path: Path) -> None:
    cache.load_or_build("obj", CONFIG, lambda: {"thing": NotATensor()}, root=tmp_path)
    with pytest.raises(pickle.UnpicklingError):
        cache.load_or_build("obj", CONFIG, Builder(), root=tmp_path)


def test_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(cache.CacheError, match="TL_DATA_DIR"):
        cache.load_or_build("toy", CONFIG, Builder(), root=blocker / "data")


def test_default_root_is_tl_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    assert cache.entry_path("toy", CONFIG).parent == tmp_path


def test_concurrent_builders_build_once(tmp_path: Path) -> None:
    """Four processes ask for the same entry at once: one builds, the others wait and load."""
    code = ("import sys, time, torch\nfrom pathlib import Path\nfrom helpers.data import cache\n"
            "def build():\n"
            "    with open(sys.argv[1] + '/builds.txt', 'a') as f: f.write('built\\n')\n"
            "    time.sleep(0.5)\n"
            "    return {'X': torch.arange(5)}\n"
            "payload = cache.load_or_build('toy', {'v': 1}, build, root=Path(sys.argv[1]))\n"
            "assert payload['X'].tolist() == [0, 1, 2, 3, 4]\n")
    env = {**os.environ, "TL_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env) for _ in range(4)]
    assert [proc.wait(timeout=120) for proc in procs] == [0] * 4
    assert (tmp_path / "builds.txt").read_text() == "built\n"


def test_an_entry_another_process_builds_is_deferred_then_loaded(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A second prepare worker skips what the first is building and comes back to it at the end."""
    busy = cache.entry_path("toy", {"v": "busy"}, tmp_path)
    code = ("import sys, time, torch\nfrom pathlib import Path\nfrom helpers.data import cache\n"
            "def build():\n"
            "    Path(sys.argv[1], 'started').touch()\n"
            "    time.sleep(1.5)\n"
            "    return {'X': torch.arange(3)}\n"
            "cache.load_or_build('toy', {'v': 'busy'}, build, root=Path(sys.argv[1]))\n")
    builder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env={**os.environ, "TL_THREADS": "1"})
    try:
        for _ in range(600):
            if (tmp_path / "started").exists():
                break
            builder.poll()
            import time
            time.sleep(0.05)
        free = cache.entry_path("toy", {"v": "free"}, tmp_path)
        assert cache.being_built(busy) and not cache.being_built(free)
        assert list(cache.deferring(["busy", "free", "other"], lambda n: busy if n == "busy" else free)) == \
            ["free", "other", "busy"]
        monkeypatch.setattr(cache, "REVERSED", True)
        assert list(cache.deferring(["busy", "free", "other"], lambda n: busy if n == "busy" else free)) == \
            ["other", "free", "busy"]
        # a list sorted longest first is a queue: the second worker walks it in the same order
        assert list(cache.deferring(["busy", "free", "other"], lambda n: busy if n == "busy" else free,
                                    longest_first=True)) == ["free", "other", "busy"]
        events = cache.record_events()
        payload = cache.load_or_build("toy", {"v": "busy"}, lambda: {"X": torch.zeros(1)}, root=tmp_path)
        assert payload["X"].tolist() == [0, 1, 2] and [e[:2] for e in events] == [("toy", "waited")]
    finally:
        cache.record_events(False)
        assert builder.wait(timeout=120) == 0
    assert not cache.being_built(busy)  # built: nothing to wait for


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: (size, mtime in ns, SHA-256): what "nothing changed" compares."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, cache._sha256(p))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_read_only_cache_is_read_without_writing_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = Builder()
    cache.load_or_build("toy", CONFIG, build, root=tmp_path)  # the instructor's prepare
    (tmp_path / f"toy-{cache.config_key(CONFIG)}.lock").unlink(missing_ok=True)  # as copied to a shared volume
    before = _snapshot(tmp_path)
    monkeypatch.setenv(cache.READ_ONLY_ENV, "1")
    loaded = cache.load_or_build("toy", CONFIG, build, root=tmp_path)  # a learner
    assert torch.equal(loaded["X"], torch.ones(4, 2)) and build.calls == 1
    assert not cache.being_built(cache.entry_path("toy", CONFIG, tmp_path))
    assert _snapshot(tmp_path) == before  # no lock file, no temporary file, nothing touched


def test_a_miss_in_the_other_arithmetic_says_which_tl_cpu_bf16_reads_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    built_in_bf16 = {**CONFIG, "numerics": "bf16 autocast"}
    cache.load_or_build("toy", built_in_bf16, Builder(), root=tmp_path)  # built on a CPU with bf16
    monkeypatch.setenv(cache.READ_ONLY_ENV, "1")
    with pytest.raises(cache.CacheMissing, match="trained in bf16 autocast .*TL_CPU_BF16=1"):
        cache.load_or_build("toy", {**CONFIG, "numerics": "fp32"}, Builder(), root=tmp_path)  # read without
    with pytest.raises(cache.CacheMissing) as missing:  # nothing of the kind there: no hint
        cache.load_or_build("other", {**CONFIG, "numerics": "fp32"}, Builder(), root=tmp_path)
    assert "TL_CPU_BF16" not in str(missing.value)


@pytest.mark.parametrize("damage", ["missing", "damaged"])
def test_a_miss_in_a_read_only_cache_names_the_prepare_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               damage: str) -> None:
    build = Builder()
    if damage == "damaged":
        cache.load_or_build("toy", CONFIG, build, root=tmp_path)
        path = cache.entry_path("toy", CONFIG, tmp_path)
        path.write_bytes(path.read_bytes()[:-8])
    before = _snapshot(tmp_path)
    monkeypatch.setenv(cache.READ_ONLY_ENV, "1")
    monkeypatch.setenv("TL_PROFILE", "quick")
    with pytest.raises(cache.CacheMissing, match=r"data_scripts/prepare.py --profile quick"):
        cache.load_or_build("toy", CONFIG, Builder(), root=tmp_path / "")
    assert _snapshot(tmp_path) == before  # never rebuilt nor half-written by a learner


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere: needs a normal account")
def test_a_folder_this_account_cannot_write_is_a_clear_error(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o555)
    try:
        with pytest.raises(cache.CacheMissing, match="cannot write there"):
            cache.load_or_build("toy", CONFIG, Builder(), root=shared)
    finally:
        shared.chmod(0o755)


def test_a_read_only_store_never_writes_a_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.data import folders

    def write(folder: Path) -> None:
        (folder / "a.txt").write_text("a")

    present = folders.write_folder_atomically(tmp_path / "present", write)  # the instructor's prepare
    monkeypatch.setenv(cache.READ_ONLY_ENV, "1")
    assert folders.write_folder_atomically(present, write) == present  # there: read, as before
    with pytest.raises(cache.CacheMissing, match="prepare.py"):
        folders.write_folder_atomically(tmp_path / "absent", write)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["present"]
