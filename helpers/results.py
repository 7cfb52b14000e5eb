"""build/results.json: the figures each notebook measured and asserted."""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from helpers.config import build_dir


class ResultsError(RuntimeError):
    """results.json cannot be read or written; the message says what to do."""


def results_path() -> Path:
    return build_dir() / "results.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file + rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` so parallel notebooks merge, not overwrite.

    ``filelock`` locks with flock on Unix and msvcrt on Windows; a second writer waits here.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path.with_name(path.name + ".lock"))
        lock.acquire()
    except OSError as exc:
        raise ResultsError(f"cannot write results under {path.parent}: {exc}. "
                           "Set TL_BUILD_DIR to a writable folder.") from exc
    try:
        yield
    finally:
        lock.release()


def load_results(path: Path | None = None) -> dict[str, dict[str, float]]:
    """The recorded figures ({} when none yet); a corrupt file is an error, never overwritten."""
    path = path or results_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ResultsError(f"{path} is not valid JSON ({exc}); it was left untouched. "
                           "Move it aside (or delete it) and re-run the notebooks.") from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{path} should hold a JSON object; move it aside and re-run.")
    return data


def record(notebook: str, name: str, value: float | int) -> float:
    """Merge one measured figure into build/results.json atomically; return it as float."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{notebook}.{name} = {value} is not a finite number")
    path = results_path()
    with _locked(path):
        data = load_results(path)
        data.setdefault(notebook, {})[name] = value
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return value


def format_table(data: dict[str, dict[str, float]]) -> str:
    """The figures as an aligned text table, one row per figure."""
    rows = [(nb, name, f"{value:.4g}") for nb in sorted(data) for name, value in sorted(data[nb].items())]
    if not rows:
        return "(no figures recorded yet)"
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)
