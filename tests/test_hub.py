"""A workshop under load: JupyterHub on 127.0.0.1, several learners running notebooks at once.

Real parts: the ``jupyterhub`` package with deploy/jupyterhub_config.py (the file a workshop uses),
the ``configurable-http-proxy`` npm package, one single-user Jupyter server per learner, notebooks
executed cell by cell through the Jupyter server's kernel API (REST + websocket), and the shared
caches that ``data_scripts/prepare.py --profile quick`` built, read-only. What is asserted:

* every learner logs in (the Hub's login form) and gets their own server;
* every notebook completes without an error, for every learner;
* no file of the shared caches was created, changed or locked (size, time and SHA-256 of each);
* each learner's results are their own: ``results.json`` in their own build folder with the
  figures of both notebooks, and a learner's token cannot reach another learner's server.

It prints each learner's wall time with N learners at once against one learner alone, and the
peak memory of a learner's processes (deploy/README.md quotes them). Everything it starts is
stopped, on success and on failure; nothing leaves 127.0.0.1.

Run by ``make test-hub`` (it installs jupyterhub and configurable-http-proxy first); too long for
``make test``'s budget. ``TL_HUB_LEARNERS`` sets N (default 4).
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
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import config

pytestmark = [pytest.mark.hub]

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NOTEBOOKS = ("02_head_replacement.ipynb", "03_last_layer_vs_full.ipynb")
LEARNERS = int(os.environ.get("TL_HUB_LEARNERS") or 4)
CELL_TIMEOUT_S = 900
PASSWORD = secrets.token_hex(8)
SERVICE_TOKEN = secrets.token_hex(16)


def _proxy_command() -> str | None:
    local = REPO / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(local) if local.exists() else shutil.which("configurable-http-proxy")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _snapshot(*folders: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folders``: (size, mtime in ns, SHA-256)."""
    from helpers.data.download import file_digest

    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns, file_digest(p, "sha256"))
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


class Hub:
    """A JupyterHub on 127.0.0.1 with the course's deploy config + a dummy login, in ``root``."""

    def __init__(self, root: Path, shared: Path) -> None:
        import requests

        self.root, self.shared = root, shared
        self.port, self.hub_port, self.api_port = _free_port(), _free_port(), _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {SERVICE_TOKEN}"
        self.process: subprocess.Popen | None = None
        self.log = root / "hub.log"

    def write_config(self) -> Path:
        path = self.root / "test_hub_config.py"
        path.write_text(f"""
c = get_config()  # noqa
load_subconfig({str(REPO / "deploy" / "jupyterhub_config.py")!r})  # the workshop's own settings
# what only this test adds: loopback ports, a dummy login, one local process per learner
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {self.hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.api_port}"
c.ConfigurableHTTPProxy.command = [{_proxy_command()!r}]
c.ConfigurableHTTPProxy.pid_file = {str(self.root / "proxy.pid")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(self.root / "home" / "{username}")!r}
c.JupyterHub.db_url = "sqlite:///{self.root / 'hub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(self.root / "cookie_secret")!r}
c.JupyterHub.cleanup_servers = True
if {os.geteuid() == 0!r}:  # this machine's CI runs as root; a learner's server never should
    c.Spawner.args = list(c.Spawner.args) + ["--allow-root"]
c.JupyterHub.services = [{{"name": "loadtest", "api_token": {SERVICE_TOKEN!r}}}]
c.JupyterHub.load_roles = [{{"name": "loadtest", "services": ["loadtest"],
                             "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
""")
        return path

    def start(self) -> None:
        env = {**os.environ, "TL_COURSE_DIR": str(REPO), "TL_SHARED_DIR": str(self.shared),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        for name in ("TL_DATA_DIR", "TL_ARTIFACTS_DIR", "TL_BUILD_DIR", "TL_CACHE_READ_ONLY"):
            env.pop(name, None)  # the learners get theirs from the Hub's config, nothing else
        with self.log.open("w") as log:
            self.process = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(self.write_config())],
                                            cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.wait(lambda: self.http.get(f"{self.base}/hub/api/", timeout=5).status_code == 200, 90, "the Hub")

    def wait(self, ready, timeout_s: float, what: str) -> None:  # noqa: ANN001 - a predicate
        import requests

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the Hub exited ({self.process.returncode}):\n{self.tail()}")
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{what} not ready after {timeout_s} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def log_in(self, user: str) -> None:
        """The learner's login through the Hub's form (the dummy authenticator checks the password)."""
        import requests

        browser = requests.Session()
        page = browser.get(f"{self.base}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
        form = {"username": user, "password": PASSWORD, **({"_xsrf": xsrf.group(1)} if xsrf else {})}
        answer = browser.post(f"{self.base}/hub/login", data=form, allow_redirects=False, timeout=30)
        assert answer.status_code == 302 and any(c.name.startswith("jupyterhub-") for c in browser.cookies), (
            f"{user} could not log in: {answer.status_code} {answer.text[:300]}")
        wrong = requests.post(f"{self.base}/hub/login", data={**form, "password": "wrong"}, allow_redirects=False,
                              cookies={"_xsrf": browser.cookies.get("_xsrf", "")}, timeout=30)
        assert wrong.status_code != 302, "a wrong password was accepted"

    def start_server(self, user: str) -> str:
        """Start ``user``'s server, wait until it answers; returns a token of the learner's own."""
        answer = self.http.post(f"{self.base}/hub/api/users/{user}/server", timeout=30)
        assert answer.status_code in (201, 202), f"spawn {user}: {answer.status_code} {answer.text}"
        self.wait(lambda: self.http.get(f"{self.base}/hub/api/users/{user}", timeout=10)
                  .json()["servers"].get("", {}).get("ready"), 180, f"{user}'s server")
        token = self.http.post(f"{self.base}/hub/api/users/{user}/tokens", json={"note": "load test"}, timeout=30)
        assert token.status_code in (200, 201), f"token for {user}: {token.status_code} {token.text}"
        return token.json()["token"]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # cleanup_servers: the Hub stops the learners' servers
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        _kill_leftovers(self.root)


def _processes_under(root: Path) -> list:
    """Processes whose working folder is under ``root`` (the learners' servers and kernels)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.pid != os.getpid() and Path(process.cwd()).is_relative_to(root):
                found.append(process)
        except (psutil.Error, OSError, ValueError):
            continue
    return found


def _kill_leftovers(root: Path) -> None:
    for process in _processes_under(root):
        try:
            process.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass


class Learner:
    """One learner: runs notebooks through the kernel API of their own server."""

    def __init__(self, hub: Hub, name: str, token: str) -> None:
        import requests

        self.hub, self.name, self.token = hub, name, token
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"
        self.url = f"{hub.base}/user/{name}"
        self.errors: list[str] = []
        self.seconds = 0.0
        self.peak_rss = 0  # bytes: the most that the learner's server and kernels held at once
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds last seen (user + system)

    def run(self, notebooks: tuple[str, ...]) -> None:
        start = time.monotonic()
        try:
            for notebook in notebooks:
                self.execute_notebook(notebook)
        except Exception as error:  # noqa: BLE001 - reported by the test, with the learner's name
            self.errors.append(f"{type(error).__name__}: {error}")
        self.seconds = time.monotonic() - start

    def execute_notebook(self, notebook: str) -> None:
        import websocket

        cells = json.loads((REPO / "notebooks" / notebook).read_text())["cells"]
        answer = self.http.post(f"{self.url}/api/kernels", json={"name": "python3", "path": f"notebooks/{notebook}"},
                                timeout=60)
        assert answer.status_code == 201, f"{self.name}: no kernel ({answer.status_code} {answer.text[:200]})"
        kernel = answer.json()["id"]
        channel = websocket.create_connection(
            f"ws://127.0.0.1:{self.hub.port}/user/{self.name}/api/kernels/{kernel}/channels",
            header=[f"Authorization: token {self.token}"], timeout=CELL_TIMEOUT_S)
        session = uuid.uuid4().hex
        try:
            for index, cell in enumerate(cells):
                if cell["cell_type"] == "code" and "".join(cell["source"]).strip():
                    self.execute_cell(channel, session, "".join(cell["source"]), f"{notebook} cell {index}")
        finally:
            channel.close()
            self.http.delete(f"{self.url}/api/kernels/{kernel}", timeout=60)

    def execute_cell(self, channel, session: str, code: str, where: str) -> None:  # noqa: ANN001 - websocket
        msg_id = uuid.uuid4().hex
        channel.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.name, "session": session, "msg_type": "execute_request",
                       "version": "5.3", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        replied = idle = False
        while not (replied and idle):
            message = json.loads(channel.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "error":
                content = message["content"]
                raise AssertionError(f"{self.name}, {where}: {content['ename']}: {content['evalue']}")
            if kind == "execute_reply":
                replied = True
                assert message["content"]["status"] == "ok", f"{self.name}, {where}: {message['content']}"
            if kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True


def _run_together(learners: list[Learner], notebooks: tuple[str, ...], root: Path) -> None:
    """Every learner runs ``notebooks`` at the same time; their peak memory is sampled meanwhile."""
    import psutil

    threads = [threading.Thread(target=learner.run, args=(notebooks,)) for learner in learners]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for learner in learners:
            home = root / "home" / learner.name
            rss = 0
            for process in _processes_under(home):
                try:
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    learner.cpu[process.pid] = times.user + times.system
                except psutil.Error:
                    pass
            learner.peak_rss = max(learner.peak_rss, rss)
        time.sleep(0.5)
    for thread in threads:
        thread.join()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    pytest.importorskip("jupyterhub", reason="`make test-hub` installs jupyterhub (the `hub` extra)")
    pytest.importorskip("websocket", reason="websocket-client comes with jupyterlab")
    if _proxy_command() is None:
        pytest.skip("configurable-http-proxy is missing: `make test-hub` installs it with npm into .hub/")
    shared = tmp_path / "shared"  # the instructor's store: links to the caches prepare built
    shared.mkdir()
    (shared / "data").symlink_to(config.data_dir().resolve(), target_is_directory=True)
    (shared / "artifacts").symlink_to(config.artifacts_dir().resolve(), target_is_directory=True)
    server = Hub(tmp_path, shared)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_learners_run_notebooks_concurrently_on_shared_read_only_caches(hub: Hub) -> None:
    data, artifacts = config.data_dir().resolve(), config.artifacts_dir().resolve()
    if not any(artifacts.glob("pretrained_images-*.pt")):
        pytest.skip("the quick caches are not built: run `python data_scripts/prepare.py --profile quick` first")
    before = _snapshot(data, artifacts)

    names = ["solo"] + [f"learner{i}" for i in range(1, LEARNERS + 1)]
    for name in names:
        hub.log_in(name)
    tokens = {name: hub.start_server(name) for name in names}
    learners = {name: Learner(hub, name, token) for name, token in tokens.items()}

    _run_together([learners["solo"]], NOTEBOOKS, hub.root)  # one learner alone: the reference time
    together = [learners[name] for name in names[1:]]
    _run_together(together, NOTEBOOKS, hub.root)

    problems = [error for learner in learners.values() for error in learner.errors]
    assert not problems, "\n".join(problems) + "\n" + hub.tail()
    after = _snapshot(data, artifacts)
    changed = sorted(set(before) ^ set(after) | {p for p in before if p in after and before[p] != after[p]})
    assert not changed, f"the shared caches were written: {changed[:10]}"

    for name, learner in learners.items():
        folder = hub.root / "home" / name / "transfer-learning-course"
        figures = json.loads((folder / "build" / "results.json").read_text())
        assert {Path(nb).stem for nb in NOTEBOOKS} <= set(figures), f"{name}: {sorted(figures)}"
        assert (folder / "notebooks" / NOTEBOOKS[0]).exists()
        other = names[(names.index(name) + 1) % len(names)]
        assert learner.http.get(f"{hub.base}/user/{other}/api/kernels", timeout=30,
                                allow_redirects=False).status_code in (302, 403), f"{name} reached {other}'s server"

    alone = learners["solo"].seconds
    times = sorted(learner.seconds for learner in together)
    ratio = sum(times) / len(times) / alone
    peak = max(learner.peak_rss for learner in learners.values()) / 2**30
    cpu = sorted(sum(learner.cpu.values()) for learner in together)  # CPU seconds (at most 0.5 s unseen)
    report = {"learners": LEARNERS, "cores": os.cpu_count(), "notebooks": list(NOTEBOOKS),
              "alone_s": round(alone, 1), "together_s": [round(t, 1) for t in times], "ratio": round(ratio, 2),
              "cpu_s_per_learner": [round(c, 1) for c in cpu],
              "cpu_s_alone": round(sum(learners["solo"].cpu.values()), 1),
              "peak_memory_gib_per_learner": round(peak, 2)}
    print(f"\nhub load test: {LEARNERS} learners at once on {os.cpu_count()} cores ran {', '.join(NOTEBOOKS)} in "
          f"{', '.join(f'{t:.0f}' for t in times)} s each, one learner alone in {alone:.0f} s: {ratio:.2f}x "
          f"as long; CPU time per learner {', '.join(f'{c:.0f}' for c in cpu)} s (alone "
          f"{report['cpu_s_alone']:.0f} s); peak memory of one learner's processes {peak:.2f} GiB")
    from helpers.results import atomic_write_text

    atomic_write_text(config.build_dir() / "hub_load_test.json", json.dumps(report, indent=2) + "\n")
