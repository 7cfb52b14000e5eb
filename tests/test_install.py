"""helpers/authoring/install.py: pip's settings handed to uv, and pip as the fallback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.authoring import install

LISTED = """:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/elsewhere'
install.index-url='https://mirror.example/simple'
user.timeout='60'
"""


def test_pips_settings_become_uvs_options() -> None:
    settings = install.pip_settings(LISTED)
    assert settings["find-links"] == ["/opt/wheels"]  # PIP_FIND_LINKS beats pip.conf's [global]
    assert settings["index-url"] == ["https://mirror.example/simple"]  # [install] beats [global]
    args = install.uv_arguments(settings)
    assert args[:3] == ["--index-strategy", "unsafe-best-match", "--index-url"]
    pairs = list(zip(args[2::2], args[3::2]))
    assert pairs == [("--index-url", "https://mirror.example/simple"),
                     ("--extra-index-url", "file:///opt/pypi/simple"), ("--extra-index-url", "file:///opt/pypi-more/simple"),
                     ("--find-links", "/opt/wheels"), ("--constraint", "/etc/xdg/pip/constraints.txt")]
    assert install.uv_environment(settings)["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert install.uv_arguments(install.pip_settings("")) == ["--index-strategy", "unsafe-best-match"]
    assert install.uv_arguments({"no-index": ["true"]})[-1] == "--no-index"


def test_pip_installs_when_uv_cannot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def fake_run(command: list[str], **_kwargs: object) -> subprocess.CompletedProcess:
        calls.append(command)
        failed = command[-1] == "uv"  # installing uv fails (offline, say)
        return subprocess.CompletedProcess(command, 1 if failed else 0, stdout="", stderr="")

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    python = str(tmp_path / "bin" / "python")
    assert install.install(python) == 0
    assert calls[-1] == [python, "-m", "pip", "install", "-e", ".[dev]"]


def test_runs_as_a_script_without_the_course_installed() -> None:
    script = Path(install.__file__)
    done = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "install.py VENV/bin/python" in done.stderr  # its usage, not an ImportError


def test_tl_installer_pip_skips_uv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(install.subprocess, "run", lambda command, **_kw: calls.append(command) or
                        subprocess.CompletedProcess(command, 0, stdout="", stderr=""))
    monkeypatch.setenv("TL_INSTALLER", "pip")
    python = str(tmp_path / "python")
    assert install.install(python) == 0
    assert calls[1:] == [[python, "-m", "pip", "install", "-e", ".[dev]"]]  # after `pip config list`: pip only


def test_a_native_package_uv_broke_is_reinstalled_with_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []
    imports = iter([1, 0])  # soundfile's import fails after uv, works after pip

    def fake_run(command: list[str], **_kwargs: object) -> subprocess.CompletedProcess:
        calls.append(command)
        code = next(imports) if command[1] == "-c" else 0
        return subprocess.CompletedProcess(command, code, stdout="", stderr="")

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    python = str(tmp_path / "bin" / "python")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "uv").write_text("")  # uv "installed"
    assert install.install(python) == 0
    assert [python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", "soundfile"] in calls
    assert calls[-1] == [python, "-c", "import soundfile"]  # checked again after pip


def test_the_course_imports_are_byte_compiled_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "tl_probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # a machine that sets it: the compile step still writes
    monkeypatch.setattr(install, "IMPORTED", (("tl_probe_module",), ("json", "tl_not_installed_anywhere")))
    assert install.compile_imports(sys.executable)  # a module that is not installed is skipped
    assert list((tmp_path / "__pycache__").glob("tl_probe_module.*.pyc"))
    assert not install.compile_imports(str(tmp_path / "no-python"))  # never raises
