"""Atomic, versioned, verified on-disk cache for anything expensive to build.

An entry is keyed by a name and the *config* that produced it (a JSON-able dict including a
version stamp), so changing a generator or a hyper-parameter can never serve stale data. The
payload is a dict of tensors/numbers saved with ``torch.save`` and read back with
``weights_only=True``; a sidecar JSON holds the config and a SHA-256 of the payload, checked on
every load. Writes go to a temporary file and are renamed into place, and a lock file makes a
second process wait for the first builder instead of building the same entry twice. An entry that
is already there and intact is loaded without the lock, so a read-only cache can be shared.

**Shared, read-only caches** (a workshop: deploy/README.md). An instructor builds every entry once
with ``data_scripts/prepare.py``; learners read them with ``TL_CACHE_READ_ONLY=1``. Then nothing
under the cache folders is ever created, locked or changed: an entry that is missing or damaged
is a :class:`CacheMissing` error naming the prepare command, never a rebuild by 30 learners at
once. A folder the process cannot write to is treated the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from helpers.config import data_dir
from helpers.data.download import file_digest


class CacheError(RuntimeError):
    """A cache entry is damaged or cannot be written; the message says what to do."""


class CacheMissing(CacheError):
    """An entry a read-only (shared) cache should hold is missing or damaged."""


READ_ONLY_ENV = "TL_CACHE_READ_ONLY"


def read_only() -> bool:
    """Whether the caches are shared read-only (``TL_CACHE_READ_ONLY=1``): never build, lock or write."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _writable(folder: Path) -> bool:
    """Whether this process may create files in ``folder`` (or in its nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


_OTHER_NUMERICS = {"bf16 autocast": ("fp32", "0"), "fp32": ("bf16 autocast", "1")}


def missing_error(name: str, path: Path, why: str, config: dict[str, Any] | None = None) -> CacheMissing:
    """The error for ``name`` at ``path`` that a read-only store lacks (``why``: how we know it is read-only).

    With the entry's ``config``: when the same experiment is there in the other arithmetic (its key's
    ``numerics``), the error says so and which ``TL_CPU_BF16`` reads it."""
    profile = os.environ.get("TL_PROFILE") or "quick"
    other = _OTHER_NUMERICS.get((config or {}).get("numerics", ""))
    hint = ""
    if other and entry_path(name, {**config, "numerics": other[0]}, path.parent).is_file():
        hint = (f" It is there trained in {other[0]} (this machine trains in {config['numerics']}): set "
                f"TL_CPU_BF16={other[1]} to read it, as whoever built the cache did.")
    return CacheMissing(
        f"{name} is missing or damaged in the shared cache {path.parent} ({why}); a read-only cache is never built "
        f"by a learner. Whoever set up this machine builds it once: `TL_DATA_DIR=<shared data folder> "
        f"TL_ARTIFACTS_DIR=<shared artifacts folder> python data_scripts/prepare.py --profile {profile}` "
        f"(deploy/README.md). To build it yourself instead, unset {READ_ONLY_ENV} and point TL_DATA_DIR and "
        f"TL_ARTIFACTS_DIR at folders you can write to.{hint}")


def config_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able config."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_path(name: str, config: dict[str, Any], root: Path | None = None) -> Path:
    return (root or data_dir()) / f"{name}-{config_key(config)}.pt"


def _sha256(path: Path) -> str:
    """SHA-256 of the file at ``path`` (hex), the checksum a sidecar records."""
    return file_digest(path, "sha256")


def _write_atomic(path: Path, payload: dict[str, Any], config: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; a cache is meant to be shared
        meta = {"config": config, "sha256": _sha256(Path(tmp))}
        meta_tmp = tmp + ".json"
        Path(meta_tmp).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        os.replace(tmp, path)  # payload first: a sidecar never points at a missing payload
        os.replace(meta_tmp, path.with_suffix(".json"))
    finally:
        for leftover in (tmp, tmp + ".json"):
            Path(leftover).unlink(missing_ok=True)


def _read_verified(path: Path) -> dict[str, Any] | None:
    """The payload at ``path`` if present and intact; None when it must be (re)built."""
    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:
        return None
    if meta.get("sha256") != _sha256(path):
        return None  # damaged or half-copied: rebuild rather than train on garbage
    return torch.load(path, map_location="cpu", weights_only=True)


@contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """Hold the lock beside ``path`` (``filelock``: flock on Unix, msvcrt on Windows)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path.with_suffix(".lock"))
        lock.acquire()
    except OSError as exc:
        raise CacheError(f"cannot write the cache under {path.parent} ({exc}); "
                         "set TL_DATA_DIR / TL_ARTIFACTS_DIR to a writable folder") from exc
    try:
        yield
    finally:
        lock.release()


# What load_or_build did, when recording (data_scripts/prepare.py --timings): one row per call,
# (name, "hit" | "built" | "waited", seconds).
_EVENTS: list[tuple[str, str, float]] | None = None


def record_events(on: bool = True) -> list[tuple[str, str, float]] | None:
    """Start (or stop) recording what every load_or_build call did; returns the list being filled."""
    global _EVENTS
    _EVENTS = [] if on else None
    return _EVENTS


def _event(name: str, what: str, start: float) -> None:
    if _EVENTS is not None:
        _EVENTS.append((name, what, time.perf_counter() - start))


def load_or_build(name: str, config: dict[str, Any], build: Callable[[], dict[str, Any]],
                  root: Path | None = None) -> dict[str, Any]:
    """Return the cached payload for (name, config), building and storing it if needed."""
    start = time.perf_counter()
    path = entry_path(name, config, root)
    payload = _read_verified(path)  # no lock to read: a read-only cache needs no write access
    if payload is not None:
        _event(name, "hit", start)
        return payload
    if read_only():
        raise missing_error(name, path, f"{READ_ONLY_ENV} is set", config)
    if not _writable(path.parent):
        raise missing_error(name, path, "this account cannot write there", config)
    with _build_lock(path):  # a second builder waits here, then finds the entry and loads it
        payload = _read_verified(path)
        if payload is None:
            payload = build()
            _write_atomic(path, payload, config)
            _event(name, "built", start)
        else:
            _event(name, "waited", start)
    return payload


def being_built(path: Path) -> bool:
    """Whether another process holds the build lock of the entry at ``path`` right now."""
    if read_only() or _entry_exists(path) or not path.with_suffix(".lock").exists():
        return False
    try:
        lock = FileLock(path.with_suffix(".lock"))
        lock.acquire(timeout=0)
    except TimeoutError:  # filelock.Timeout (a TimeoutError, hence an OSError: caught first)
        return True
    except OSError:  # a read-only store cannot be built here anyway: not "being built"
        return False
    lock.release()
    return False


def _entry_exists(path: Path) -> bool:
    """Whether the entry's payload and sidecar are there (built; not checked here)."""
    return path.exists() and path.with_suffix(".json").exists()


def in_worker_order(items: Iterable[Any]) -> list[Any]:
    """``items`` in this process's order: reversed in a second prepare worker (:data:`REVERSED`)."""
    items = list(items)
    return items[::-1] if REVERSED else items


def deferring(items: Iterable[Any], path_of: Callable[[Any], Path | list[Path]],
              longest_first: bool = False) -> Iterator[Any]:
    """Yield ``items``, but those another process is building right now come last.

    ``path_of(item)``: the entry the item builds, or a list of entries it needs (e.g. a run and the
    pre-trained network it starts from); the item is deferred when any of them is being built.
    Two workers that walk the same list (in opposite orders, see :data:`REVERSED`) thus never
    wait for each other while there is other work to do; by the time a deferred item comes up,
    it is usually built, and load_or_build just loads it.

    ``longest_first``: ``items`` are independent and sorted from the longest to the shortest, and
    every worker walks them in that order (a shared queue): the last item a worker waits for is a
    short one. In opposite orders, the two workers meet wherever the list is, often on two of its
    longest items, and one waits for the other's (26 s at the end of a fresh clone's prepare).
    """
    deferred = []
    for item in (list(items) if longest_first else in_worker_order(items)):
        paths = path_of(item)
        if any(being_built(path) for path in (paths if isinstance(paths, list) else [paths])):
            deferred.append(item)
        else:
            yield item
    yield from deferred


REVERSED = False  # set by a prepare worker that walks the work lists from the other end
