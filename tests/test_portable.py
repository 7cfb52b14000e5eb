"""Portability: every helpers module imports without ``fcntl`` (as on Windows), and the file locks
(``filelock``) keep their promises: a second builder waits and loads, parallel writers merge
results.json, and a cache that is already built loads from a folder nobody may write to."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from helpers import config
from helpers.data import cache

NO_FCNTL = "import sys\nsys.modules['fcntl'] = None  # `import fcntl` now fails, as on Windows\n"

IMPORT_EVERY_MODULE = NO_FCNTL + """\
import importlib, json, pkgutil, warnings
warnings.simplefilter("ignore")  # filelock warns that it falls back to a soft lock here
import helpers
names, failed = [], []
for info in pkgutil.walk_packages(helpers.__path__, "helpers.", onerror=lambda name: failed.append(name)):
    names.append(info.name)
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
print(json.dumps({"names": names, "failed": failed}))
"""


def helpers_modules() -> set[str]:
    """Every module of the helpers package, from the files on disk."""
    root = config.REPO_ROOT / "helpers"
    names = set()
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names - {"helpers"}


def test_every_helpers_module_imports_without_fcntl() -> None:
    out = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True,
                         timeout=300, cwd=config.REPO_ROOT, env={**os.environ, "TL_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["failed"] == [], "\n".join(report["failed"])
    assert set(report["names"]) == helpers_modules()  # the walk reached every file


def test_package_map_names_every_module() -> None:
    """helpers/__init__.py's docstring maps the package (README.md has the same map): no module
    may be missing from it."""
    import helpers

    mapped, folder = set(), ""
    for indent, name, slash in re.findall(r"^( {4,})(\w+)(/?) ", helpers.__doc__ or "", flags=re.MULTILINE):
        if len(indent) == 4:  # a module of helpers, or a folder whose modules follow, indented
            folder = name if slash else ""
        mapped.add(f"helpers.{folder}.{name}" if len(indent) > 4 else f"helpers.{name}")
    assert sorted(helpers_modules() - mapped) == [], "modules missing from the map"
    assert sorted(mapped - helpers_modules()) == [], "the map names modules that do not exist"


# ----------------------------------------------------------------------------- the cache's lock
BUILD_OR_LOAD = """\
import sys, time, torch
from pathlib import Path
from helpers.data import cache
root, me = Path(sys.argv[1]), sys.argv[2]

def build():
    print("built", flush=True)
    (root / "building").write_text("")  # the test starts the second process now
    for _ in range(600):  # hold the lock until the second process is about to ask for the entry
        if (root / "asking-second").exists():
            break
        time.sleep(0.1)
    time.sleep(0.5)  # ... and has reached the lock
    return {"X": torch.arange(5)}

(root / f"asking-{me}").write_text("")
payload = cache.load_or_build("toy", {"v": 1}, build, root=root)
assert payload["X"].tolist() == [0, 1, 2, 3, 4]
print("done", flush=True)
"""


@pytest.mark.parametrize("fcntl", ["available", "unavailable"])
def test_second_builder_waits_then_loads(tmp_path: Path, fcntl: str) -> None:
    """Two processes want the same entry: the first builds it, the second (started while the first
    is building) waits for the lock and loads what the first wrote."""
    code = (NO_FCNTL if fcntl == "unavailable" else "") + BUILD_OR_LOAD
    env = {**os.environ, "TL_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    first = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "first"], env=env,
                             stdout=subprocess.PIPE, text=True)
    for _ in range(600):  # up to 60 s for the first one to start building (importing torch is slow)
        if (tmp_path / "building").exists() or first.poll() is not None:
            break
        time.sleep(0.1)
    assert (tmp_path / "building").exists(), "the first process never started building"
    second = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "second"], env=env,
                              stdout=subprocess.PIPE, text=True)
    outputs = [proc.communicate(timeout=120)[0].split() for proc in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0]
    assert outputs == [["built", "done"], ["done"]]


class Builder:
    """A build function that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"X": torch.arange(6).view(2, 3)}


class NoLocking:
    """Stands in for filelock.FileLock on a read-only store: taking a lock needs write access."""

    def __init__(self, path: object) -> None:
        raise PermissionError(13, "Read-only file system", str(path))


@pytest.fixture
def read_only_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding one built entry, then made read-only (chmod does not stop root, so locks
    are refused too, as a read-only mount refuses them)."""
    store = tmp_path / "store"
    cache.load_or_build("toy", {"v": 1}, Builder(), root=store)
    for lock in store.glob("*.lock"):
        lock.unlink()
    for path in [*store.iterdir(), store]:
        path.chmod(stat.S_IREAD | stat.S_IEXEC if path.is_dir() else stat.S_IREAD)
    monkeypatch.setattr(cache, "FileLock", NoLocking)
    yield store
    for path in [store, *store.iterdir()]:
        path.chmod(stat.S_IRWXU)


def test_built_entry_loads_from_a_read_only_store(read_only_store: Path) -> None:
    before = sorted(p.name for p in read_only_store.iterdir())
    build = Builder()
    payload = cache.load_or_build("toy", {"v": 1}, build, root=read_only_store)
    assert build.calls == 0 and payload["X"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert sorted(p.name for p in read_only_store.iterdir()) == before  # no lock file, nothing written


def test_missing_entry_in_a_read_only_store_is_a_clear_error(read_only_store: Path) -> None:
    with pytest.raises(cache.CacheError, match="TL_DATA_DIR"):
        cache.load_or_build("toy", {"v": 2}, Builder(), root=read_only_store)


# ----------------------------------------------------------------------------- results.json's lock
def test_parallel_records_merge_without_fcntl(tmp_path: Path) -> None:
    """The soft lock filelock falls back to without fcntl still merges: 4 processes x 5 figures."""
    code = NO_FCNTL + ("from helpers import results\n"
                       "for i in range(5): results.record(f'nb{sys.argv[1]}', f'fig{i}', i)\n")
    env = {**os.environ, "TL_BUILD_DIR": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p)], env=env) for p in range(4)]
    assert [proc.wait(timeout=120) for proc in procs] == [0] * 4
    data = json.loads((tmp_path / "results.json").read_text())
    assert data == {f"nb{p}": {f"fig{i}": float(i) for i in range(5)} for p in range(4)}
