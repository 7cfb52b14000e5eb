"""helpers.authoring.course (run / check-clean / strip / check-nbval), data_scripts/prepare.py, JupyterLab."""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers import config, runtime
from helpers.authoring import course, notebooks

PREPARE = config.REPO_ROOT / "data_scripts" / "prepare.py"


def write_notebook(path: Path, *sources: str, outputs: bool = False) -> Path:
    """A notebook with a markdown title and one code cell per source (optionally with outputs)."""
    cells = [new_markdown_cell("# test")] + [new_code_cell(source) for source in sources]
    if outputs:
        cells[1].outputs = [new_output("stream", name="stdout", text="hi\n")]
        cells[1].execution_count = 1
    kernelspec = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), path)
    return path


@pytest.fixture
def build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("TL_THREADS", "1")
    return tmp_path / "build"


def test_check_clean_detects_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write_notebook(tmp_path / "00_clean.ipynb", "x = 1")
    dirty = write_notebook(tmp_path / "01_dirty.ipynb", "print('hi')", "y = 2", outputs=True)
    assert course.main(["check-clean", str(clean)]) == 0
    assert course.main(["check-clean", str(clean), str(dirty)]) == 1
    err = capsys.readouterr().err
    assert "01_dirty.ipynb" in err and "00_clean" not in err and "strip" in err


def test_execution_count_alone_is_dirty(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "00.ipynb", "x = 1")
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].execution_count = 3
    assert course.dirty_cells(nb) == [1]


def test_strip_removes_outputs_in_place(tmp_path: Path) -> None:
    dirty = write_notebook(tmp_path / "01_dirty.ipynb", "print('hi')", outputs=True)
    assert course.main(["strip", str(dirty)]) == 0
    assert course.find_dirty([dirty]) == []
    assert nbformat.read(dirty, as_version=4).cells[1].source == "print('hi')"
    assert course.strip_notebook(dirty) is False  # already clean: file not rewritten


def test_repository_notebooks_are_stored_clean() -> None:
    paths = notebooks.course_notebooks()
    assert paths, "no notebooks/NN_*.ipynb found"
    assert paths[0].name == "00_start_here.ipynb"
    assert course.find_dirty(paths) == []


def test_missing_notebook_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert course.main(["check-clean", "no/such.ipynb"]) == 1
    assert "no such notebook" in capsys.readouterr().err


def test_run_unknown_profile_lists_valid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert course.main(["run", "--profile", "turbo", str(write_notebook(tmp_path / "00.ipynb"))]) == 1
    err = capsys.readouterr().err
    assert "turbo" in err and "quick" in err and "standard" in err


def test_run_unwritable_build_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("TL_BUILD_DIR", str(blocker / "build"))
    assert course.main(["run", "--profile", "quick", str(write_notebook(tmp_path / "00.ipynb"))]) == 1
    assert "TL_BUILD_DIR" in capsys.readouterr().err


def test_run_executes_and_saves(build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_notebook(tmp_path / "07_ok.ipynb",
                          "import os\nassert os.environ['TL_PROFILE'] == 'quick'",
                          "from helpers import results\nresults.record('07_ok', 'answer', 42)")
    assert course.main(["run", "--profile", "quick", str(path)]) == 0
    out = capsys.readouterr().out
    assert "07_ok.ipynb" in out and "answer" in out and "42" in out
    executed = nbformat.read(build / "notebooks" / "07_ok.ipynb", as_version=4)
    assert [cell.execution_count for cell in executed.cells[1:]] == [1, 2]
    assert "<html" in (build / "html" / "07_ok.html").read_text()


def test_failing_notebook_names_notebook_and_cell(build: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write_notebook(tmp_path / "08_broken.ipynb", "x = 1", "\n# the broken cell\nraise ValueError('boom')",
                          "never = True")
    assert course.main(["run", "--profile", "quick", str(path)]) == 1
    err = capsys.readouterr().err
    assert "08_broken.ipynb" in err and "cell 2" in err and "# the broken cell" in err
    assert "ValueError: boom" in err
    executed = nbformat.read(build / "notebooks" / "08_broken.ipynb", as_version=4)
    assert executed.cells[3].execution_count is None  # stopped at the failing cell


def junit(tmp_path: Path, passed: int, failed: int = 0, name: str = "notebooks.00_x.ipynb") -> Path:
    cases = [f'<testcase classname="{name}" name="Cell {i}" />' for i in range(passed)]
    cases += [f'<testcase classname="{name}" name="Cell f{i}"><failure /></testcase>' for i in range(failed)]
    path = tmp_path / "junit.xml"
    path.write_text(f"<testsuites><testsuite>{''.join(cases)}</testsuite></testsuites>")
    return path


def test_a_cell_whose_reply_never_comes_ends_with_its_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from nbclient import NotebookClient

    async def never(*_args: object) -> dict:  # the execute_reply that never comes
        await asyncio.sleep(3600)
        return {}

    monkeypatch.setattr(NotebookClient, "_async_poll_for_reply", never)
    monkeypatch.setattr(course, "REPLY_GRACE_S", 0.05)
    cell = new_code_cell("1 / 0", id="c1")
    cell.outputs = [new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=["..."])]
    client = course.notebook_client(new_notebook(cells=[cell]), 60)

    async def poll() -> dict:
        idle = asyncio.get_running_loop().create_future()
        idle.set_result(None)  # every output arrived: the kernel is idle
        alive = asyncio.ensure_future(asyncio.sleep(3600))
        return await client._async_poll_for_reply("m1", cell, 60, idle, alive)

    started = time.perf_counter()
    reply = asyncio.run(poll())
    assert time.perf_counter() - started < 5  # not the cell's 60-s timeout
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "ZeroDivisionError"
    assert course._reply_from_outputs(new_code_cell("1"), "m2")["content"] == {"status": "ok"}


def test_check_nbval_requires_every_code_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = str(write_notebook(tmp_path / "00_x.ipynb", "a = 1", "b = 2"))
    assert course.main(["check-nbval", str(junit(tmp_path, 2)), notebook]) == 0
    assert course.main(["check-nbval", str(junit(tmp_path, 1, failed=1)), notebook]) == 1
    assert course.main(["check-nbval", str(junit(tmp_path, 0)), notebook]) == 1  # not collected
    assert "00_x.ipynb: 0 of 2" in capsys.readouterr().err


def test_table_prints_results(build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from helpers import results

    results.record("00_start_here", "setup_check_seconds", 0.5)
    assert course.main(["table"]) == 0
    assert "setup_check_seconds" in capsys.readouterr().out


def run_prepare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PREPARE), *args], capture_output=True, text=True, timeout=120)


def test_prepare_rejects_unknown_step_and_profile() -> None:
    step = run_prepare("--profile", "quick", "--only", "nosuchstep")
    assert step.returncode == 2 and "nosuchstep" in step.stderr and "valid steps" in step.stderr
    profile = run_prepare("--profile", "huge")
    assert profile.returncode == 2 and "quick" in profile.stderr


def load_prepare_script():  # noqa: ANN201 - the data_scripts/prepare.py module
    spec = importlib.util.spec_from_file_location("prepare_script", PREPARE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_marks_each_finished_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prepare = load_prepare_script()
    steps = [("first", "builtins:id"), ("second", "builtins:repr")]  # stand-ins: f(profile) works
    prepare.run_steps(steps, config.get_profile("quick"), status=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.done", "second.done"]  # no temporaries left
    assert "second" in capsys.readouterr().out


def test_every_notebook_names_the_prepare_steps_it_reads() -> None:
    steps = {name for name, _ in load_prepare_script().STEPS}
    assert set(course.NOTEBOOK_STEPS) == {path.stem for path in notebooks.course_notebooks()}
    for notebook, needed in course.NOTEBOOK_STEPS.items():
        assert set(needed) <= steps, f"{notebook}: unknown prepare step(s) {set(needed) - steps}"


def fake_prepare(tmp_path: Path, script: str) -> list[str]:
    """A stand-in for prepare.py: ``script`` runs with ``status`` = the status folder."""
    path = tmp_path / "fake_prepare.py"
    path.write_text("import pathlib, sys, time\nstatus = pathlib.Path(sys.argv[-1])\n" + script)
    return [sys.executable, str(path)]


def test_run_with_prepare_runs_the_setup_cell_then_waits_for_the_notebooks_steps(
        build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started, built = tmp_path / "setup_ran", tmp_path / "data_built"
    path = write_notebook(tmp_path / "01_pretraining.ipynb",
                          f"import pathlib\npathlib.Path({str(started)!r}).write_text('1')",
                          f"assert pathlib.Path({str(built)!r}).exists()")
    # prepare builds the notebook's data only once its setup cell has run: it did not wait for them
    command = fake_prepare(tmp_path, f"while not pathlib.Path({str(started)!r}).exists():\n    time.sleep(0.05)\n"
                                     f"time.sleep(0.5)\npathlib.Path({str(built)!r}).write_text('1')\n"
                                     "(status / 'images.done').write_text('1')\n")
    timings = course.run_course([path], "quick", 120, prepare=True, prepare_command=command)
    out = capsys.readouterr().out
    assert "01_pretraining.ipynb waits for prepare: images" in out and "page ready" in out
    assert set(timings) == {"01_pretraining"} and timings["01_pretraining"] > 0


def test_every_notebooks_setup_cell_reads_nothing_prepare_builds(tmp_path: Path) -> None:
    """`make run` and `make test` run a notebook's first code cell before prepare has built its data
    (course.WaitAfterSetup, helpers.authoring.after_prepare): on empty, read-only caches each one runs
    and leaves them empty."""
    paths = [str(path) for path in notebooks.course_notebooks()]
    script = ("import sys, nbformat\nfrom helpers.authoring import course\nfor path in sys.argv[1:]:\n"
              "    nb = nbformat.read(path, as_version=4)\n    setup = nb.cells[course.first_code_cell(nb)].source\n"
              "    exec(compile(setup, path, 'exec'), {'__name__': '__main__'})\n")
    folders = {name: tmp_path / name.lower() for name in ("TL_DATA_DIR", "TL_ARTIFACTS_DIR", "TL_BUILD_DIR")}
    env = {**os.environ, **{name: str(folder) for name, folder in folders.items()}, "TL_CACHE_READ_ONLY": "1",
           "TL_PROFILE": "quick", "MPLBACKEND": "Agg", "TL_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-c", script, *paths], cwd=notebooks.notebooks_dir(), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for folder in (folders["TL_DATA_DIR"], folders["TL_ARTIFACTS_DIR"]):
        assert not folder.exists() or not any(folder.iterdir())


def test_a_notebook_beside_a_running_prepare_gets_the_cores_its_workers_leave(
        build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TL_THREADS", "OMP_NUM_THREADS"):  # set by the fixture or make test: a user's setting is kept
        monkeypatch.delenv(name, raising=False)
    seen = tmp_path / "threads.txt"
    path = write_notebook(tmp_path / "01_pretraining.ipynb",
                          f"import os, pathlib\npathlib.Path({str(seen)!r}).write_text("
                          "os.environ['TL_THREADS'] + ' ' + os.environ['OMP_NUM_THREADS'])")
    # prepare is still running when the notebook starts: it ends once the notebook has written
    command = fake_prepare(tmp_path, f"(status / 'images.done').write_text('1')\n"
                                     f"while not pathlib.Path({str(seen)!r}).exists():\n    time.sleep(0.1)\n")
    course.run_course([path], "quick", 120, prepare=True, prepare_command=command)
    threads = str(runtime.threads_beside_prepare())
    assert seen.read_text() == f"{threads} {threads}"


def test_a_users_thread_setting_is_kept_beside_prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    client = types.SimpleNamespace(execute=lambda env: seen.append(env))
    monkeypatch.setattr(course, "notebook_client", lambda *args, **kwargs: client)
    monkeypatch.setattr(course, "save_outputs", lambda *args: None)
    path = write_notebook(tmp_path / "01_pretraining.ipynb", "x = 1")
    monkeypatch.delenv("TL_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    course.execute_notebook(path, "quick", 60, threads=1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    course.execute_notebook(path, "quick", 60, threads=1)
    assert [(env["OMP_NUM_THREADS"], env.get("TL_THREADS")) for env in seen] == [("4", None), ("1", "1")]


def test_threads_beside_prepare_are_the_cores_its_workers_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "get_device", lambda: torch.device("cpu"))
    monkeypatch.delenv("TL_PREPARE_WORKERS", raising=False)
    for cores, workers, threads in ((1, 1, 1), (2, 2, 1), (16, 2, 14)):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert (runtime.prepare_workers(), runtime.threads_beside_prepare()) == (workers, threads)
    monkeypatch.setenv("TL_PREPARE_WORKERS", "1")
    assert runtime.threads_beside_prepare() == 15
    monkeypatch.setenv("TL_PREPARE_WORKERS", "two")
    with pytest.raises(config.ConfigError, match="TL_PREPARE_WORKERS='two' is not a whole number"):
        runtime.prepare_workers()


def test_run_with_prepare_stops_when_prepare_fails(build: Path, tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "03_last_layer_vs_full.ipynb", "x = 1", "y = x + 1")
    command = fake_prepare(tmp_path, "(status / 'images.done').write_text('1')\nsys.exit(3)\n")
    with pytest.raises(course.NotebookError, match=r"prepare.py stopped \(exit 3\).*image-sweep"):
        course.run_course([path], "quick", 120, prepare=True, prepare_command=command)
    executed = nbformat.read(build / "notebooks" / path.name, as_version=4)
    assert [cell.get("execution_count") for cell in executed.cells[1:]] == [1, None]  # the setup cell only


def test_other_processes_learn_from_the_status_folder_what_prepare_did(tmp_path: Path) -> None:
    command = fake_prepare(tmp_path, "(status / 'images.done').write_text('1')\nsys.exit(3)\n")
    background = course.BackgroundPrepare("quick", command)
    try:
        assert course.wait_for_steps(background.folder, ("images",), "01", poll_s=0.05) >= 0
        with pytest.raises(course.NotebookError, match=r"stopped \(exit 3\) before it built image-sweep, which 03"):
            course.wait_for_steps(background.folder, ("images", "image-sweep"), "03", poll_s=0.05)
        assert course.recorded_exit(background.folder) == 3  # what a process that did not start prepare reads
    finally:
        background.stop()


def test_notebooks_go_to_nbval_in_the_order_their_data_are_ready() -> None:
    assert set(course.STEPS_READY) == {name for name, _ in load_prepare_script().STEPS}
    order = sorted(course.NOTEBOOK_STEPS, key=course.readiness)
    assert order[0] == "00_start_here" and order[-1] == "07_your_own_wake_word"
    assert order.index("04_wake_word") < order.index("03_last_layer_vs_full") < order.index("05_reversed_sizes")
    assert course.readiness("99_not_listed") == len(course.STEPS_READY)  # waits for all of prepare: last


def test_under_nbval_a_notebooks_setup_cell_waits_for_nothing() -> None:
    from helpers.authoring import after_prepare

    def cell(number: int) -> object:  # what the plugin reads of an nbval item
        return types.SimpleNamespace(path=Path("notebooks/03_last_layer_vs_full.ipynb"), cell_num=number)

    assert after_prepare.steps_for(cell(0)) == ()
    assert after_prepare.steps_for(cell(1)) == course.NOTEBOOK_STEPS["03_last_layer_vs_full"]


def test_with_prepare_starts_each_test_when_its_data_are_ready_and_fails_with_prepare(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    tests = tmp_path / "test_beside.py"
    tests.write_text("import os, pathlib, pytest\nstatus = pathlib.Path(os.environ['TL_PREPARE_STATUS'])\n"
                     "def test_needs_nothing():\n    assert not (status / 'images.done').exists()\n"
                     "    (status / 'started').write_text('1')\n"
                     "@pytest.mark.needs_data\n"
                     "def test_needs_everything():\n    assert (status / 'exit').read_text().strip() == '0'\n")
    pytest_command = ["--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                      "-p", "helpers.authoring.after_prepare", str(tests)]
    # prepare goes on once the test that needs nothing has run: it did not wait
    fake = fake_prepare(tmp_path, "while not (status / 'started').exists():\n    time.sleep(0.05)\n"
                                  "(status / 'images.done').write_text('1')\n")
    monkeypatch.setattr(course, "PREPARE_SCRIPT", Path(fake[1]))
    assert course.main(["with-prepare", "--profile", "quick", *pytest_command]) == 0
    assert "2 passed" in capfd.readouterr().out
    fake_prepare(tmp_path, "sys.exit(3)\n")  # the same file: prepare fails
    assert course.main(["with-prepare", "--profile", "quick", *pytest_command]) != 0
    out = capfd.readouterr().out
    assert "1 passed" in out and "1 error" in out and "prepare.py stopped (exit 3) before it built everything" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The HTTP status of ``url`` once the server answers (0 if it never did)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.5)
    return 0


@pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="jupyterlab is not installed")
def test_jupyter_lab_serves_lab_page(tmp_path: Path) -> None:
    port, token = free_port(), "course-test-token"
    # a private config and runtime folder: no user settings, no leftover server files
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "run")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={config.REPO_ROOT / 'notebooks'}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # CI runs as root; jupyter refuses to start as root without it
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status = wait_for_http(f"http://127.0.0.1:{port}/lab?token={token}", proc, timeout=25)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert status == 200
    assert proc.returncode is not None
