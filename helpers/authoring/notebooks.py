"""What the authoring tools share: the course notebooks, their cells, and the last run's timings.

``course`` (which runs the notebooks) and ``site`` (which indexes them) both take these from
here; ``course`` imports ``site`` to build the index and ``site`` never imports ``course``, so the
two form no import cycle.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from helpers import config, results

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"  # ordered course notebooks: 00_start_here.ipynb, ...


def notebooks_dir() -> Path:
    """The folder of the course notebooks (``notebooks/`` at the repository root)."""
    return config.REPO_ROOT / "notebooks"


def course_notebooks(folder: Path | None = None) -> list[Path]:
    """The ordered course notebooks (``NN_name.ipynb``) in ``folder``."""
    return sorted((folder or notebooks_dir()).glob(NOTEBOOK_PATTERN))


def first_source_line(cell: NotebookNode) -> str:
    """The first non-empty source line of a cell ('' for an empty cell)."""
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    return lines[0] if lines else ""


def code_cells(nb: NotebookNode) -> list[NotebookNode]:
    """The code cells of a notebook, in order."""
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def timings_path() -> Path:
    """build/timings.json: the profile, data source and seconds per notebook of the last run."""
    return config.build_dir() / "timings.json"


def write_timings(profile: str, seconds: dict[str, float], data_source: str) -> None:
    """Record a run (atomically): ``{"profile", "data", "seconds": {stem: seconds}}``."""
    summary = {"profile": profile, "data": data_source, "seconds": seconds}
    results.atomic_write_text(timings_path(), json.dumps(summary, indent=2) + "\n")


def load_timings() -> dict[str, Any]:
    """What :func:`write_timings` recorded last ({} when nothing has run yet)."""
    path = timings_path()
    return json.loads(path.read_text()) if path.exists() else {}
