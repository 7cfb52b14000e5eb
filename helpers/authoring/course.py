"""Run, check and clean the course notebooks from the command line.

    python -m helpers.authoring.course run [--profile quick|standard|full] [--prepare] [NOTEBOOK ...]
    python -m helpers.authoring.course check-clean [NOTEBOOK ...]   # exit 1 if outputs are stored
    python -m helpers.authoring.course strip [NOTEBOOK ...]         # remove outputs in place
    python -m helpers.authoring.course table                        # print build/results.json
    python -m helpers.authoring.course check-nbval REPORT.xml       # every cell ran under nbval
    python -m helpers.authoring.course site                         # build/html/index.html
    python -m helpers.authoring.course student                      # build/student/: editions
    python -m helpers.authoring.course with-prepare --profile quick -- COMMAND ...   # prepare beside it

``run`` executes each notebook in order in a fresh kernel of this Python, saves the executed
copy to build/notebooks/ and an HTML page to build/html/, and stops at the first failing cell
with a message naming the notebook, the cell and the error. With ``--prepare`` (what ``make run``
does) it starts ``data_scripts/prepare.py`` beside the notebooks; each notebook's kernel starts and
runs its setup cell at once, and the rest as soon as the prepare steps it reads (NOTEBOOK_STEPS)
are done, while prepare builds the rest: on a cold cache the first lessons are ready in minutes,
not after everything is built.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from helpers import config, results
from helpers.authoring import site
from helpers.authoring.notebooks import (
    NOTEBOOK_PATTERN,
    code_cells,
    course_notebooks,
    first_source_line,
    load_timings,
    notebooks_dir,
    write_timings,
)
from helpers.data.sources import data_source

DEFAULT_CELL_TIMEOUT = 1800  # seconds one cell may run under `run`
SOLUTION_TAG = "solution"  # cells with this tag hold an exercise's solution: left out of student editions
INSTRUCTOR_GUIDE = "instructor_guide.md"  # in notebooks/, copied beside the student editions


# What each notebook reads that data_scripts/prepare.py builds, by prepare's step names (a notebook
# not listed here waits until prepare has finished). A unit test checks that the names exist; that
# the lists are complete is not tested: a step missing here would make a notebook under
# `run --prepare` build that part itself (slower, never wrong: the cache's entries are locked).
NOTEBOOK_STEPS: dict[str, tuple[str, ...]] = {
    "00_start_here": (),
    "01_pretraining": ("images",),
    "02_head_replacement": ("images",),
    "03_last_layer_vs_full": ("images", "image-sweep"),
    "04_wake_word": ("speech", "speech-models"),
    "05_reversed_sizes": ("images", "image-sweep", "speech", "speech-models", "counter-examples",
                          "speech-reversed"),
    "06_your_own_images": ("images", "your-own-images"),
    "07_your_own_wake_word": ("speech", "speech-models", "custom-wake-word"),
}
PREPARE_SCRIPT = config.REPO_ROOT / "data_scripts" / "prepare.py"
# The order in which a cold quick prepare finishes its steps on two workers (fresh clones on the course's
# 2-core machine, issue 17): `make test` hands the notebooks to nbval in this order of their last step.
STEPS_READY = ("speech", "speech-models", "images", "your-own-images", "image-sweep", "counter-examples",
               "speech-reversed", "custom-wake-word")
PREPARE_STATUS_ENV = "TL_PREPARE_STATUS"  # set by `with-prepare`: the status folder of the prepare beside
EXIT_MARKER = "exit"  # in a status folder: prepare's exit code, written when it has ended


class NotebookError(RuntimeError):
    """A notebook failed to run; the message names the notebook, the cell and the error."""


class BackgroundPrepare:
    """``data_scripts/prepare.py`` running beside the notebooks, and which of its steps are done.

    prepare writes ``<step>.done`` into a status folder when a step is complete (every item of it
    built or loaded); ``command`` replaces the prepare command (tests).
    """

    def __init__(self, profile: str, command: list[str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="prepare-status-"))
        command = command or [sys.executable, str(PREPARE_SCRIPT), "--profile", profile]
        self.proc = subprocess.Popen([*command, "--status", str(self.folder)])
        self.started, self.ended = time.perf_counter(), None
        # other processes (make test's nbval workers: wait_for_steps) learn from the folder that it ended
        self._watcher = threading.Thread(target=self._record_exit, daemon=True)
        self._watcher.start()

    def _record_exit(self) -> None:
        code = self.proc.wait()
        self.ended = time.perf_counter()
        if self.folder.is_dir():  # stop() joins this thread before it removes the folder
            results.atomic_write_text(self.folder / EXIT_MARKER, f"{code}\n")

    def missing(self, steps: tuple[str, ...] | None) -> list[str]:
        """The steps not done yet (``None``: all of prepare, ['everything'] until it has finished)."""
        return missing_steps(self.folder, steps, self.proc.poll())

    def wait_for(self, steps: tuple[str, ...] | None, name: str) -> None:
        """Return once ``steps`` are done; NotebookError when prepare stopped without them."""
        missing = self.missing(steps)
        if missing:
            print(f"    {name} waits for prepare: {', '.join(missing)} (its progress is printed above)", flush=True)
            wait_for_steps(self.folder, steps, name, exit_code=self.proc.poll)

    def kernel_threads(self) -> int | None:
        """Torch threads for a notebook starting now: what prepare's workers leave while it runs
        (runtime.threads_beside_prepare), None (the default) once it has ended."""
        if self.proc.poll() is not None:
            return None
        from helpers import runtime  # here: it imports torch, which the other commands do not need

        return runtime.threads_beside_prepare()

    def finish(self) -> None:
        """Wait for prepare to end; NotebookError when it failed."""
        self.wait_for(None, "the course")

    def stop(self) -> None:
        """Stop prepare if it is still running (a notebook failed) and remove the status folder."""
        if self.proc.poll() is None:
            self.proc.terminate()  # prepare stops its workers; what they built is kept
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._watcher.join(timeout=5)  # it has recorded the exit: nothing is written after the folder is gone
        shutil.rmtree(self.folder, ignore_errors=True)


def missing_steps(folder: Path, steps: tuple[str, ...] | None, exit_code: int | None) -> list[str]:
    """The steps a prepare writing to the status ``folder`` has not done yet (``None``: all of it,
    ['everything'] until it has ended well); ``exit_code``: its exit code, None while it runs."""
    if steps is None:
        return [] if exit_code == 0 else ["everything"]
    return [step for step in steps if not (folder / f"{step}.done").exists()]


def recorded_exit(folder: Path) -> int | None:
    """The exit code BackgroundPrepare recorded in ``folder`` (None while prepare runs)."""
    marker = folder / EXIT_MARKER
    return int(marker.read_text()) if marker.exists() else None


def wait_for_steps(folder: Path, steps: tuple[str, ...] | None, name: str,
                   exit_code: Callable[[], int | None] | None = None, poll_s: float = 0.5) -> float:
    """Return, in any process, once the prepare writing to the status ``folder`` has done ``steps``
    (``None``: all of it); the seconds waited. NotebookError when it ended without them.
    ``exit_code``: how to learn that it ended (default: the EXIT_MARKER that BackgroundPrepare writes)."""
    exit_code = exit_code or (lambda: recorded_exit(folder))
    start = time.perf_counter()
    while True:
        code = exit_code()  # read first: the markers of every step it did are written before it exits
        missing = missing_steps(folder, steps, code)
        if not missing:
            return time.perf_counter() - start
        if code is not None:
            raise NotebookError(f"data_scripts/prepare.py stopped (exit {code}) before it built "
                                f"{', '.join(missing)}, which {name} reads: see its output above, fix the "
                                "cause and run again (what it built is kept)")
        time.sleep(poll_s)


def readiness(notebook: str) -> int:
    """When a notebook's data are ready in a cold prepare: the rank of its last step in STEPS_READY
    (-1: it reads none; after every step: a notebook NOTEBOOK_STEPS does not list)."""
    if notebook not in NOTEBOOK_STEPS:
        return len(STEPS_READY)
    ranks = [STEPS_READY.index(step) if step in STEPS_READY else len(STEPS_READY) for step in NOTEBOOK_STEPS[notebook]]
    return max(ranks, default=-1)


@dataclass
class CellTracker:
    """Remembers which cell the kernel is running, so a failure can name it."""

    index: int = -1
    first_line: str = ""

    def __call__(self, cell: NotebookNode, cell_index: int, **_: object) -> None:
        self.index = cell_index
        self.first_line = first_source_line(cell)


def first_code_cell(nb: NotebookNode) -> int:
    """Index of the notebook's first code cell, its setup cell (nbval's cell 0): imports, device, profile."""
    return next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"), -1)


@dataclass
class WaitAfterSetup:
    """nbclient's ``on_cell_execute`` hook: ``wait`` (in a thread, so the kernel's messages are still
    read) before the first code cell after the setup cell, then the tracker.

    A notebook's setup cell reads nothing that prepare builds (tests/test_course.py runs every one
    on empty caches), so the kernel starts and imports while prepare finishes the notebook's data.
    """

    wait: Callable[[], None] | None
    tracker: CellTracker
    setup_cell: int
    seconds: float = 0.0  # how long the notebook waited
    done: bool = False

    def run(self) -> None:
        if self.wait is not None and not self.done:
            self.done = True
            start = time.perf_counter()
            self.wait()
            self.seconds = time.perf_counter() - start

    async def __call__(self, cell: NotebookNode, cell_index: int, **kwargs: object) -> None:
        if cell_index > self.setup_cell and not self.done:
            import asyncio

            await asyncio.to_thread(self.run)
        self.tracker(cell, cell_index, **kwargs)


def dirty_cells(nb: NotebookNode) -> list[int]:
    """Indices of code cells that store outputs or an execution count."""
    return [i for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))]


def find_dirty(paths: list[Path]) -> list[str]:
    """One line per notebook that stores outputs or execution counts."""
    problems = []
    for path in paths:
        cells = dirty_cells(nbformat.read(path, as_version=4))
        if cells:
            problems.append(f"{path}: outputs or execution counts in cell(s) {cells}")
    return problems


def strip_notebook(path: Path) -> bool:
    """Remove outputs and execution counts in place; return True when the file changed."""
    nb = nbformat.read(path, as_version=4)
    if not dirty_cells(nb):
        return False
    for cell in code_cells(nb):
        cell.outputs = []
        cell.execution_count = None
    results.atomic_write_text(path, nbformat.writes(nb))
    return True


def failure_message(path: Path, tracker: CellTracker, error: Exception) -> str:
    """Name the notebook, the failing cell (index and first line) and the error."""
    summary = f"{getattr(error, 'ename', type(error).__name__)}: {getattr(error, 'evalue', error)}"
    cell = f"cell {tracker.index} (`{tracker.first_line}`)" if tracker.index >= 0 else "before any cell"
    return (f"notebook {path.name} failed in {cell}:\n  {summary.strip()}\n"
            f"The executed copy with the full traceback is in {output_paths(path)[0]}")


def output_paths(path: Path) -> tuple[Path, Path]:
    """Where ``run`` writes the executed notebook and its HTML page."""
    build = config.build_dir()
    return build / "notebooks" / path.name, build / "html" / f"{path.stem}.html"


def prepare_build_dir() -> None:
    """Create build/notebooks and build/html, or say clearly why they cannot be written."""
    for folder in (config.build_dir() / "notebooks", config.build_dir() / "html"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise NotebookError(f"cannot write to {folder} ({error}): "
                                "set TL_BUILD_DIR to a writable folder") from error


def save_outputs(path: Path, nb: NotebookNode) -> None:
    """Write the executed notebook and its HTML page atomically under build/."""
    from nbconvert import HTMLExporter  # slow import: only when notebooks are run

    executed, html = output_paths(path)
    results.atomic_write_text(executed, nbformat.writes(nb))
    body, _ = HTMLExporter().from_notebook_node(nb)
    results.atomic_write_text(html, body)


# A cell whose kernel has reported "idle" (every output sent) is finished even if its execute_reply
# does not come. Measured on this project's 2-core machine (nbclient 0.11, jupyter_client 8.10,
# ipykernel 7.4; 6.31 behaved the same): notebook 03's widget cell (an ipywidgets Output drawn while
# the cell runs) went without its execute_reply in 2-4 of 10 runs, and nbclient then waited out the
# whole cell timeout (30 minutes under `run`) — the hang others report (jupyter/nbclient#312). The
# first kernel_info request is bounded the same way (only the notebook's language_info needs it).
REPLY_GRACE_S = 10.0  # seconds to wait for a cell's execute_reply once the kernel is idle
KERNEL_INFO_WAIT_S = 20.0  # seconds to wait for the first kernel_info reply


def _reply_from_outputs(cell: NotebookNode, msg_id: str) -> dict:
    """The execute_reply a finished cell would have had: an error if it shows one, else ok."""
    error = next((out for out in cell.get("outputs", []) if out.get("output_type") == "error"), None)
    content = ({"status": "error", "ename": error.get("ename", ""), "evalue": error.get("evalue", ""),
                "traceback": error.get("traceback", [])} if error is not None else {"status": "ok"})
    return {"content": content, "parent_header": {"msg_id": msg_id}, "header": {}, "metadata": {}}


def notebook_client(nb: NotebookNode, timeout: int, **kwargs: object) -> object:
    """An nbclient ``NotebookClient`` that does not hang on a reply the kernel never sends
    (``REPLY_GRACE_S``, ``KERNEL_INFO_WAIT_S``); everything else as nbclient does it."""
    import asyncio

    from nbclient import NotebookClient  # slow import: only when notebooks are run

    class PatientClient(NotebookClient):
        async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg,  # noqa: ANN001, ANN202
                                        task_poll_kernel_alive):
            reply = asyncio.ensure_future(super()._async_poll_for_reply(
                msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive))
            await asyncio.wait({reply, task_poll_output_msg}, return_when=asyncio.FIRST_COMPLETED)
            if not reply.done():  # the kernel is idle: the reply should follow at once
                try:
                    return await asyncio.wait_for(asyncio.shield(reply), REPLY_GRACE_S)
                except asyncio.TimeoutError:
                    reply.cancel()
                    task_poll_kernel_alive.cancel()
                    print(f"    (cell {cell.get('id', '?')}: the kernel went idle but sent no execute_reply "
                          f"within {REPLY_GRACE_S:.0f} s; taking its outputs as the result)", flush=True)
                    return _reply_from_outputs(cell, msg_id)
            return reply.result()

        async def async_wait_for_reply(self, msg_id, cell=None):  # noqa: ANN001, ANN202
            if cell is not None:
                return await super().async_wait_for_reply(msg_id, cell)
            try:  # the kernel_info request at the start: only the notebook's language_info needs it
                return await asyncio.wait_for(super().async_wait_for_reply(msg_id, cell), KERNEL_INFO_WAIT_S)
            except asyncio.TimeoutError:
                return None

    return PatientClient(nb, timeout=timeout, **kwargs)


def execute_notebook(path: Path, profile: str, timeout: int, threads: int | None = None,
                     wait: Callable[[], None] | None = None) -> float:
    """Run one notebook in a fresh kernel, save its outputs; return its wall time in seconds (``wait`` left out).

    threads: torch threads of the kernel (``TL_THREADS`` and ``OMP_NUM_THREADS``), unless the user
    set either; None leaves the default. wait: called once the kernel has run the setup cell (the
    first code cell), before the next one (:class:`WaitAfterSetup`); the time it takes is not counted.
    Raises NotebookError naming the failing cell (or ``wait``'s NotebookError); the partly executed
    copy is still saved.
    """
    nb = nbformat.read(path, as_version=4)
    tracker = CellTracker()
    waiting = WaitAfterSetup(wait, tracker, first_code_cell(nb))
    client = notebook_client(nb, timeout, kernel_name="python3", on_cell_execute=waiting,
                             resources={"metadata": {"path": str(path.parent)}})
    env = {**os.environ, "TL_PROFILE": profile}
    if threads is not None and not (os.environ.get("TL_THREADS") or os.environ.get("OMP_NUM_THREADS")):
        env.update(TL_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    try:
        client.execute(env=env)
        waiting.run()  # a notebook with one code cell: its data are ready before its page is
    except NotebookError:  # prepare stopped before it built what this notebook reads
        save_outputs(path, nb)
        raise
    except Exception as error:  # CellExecutionError, CellTimeoutError, DeadKernelError, ...
        save_outputs(path, nb)
        raise NotebookError(failure_message(path, tracker, error)) from error
    seconds = time.perf_counter() - start - waiting.seconds
    save_outputs(path, nb)
    return seconds


def run_course(paths: list[Path], profile: str, timeout: int, prepare: bool = False,
               prepare_command: list[str] | None = None) -> dict[str, float]:
    """Execute ``paths`` in order, printing the time of each; return {stem: seconds}.

    prepare: run data_scripts/prepare.py beside them (``prepare_command`` replaces it in tests),
    each notebook starting once its steps (NOTEBOOK_STEPS) are done.
    """
    prepare_build_dir()
    source = data_source()  # the notebooks inherit $TL_DATA: the site names it
    timings: dict[str, float] = {}
    start = time.perf_counter()
    background = BackgroundPrepare(profile, prepare_command) if prepare else None
    try:
        for path in paths:
            wait = None
            if background is not None:  # after the notebook's setup cell: its kernel starts meanwhile
                wait = lambda path=path: background.wait_for(NOTEBOOK_STEPS.get(path.stem), path.name)  # noqa: E731
            # beside a running prepare, the kernel takes only the cores its workers leave
            threads = background.kernel_threads() if background is not None else None
            print(f"--> {path.name} (profile {profile}, {source} data"
                  + (f", {threads} thread(s) beside prepare" if threads else "") + ") ...", flush=True)
            timings[path.stem] = execute_notebook(path, profile, timeout, threads, wait)
            print(f"    {path.name}: {timings[path.stem]:.1f} s"
                  + (f" (page ready {time.perf_counter() - start:.0f} s after the start)" if prepare else ""),
                  flush=True)
        if background is not None:
            background.finish()
    finally:
        if background is not None:
            background.stop()
    write_timings(profile, timings, source)
    return timings


def nbval_counts(report: Path) -> Counter[str]:
    """Passed test cases per notebook file name in a pytest --junitxml report."""
    passed: Counter[str] = Counter()
    for case in ET.parse(report).getroot().iter("testcase"):
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            continue
        # classname is the node id with dots: "notebooks.00_start_here.ipynb"
        match = re.search(r"([^./\\]+\.ipynb)", case.get("classname", ""))
        if match:
            passed[match.group(1)] += 1
    return passed


def check_nbval(report: Path, paths: list[Path]) -> list[str]:
    """One line per notebook whose code cells did not all pass under nbval."""
    passed = nbval_counts(report)
    problems = []
    for path in paths:
        expected = len(code_cells(nbformat.read(path, as_version=4)))
        if passed[path.name] != expected:
            problems.append(f"{path}: {passed[path.name]} of {expected} code cells ran and passed")
    return problems


def resolve_notebooks(names: list[str]) -> list[Path]:
    """The notebooks named on the command line, else all course notebooks; missing ones are an error."""
    paths = [Path(name) for name in names] or course_notebooks()
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise NotebookError(f"no such notebook: {', '.join(missing)}")
    if not paths:
        raise NotebookError(f"no notebooks matching {NOTEBOOK_PATTERN} in {notebooks_dir()}")
    return paths


def student_edition(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` for learners: no solution cells, no outputs, exercise stubs kept."""
    edition = nbformat.from_dict(nb)  # a deep copy
    edition.cells = [cell for cell in edition.cells if SOLUTION_TAG not in cell.get("metadata", {}).get("tags", [])]
    for cell in code_cells(edition):
        cell.outputs = []
        cell.execution_count = None
    return edition


def write_student_editions(paths: list[Path], out: Path | None = None) -> list[Path]:
    """Write build/student/NN_*.ipynb and the instructor guide (with measured run times)."""
    out = out or config.build_dir() / "student"
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not any(SOLUTION_TAG in c.get("metadata", {}).get("tags", []) for c in nb.cells) and any(
                first_source_line(c).startswith("# Solution") for c in code_cells(nb)):
            raise NotebookError(f"{path.name} has a '# Solution' cell without the {SOLUTION_TAG!r} tag: "
                                "tag it (View > Cell toolbar, or the notebook's JSON) so it is left out")
        target = out / path.name
        results.atomic_write_text(target, nbformat.writes(student_edition(nb)))
        written.append(target)
    guide = notebooks_dir() / INSTRUCTOR_GUIDE
    if guide.exists():
        text = guide.read_text(encoding="utf-8") + measured_times_section()
        target = out / INSTRUCTOR_GUIDE
        results.atomic_write_text(target, text)
        written.append(target)
    return written


def measured_times_section() -> str:
    """A markdown table of the last `run`'s time per notebook ('' when there was none)."""
    timings = load_timings()
    if not timings:
        return ""
    rows = "".join(f"| {name} | {seconds:.0f} s |\n" for name, seconds in timings.get("seconds", {}).items())
    return (f"\n## Measured on the machine that built this edition (profile {timings.get('profile')})\n\n"
            "| Notebook | Code run time |\n|---|---|\n" + rows)


def cmd_run(args: argparse.Namespace) -> int:
    """Execute the notebooks in order, build the site's index, then print the results table."""
    profile = config.get_profile(args.profile).name
    run_course(resolve_notebooks(args.notebooks), profile, args.timeout, prepare=args.prepare)
    print(f"\nResults ({results.results_path()}):\n{results.format_table(results.load_results())}")
    print(f"Site: {site.build_site()}")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    """Build build/html/index.html from what `run` left in build/."""
    print(f"Site: {site.build_site(resolve_notebooks(args.notebooks))} (open it in a browser)")
    return 0


def cmd_student(args: argparse.Namespace) -> int:
    """Write the workshop editions: notebooks without solutions, and the instructor guide."""
    for path in write_student_editions(resolve_notebooks(args.notebooks)):
        print(f"wrote {path}")
    return 0


def cmd_check_clean(args: argparse.Namespace) -> int:
    """Exit 1, listing them, when notebooks store outputs or execution counts."""
    problems = find_dirty(resolve_notebooks(args.notebooks))
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("Notebooks are stored without outputs: run `python -m helpers.authoring.course strip` "
              "(or Edit > Clear Outputs of All Cells in JupyterLab) and save.", file=sys.stderr)
    return 1 if problems else 0


def cmd_strip(args: argparse.Namespace) -> int:
    """Remove outputs and execution counts from the notebooks in place."""
    for path in resolve_notebooks(args.notebooks):
        if strip_notebook(path):
            print(f"stripped {path}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    """Print build/results.json as a table."""
    print(results.format_table(results.load_results()))
    return 0


def cmd_check_nbval(args: argparse.Namespace) -> int:
    """Exit 1 when a notebook has code cells that did not pass in the nbval report."""
    problems = check_nbval(Path(args.report), resolve_notebooks(args.notebooks))
    for line in problems:
        print(f"did not run: {line}", file=sys.stderr)
    return 1 if problems else 0


def cmd_with_prepare(args: argparse.Namespace) -> int:
    """Run a command while data_scripts/prepare.py builds beside it (``$TL_PREPARE_STATUS`` names its
    status folder); the command's exit code, or NotebookError when prepare failed."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise NotebookError("with-prepare needs a command after --, e.g. "
                            "`python -m helpers.authoring.course with-prepare --profile quick -- pytest ...`")
    profile = config.get_profile(args.profile).name
    prepare = [sys.executable, str(PREPARE_SCRIPT), "--profile", profile, *(["--timings"] if args.timings else [])]
    background = BackgroundPrepare(profile, prepare)
    try:
        code = subprocess.run(command, env={**os.environ, PREPARE_STATUS_ENV: str(background.folder)},
                              check=False).returncode
        print(f"with-prepare: the command ended (exit {code}) after {time.perf_counter() - background.started:.0f} s",
              flush=True)
        if code == 0:
            background.finish()
            ended = background.ended or time.perf_counter()
            print(f"with-prepare: prepare ended after {ended - background.started:.0f} s", flush=True)
    finally:
        background.stop()  # stops prepare when the command failed: what it built is kept
    return code


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (one sub-command per job)."""
    parser = argparse.ArgumentParser(prog="python -m helpers.authoring.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebooks into build/notebooks and build/html")
    run.add_argument("--profile", default=None, help="quick, standard or full (default: $TL_PROFILE)")
    run.add_argument("--timeout", type=int, default=DEFAULT_CELL_TIMEOUT, help="seconds per cell")
    run.add_argument("--prepare", action="store_true",
                     help="run data_scripts/prepare.py beside the notebooks; each starts when its data are ready")
    clean = sub.add_parser("check-clean", help="exit 1 if a notebook stores outputs")
    strip = sub.add_parser("strip", help="remove outputs and execution counts in place")
    nbval = sub.add_parser("check-nbval", help="exit 1 unless every code cell passed in a junit report")
    nbval.add_argument("report", help="the XML file written by pytest --junitxml")
    pages = sub.add_parser("site", help="build build/html/index.html: course map, pages, results")
    student = sub.add_parser("student", help="write build/student/: notebooks without solutions + guide")
    for command, func in ((run, cmd_run), (clean, cmd_check_clean), (strip, cmd_strip),
                          (nbval, cmd_check_nbval), (pages, cmd_site), (student, cmd_student)):
        command.add_argument("notebooks", nargs="*", help="default: every notebooks/NN_*.ipynb")
        command.set_defaults(func=func)
    sub.add_parser("table", help="print build/results.json").set_defaults(func=cmd_table)
    beside = sub.add_parser("with-prepare", help="run a command (after --) while data_scripts/prepare.py builds "
                            "beside it; make test's nbval waits per notebook (helpers.authoring.after_prepare)")
    beside.add_argument("--profile", default=None, help="quick, standard or full (default: $TL_PROFILE)")
    beside.add_argument("--timings", action="store_true", help="prepare prints what each step and item cost")
    beside.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    beside.set_defaults(func=cmd_with_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors the user can fix are printed without a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (NotebookError, config.ConfigError, results.ResultsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
