"""A real-browser check: notebook 03 runs in JupyterLab and its ipywidgets explorer renders.

nbval (in ``make test``) proves that every notebook executes, but not that a student's browser
shows the widgets: a missing or mismatched ``jupyterlab_widgets`` front end only shows up as
"Error displaying widget" or a plain-text ``VBox(...)`` in the page. This test starts JupyterLab
on a copy of notebook 03, drives Debian's Chromium with Playwright (Run > Run All Cells, then
Ctrl+S), and checks the saved notebook for errors and the page for a rendered widget.

It needs the quick profile's data caches (``data_scripts/prepare.py --profile quick``), so
``make test`` runs it last, on its own, with ``-m browser``. Without Playwright or
``/usr/bin/chromium`` it is skipped, except in CI (``CI=true``), where that is a failure.
A screenshot is always written to ``$TL_BUILD_DIR/browser/03_jupyterlab.png`` (default ``build/``).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from helpers import config

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = config.REPO_ROOT / "notebooks" / "03_last_layer_vs_full.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_S = 120  # JupyterLab answering /api/status
RUN_ALL_S = float(os.environ.get("TL_BROWSER_TIMEOUT", "900"))  # every cell finished (< 1 min with caches)
# Text that a notebook shows instead of a widget when the widget front end is missing or broken.
WIDGET_FALLBACKS = ("Error displaying widget", "VBox(children=")
WIDGET_LOADING = "Loading widget..."  # transient; a failure only once the widget's parts are visible

pytestmark = pytest.mark.browser


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _skip_or_fail(reason: str) -> None:
    if _ci():
        pytest.fail(f"{reason} (CI is set, so the browser check must run)")
    print(f"\nSKIP test_browser: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


# Fresh JupyterLab user settings, so that nothing from a user's ~/.jupyter changes the page.
LAB_SETTINGS = {
    # Render every cell (no virtual scrolling), so that the DOM holds all prompts and outputs.
    "notebook-extension/tracker": {"windowingMode": "none"},
    # No news or update check: the network is closed, and the toast would cover the screenshot.
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _start_lab(root: Path, state: Path, port: int, token: str, log: Path) -> subprocess.Popen:
    for name, values in LAB_SETTINGS.items():
        path = state / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "TL_PROFILE": "quick",
        "TL_THREADS": "1",
        # The notebook records its figures in $TL_BUILD_DIR/results.json: keep the real one (make run's) intact.
        "TL_BUILD_DIR": str(state / "build"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
    }
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)


def _wait_for_lab(proc: subprocess.Popen, base: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            _get_json(f"{base}/api/status?token={token}")
            return
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer within {SERVER_START_S} s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop_lab(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _kernel_states(base: str, token: str) -> list[str]:
    sessions = _get_json(f"{base}/api/sessions?token={token}")
    return [s["kernel"]["execution_state"] for s in sessions if s.get("kernel")]


def _wait_kernel_idle(page, base: str, token: str, timeout_s: float) -> None:
    """The notebook's kernel exists and is idle, according to the server and to the page."""
    deadline = time.monotonic() + timeout_s
    states: list[str] = []
    indicator = None
    while time.monotonic() < deadline:
        states = _kernel_states(base, token)
        indicator = page.evaluate(
            "() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator')"
            "?.getAttribute('data-status') ?? null")
        if states == ["idle"] and indicator in ("idle", None):
            return
        time.sleep(1)
    pytest.fail(f"the kernel was not idle within {timeout_s:.0f} s (server: {states}, page: {indicator})")


# Input prompts of the open notebook's code cells, e.g. ["[1]:", "[*]:", "[ ]:"].
PROMPTS_JS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')).map(e => e.textContent.trim())"""


def _wait_run_all_finished(page, base: str, token: str, n_code: int) -> list[str]:
    """Every queued cell finished: no [*] prompt, the first cell numbered, the kernel idle twice in a row."""
    deadline = time.monotonic() + RUN_ALL_S
    prompts: list[str] = []
    settled = 0
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS_JS)
        done = (len(prompts) == n_code and prompts and re.fullmatch(r"\[\d+\]:", prompts[0])
                and "[*]:" not in prompts and _kernel_states(base, token) == ["idle"])
        settled = settled + 1 if done else 0
        if settled >= 2:
            return prompts
        time.sleep(1)
    pytest.fail(f"cells still running after {RUN_ALL_S:.0f} s; prompts: {prompts}")


def _run_all_cells(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def _save(page, path: Path) -> None:
    before = path.stat().st_mtime_ns
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before:
            time.sleep(0.5)  # the contents API writes atomically, but let it finish
            return
        time.sleep(0.25)
    pytest.fail("Ctrl+S did not save the notebook within 30 s")


def _widget_fallbacks(page, texts: tuple[str, ...]) -> list[str]:
    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").all_inner_texts()
    return [t[:200] for t in outputs if any(f in t for f in texts)]


def _check_widget(page) -> None:
    """The explorer rendered as a live widget: slider, picker and its figure, and no text fallback."""
    fallbacks = _widget_fallbacks(page, WIDGET_FALLBACKS)
    assert not fallbacks, f"a widget output shows a fallback instead of the widget: {fallbacks}"
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
    widget = page.locator(f"{panel} .jupyter-widgets").first
    assert widget.count() > 0, "no ipywidgets widget (.jupyter-widgets) in any output area"
    widget.scroll_into_view_if_needed()
    for selector, what in ((".jupyter-widgets", "the widget"), (".widget-slider", "the N_B slider"),
                           (".widget-select-multiple", "the strategy picker"),
                           (".widget-output img", "the figure inside the widget's Output")):
        found = page.locator(f"{panel} {selector}").first
        found.wait_for(state="visible", timeout=30_000)
        assert found.is_visible(), f"{what} ({selector}) is not visible"
    loading = _widget_fallbacks(page, (WIDGET_LOADING,))
    assert not loading, f"a widget is still loading: {loading}"


def _drive(page, base: str, token: str, notebook: Path) -> None:
    """Open the notebook, Run All Cells, save; no cell errors and the explorer widget renders."""
    n_code = sum(c.cell_type == "code" for c in nbformat.read(notebook, as_version=4).cells)
    page.goto(f"{base}/lab/tree/{notebook.name}?token={token}", wait_until="domcontentloaded")
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    _wait_kernel_idle(page, base, token, 120)
    _run_all_cells(page)
    prompts = _wait_run_all_finished(page, base, token, n_code)
    _save(page, notebook)

    saved = nbformat.read(notebook, as_version=4)
    code = [(i, c) for i, c in enumerate(saved.cells) if c.cell_type == "code"]
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"cells raised errors (index, name, message): {errors}"
    unrun = [i for i, c in code if c.execution_count is None]
    assert not unrun, f"code cells that never ran (index): {unrun}; page prompts: {prompts}"
    _check_widget(page)


def test_notebook_03_widget_in_jupyterlab(tmp_path: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        _skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")

    root, state = tmp_path / "lab", tmp_path / "state"  # the server's files; its settings and log
    root.mkdir()
    state.mkdir()
    notebook = root / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    shot = config.build_dir() / "browser" / "03_jupyterlab.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log = state / "jupyter-lab.log"
    started = time.monotonic()

    proc = _start_lab(root, state, port, token, log)
    try:
        _wait_for_lab(proc, base, token, log)
        with sync_playwright() as pw:
            # `make test` preloads tcmalloc (RUN_ENV) for the kernels; Chromium has its own allocator.
            browser_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                         env=browser_env)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1200})
                page.set_default_timeout(60_000)
                try:
                    _drive(page, base, token, notebook)
                finally:
                    try:
                        page.screenshot(path=str(shot), full_page=True)
                        print(f"\nscreenshot: {shot}")
                    except Exception as exc:  # never hide the real failure
                        print(f"\ncould not save the screenshot {shot}: {exc}")
            finally:
                browser.close()
    finally:
        _stop_lab(proc)
        print(f"browser check took {time.monotonic() - started:.0f} s")
