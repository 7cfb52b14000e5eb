"""The workshop files (deploy/README.md): the JupyterHub config, the learner start script, Binder's
postBuild and start, and what repo2docker makes of the repository."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import config

REPO = Path(__file__).resolve().parent.parent


def load_hub_config(env: dict[str, str]) -> object:
    """deploy/jupyterhub_config.py as JupyterHub loads it (traitlets' loader), under ``env``."""
    from traitlets.config.loader import PyFileConfigLoader

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return PyFileConfigLoader("jupyterhub_config.py", path=str(REPO / "deploy")).load_config()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_hub_config_gives_learners_the_shared_caches_read_only(tmp_path: Path) -> None:
    hub = load_hub_config({"TL_SHARED_DIR": str(tmp_path / "shared"), "TL_LEARNER_MEMORY": "2G"})
    env = hub.Spawner.environment
    assert env["TL_DATA_DIR"] == str(tmp_path / "shared" / "data")
    assert env["TL_ARTIFACTS_DIR"] == str(tmp_path / "shared" / "artifacts")
    assert env["TL_CACHE_READ_ONLY"] == "1" and env["TL_PROFILE"] == "quick" and env["TL_THREADS"] == "1"
    assert env["TL_COURSE_NOTEBOOKS"] == str(REPO / "notebooks")
    start, server = hub.Spawner.cmd
    assert start == str(REPO / "deploy" / "learner-start") and os.access(start, os.X_OK)
    assert Path(server).name == "jupyterhub-singleuser"
    assert hub.Spawner.mem_limit == "2G" and hub.Spawner.cpu_limit == 1.0


def test_learner_start_copies_the_notebooks_once_and_keeps_results_apart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TL_COURSE_NOTEBOOKS": str(REPO / "notebooks"),
           "TL_LEARNER_DIR": "~/transfer-learning-course"}
    show = [sys.executable, "-c", "import os; print(os.getcwd()); print(os.environ['TL_BUILD_DIR'])"]
    first = subprocess.run([str(REPO / "deploy" / "learner-start"), *show], env=env, capture_output=True, text=True,
                           check=True)
    mine = home / "transfer-learning-course"
    assert first.stdout.split() == [str(mine), str(mine / "build")]
    copied = sorted(p.name for p in (mine / "notebooks").iterdir())
    assert copied == sorted(p.name for p in (REPO / "notebooks").iterdir() if p.name != ".ipynb_checkpoints")
    edited = mine / "notebooks" / "00_start_here.ipynb"
    edited.write_text("{}")  # the learner's edit survives the next start
    subprocess.run([str(REPO / "deploy" / "learner-start"), "true"], env=env, check=True)
    assert edited.read_text() == "{}"
    missing = subprocess.run([str(REPO / "deploy" / "learner-start"), "true"], capture_output=True, text=True,
                             env={k: v for k, v in env.items() if k != "TL_COURSE_NOTEBOOKS"})
    assert missing.returncode != 0 and "TL_COURSE_NOTEBOOKS" in missing.stderr


def test_binder_start_picks_the_quick_profile() -> None:
    show = [sys.executable, "-c", "import os; print(os.environ['TL_PROFILE'])"]
    env = {k: v for k, v in os.environ.items() if k != "TL_PROFILE"}
    assert subprocess.run([str(REPO / "start"), *show], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "quick"
    chosen = subprocess.run([str(REPO / "start"), *show], env={**env, "TL_PROFILE": "standard"}, capture_output=True,
                            text=True, check=True)
    assert chosen.stdout.strip() == "standard"


def _fresh_clone(tmp_path: Path) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the course")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    for name in ("postBuild", "start", ".dockerignore", "deploy"):  # this working tree's, committed or not
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, clone / name, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, clone / name)
    return clone


@pytest.mark.needs_data
def test_postbuild_runs_on_a_fresh_clone(tmp_path: Path) -> None:
    """Binder's postBuild on a fresh clone, pointed at the quick caches `make test` built: it must
    finish and find every entry (a real Binder build makes them in the image instead)."""
    artifacts, data = config.artifacts_dir().resolve(), config.data_dir().resolve()
    if not any(artifacts.glob("pretrained_images-*.pt")):
        pytest.skip("the quick caches are not built: run `python data_scripts/prepare.py --profile quick` first")
    clone = _fresh_clone(tmp_path)
    before = {p: p.stat().st_mtime_ns for folder in (data, artifacts) for p in folder.rglob("*") if p.is_file()}
    env = {**os.environ, "TL_DATA_DIR": str(data), "TL_ARTIFACTS_DIR": str(artifacts),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(clone / "postBuild")], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "prepare: done" in done.stdout and "profile quick" in done.stdout
    after = {p: p.stat().st_mtime_ns for folder in (data, artifacts) for p in folder.rglob("*") if p.is_file()}
    assert {p for p in after if not p.name.endswith(".lock")} == {p for p in before if not p.name.endswith(".lock")}


@pytest.mark.hub
def test_repo2docker_builds_the_binder_image_from_these_files(tmp_path: Path) -> None:
    """repo2docker's Dockerfile for a fresh clone (no Docker needed to write it): the conda
    environment from environment.yml installed after the repository is copied in (it pip-installs
    the course itself), then postBuild, then start as the entry point."""
    repo2docker = Path(sys.executable).parent / "jupyter-repo2docker"
    if not repo2docker.exists():
        pytest.skip("`make test-hub` installs jupyter-repo2docker (the `hub` extra)")
    clone = _fresh_clone(tmp_path)
    made = subprocess.run([str(repo2docker), "--no-build", "--no-run", "--debug", str(clone)], capture_output=True,
                          text=True, timeout=300)
    dockerfile = made.stdout + made.stderr
    assert made.returncode == 0, dockerfile[-3000:]
    copy = dockerfile.index("COPY --chown=0:0 src/ ${REPO_DIR}/")
    install = dockerfile.index('env update -p ${NB_PYTHON_PREFIX} --file "environment.yml"')
    post_build = dockerfile.index("RUN ./postBuild")
    assert copy < install < post_build
    assert 'ENV R2D_ENTRYPOINT="${REPO_DIR}/start"' in dockerfile
