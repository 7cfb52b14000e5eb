"""A pytest plugin for ``make test``: each notebook under nbval starts once its data are ready.

    python -m helpers.authoring.course with-prepare --profile quick -- \\
        pytest -p helpers.authoring.after_prepare --nbval-lax -n 2 --dist loadfile notebooks/

``with-prepare`` runs ``data_scripts/prepare.py`` beside pytest and names its status folder in
``$TL_PREPARE_STATUS`` (``<step>.done`` per finished step, ``exit`` once it has ended). Before a
notebook's second code cell, this plugin waits for the prepare steps the notebook reads
(``course.NOTEBOOK_STEPS``; all of prepare for a notebook not listed there): its kernel starts and runs
the setup cell (imports, device, profile: nothing prepare builds) meanwhile. It hands the notebooks
to the workers in the order their data become ready (``course.readiness``), so the notebooks run while
prepare builds the rest, as in ``make run``, instead of after it (issue 17). Tests outside the notebooks
marked ``needs_data`` wait for all of prepare. A notebook whose steps prepare did not build (it
failed) fails with prepare's exit code. Without ``$TL_PREPARE_STATUS`` the plugin does nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.authoring import course


def status_folder() -> Path | None:
    """The status folder of the prepare running beside these tests (None: no prepare beside)."""
    value = os.environ.get(course.PREPARE_STATUS_ENV)
    return Path(value) if value else None


def notebook_of(item: pytest.Item) -> str | None:
    """The notebook an nbval item (a cell) belongs to, by file stem; None for other tests."""
    path = Path(str(item.path))
    return path.stem if path.suffix == ".ipynb" else None


def steps_for(item: pytest.Item) -> tuple[str, ...] | None:
    """The prepare steps an item waits for (None: all of prepare; (): none, as a notebook's setup cell)."""
    notebook = notebook_of(item)
    if notebook is not None:
        if getattr(item, "cell_num", None) == 0:  # nbval's count of code cells: the setup cell
            return ()
        return course.NOTEBOOK_STEPS.get(notebook)
    return None if item.get_closest_marker("needs_data") else ()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Notebooks in the order their data are ready (a stable sort: cells keep their order)."""
    if status_folder() is not None:
        items[:] = sorted(items, key=lambda item: course.readiness(notebook_of(item) or ""))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Wait for the item's prepare steps (a notebook's setup cell: none; nbval starts the kernel then)."""
    folder = status_folder()
    if folder is None:
        return
    try:
        course.wait_for_steps(folder, steps_for(item), notebook_of(item) or item.nodeid)
    except course.NotebookError as error:
        pytest.fail(str(error), pytrace=False)
