"""Install the course into a virtual environment: with uv when it can be had, else with pip.

    python helpers/authoring/install.py VENV/bin/python [SPEC]     # SPEC: ".[dev]" by default

Run as a script (it needs only the standard library: the course is not installed yet). uv installs
the same packages as pip in a fraction of the time (measured on the course's 2-core machine, a new
virtual environment of ~6 GB: pip 151-158 s with its cache warm; uv 40 s in CI, 59 s with its own
cache empty, byte-code compiled as pip does). uv does not read pip's configuration, so this hands
it over: the index, extra indexes, find-links, constraints and certificate that ``pip config list``
shows (pip.conf files and PIP_* variables), and pip's resolution rule (every index is considered
for the best version: uv's ``unsafe-best-match``). When uv cannot be installed or fails, pip
installs, as before: the project never needs uv. ``TL_INSTALLER=pip`` skips uv. After uv, the
packages that carry a compiled library (NATIVE) are imported once, and reinstalled with pip when
uv picked a wheel without the library.

Byte code: uv is not asked to compile all ~11,800 installed modules (``--compile-bytecode``: 17 s of
setup on both cores of the course's 2-core machine); :func:`compile_imports` compiles the ~3,500 that
the course's processes import, by importing them in two processes (9 s), and Python compiles anything
else on its first import and keeps it in ``__pycache__`` (the Makefile lets it:
``unexport PYTHONDONTWRITEBYTECODE``; a process that may not write them compiles its imports every
time: 7.4 s instead of 3.2 s for torch, the course's modules, pytest and the kernel's). Measured
there (fresh clones, 2026-12-08): setup 15-21 s instead of 21-25.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# pip's options that uv takes too: (pip's name, uv's flag, several values?)
OPTIONS = (("index-url", "--index-url", False), ("extra-index-url", "--extra-index-url", True),
           ("find-links", "--find-links", True), ("constraint", "--constraint", True))
# Where a setting comes from, weakest first: pip.conf's [global], then [install], then PIP_* variables.
SECTIONS = ("global", "install", ":env:")


def pip_settings(config_list: str) -> dict[str, list[str]]:
    """pip's effective settings from the output of ``pip config list`` (lines ``section.key='value'``):
    for each key the values of the strongest section that sets it (several values split on spaces)."""
    found: dict[str, tuple[int, list[str]]] = {}
    for line in config_list.splitlines():
        name, sep, value = line.partition("=")
        section, dot, key = name.rpartition(".")
        if not sep or not dot or section not in SECTIONS:
            continue
        rank = SECTIONS.index(section)
        if key not in found or rank >= found[key][0]:
            found[key] = (rank, value.strip().strip("'\"").split())
    return {key: values for key, (_, values) in found.items()}


def uv_arguments(settings: dict[str, list[str]]) -> list[str]:
    """uv pip install's options that reproduce pip's settings."""
    args = ["--index-strategy", "unsafe-best-match"]  # no --compile-bytecode: see the module's notes
    for pip_name, flag, several in OPTIONS:
        values = settings.get(pip_name, [])
        for value in values if several else values[:1]:
            args += [flag, value]
    if settings.get("no-index", ["false"])[0].lower() in ("1", "true", "yes", "on"):
        args.append("--no-index")
    return args


def uv_environment(settings: dict[str, list[str]]) -> dict[str, str]:
    """The environment for uv: pip's certificate bundle, unless SSL_CERT_FILE is set already."""
    env = dict(os.environ)
    cert = settings.get("cert")
    if cert and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = cert[0]
    return env


# Packages whose wheels carry a compiled library, and an import that fails without it. When the same
# version sits in two indexes, one as a pure-Python wheel without the library and one as a platform
# wheel (soundfile 0.14.0 on this project's machine: the "any" wheel in one local index, the
# manylinux one in another), uv takes the first index's file and pip the best-matching wheel; the
# course then cannot read a WAV file unless the system has libsndfile (CI's does: Chromium's packages
# bring it; this machine before Chromium did not). Checked after uv, and reinstalled with pip when broken.
NATIVE = (("soundfile", "import soundfile"),)


def mend_native(python: str) -> bool:
    """Reinstall with pip every NATIVE package whose import fails after uv; False if one stays broken."""
    ok = True
    for distribution, check in NATIVE:
        if run([python, "-c", check], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            continue
        print(f"install: {distribution} from uv cannot load its library; pip reinstalls it", file=sys.stderr)
        ok = run([python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", distribution]) and \
            run([python, "-c", check]) and ok
    return ok


# What the course's processes import (prepare's workers, the notebooks' kernels, the tests, JupyterLab),
# in two groups of about equal compile time: compile_imports imports each group in its own process.
IMPORTED = (
    ("torch", "torch.optim", "torch._dynamo", "torch.export", "torchaudio", "numpy", "soundfile", "tqdm",
     "helpers.train", "helpers.experiments", "helpers.wakeword", "helpers.custom_wake", "helpers.transfer",
     "helpers.plots", "helpers.widgets", "helpers.backbones"),
    ("matplotlib.pyplot", "ipykernel.kernelapp", "ipywidgets", "IPython.display", "nbclient", "nbformat",
     "nbconvert", "pytest", "xdist", "nbval.plugin", "jupyterlab.labapp", "jupyter_server.serverapp",
     "skimage.data"),
)


def compile_imports(python: str) -> bool:
    """Byte-compile what the course imports (IMPORTED) by importing it, two processes at once; a module
    that is not installed (a spec without the dev tools) is skipped. False if a process failed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    script = ("import importlib, sys\nfor name in sys.argv[1:]:\n    try:\n        importlib.import_module(name)\n"
              "    except Exception:\n        pass\n")
    root = Path(__file__).resolve().parents[2]  # the course's modules: an editable install of this checkout
    try:
        procs = [subprocess.Popen([python, "-c", script, *names], env=env, cwd=root, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for names in IMPORTED]
    except OSError:
        return False
    return all([proc.wait() == 0 for proc in procs])  # a list: wait for every one


def run(command: list[str], **kwargs: object) -> bool:
    return subprocess.run(command, check=False, **kwargs).returncode == 0  # type: ignore[call-overload]


def install(python: str, spec: str = ".[dev]") -> int:
    """Install ``spec`` (editable) into the environment of ``python``: uv first, pip as the fallback."""
    pip = [python, "-m", "pip"]
    listed = subprocess.run([*pip, "config", "list"], capture_output=True, text=True, check=False)
    settings = pip_settings(listed.stdout if listed.returncode == 0 else "")
    uv = Path(python).parent / ("uv.exe" if os.name == "nt" else "uv")
    if os.environ.get("TL_INSTALLER", "uv") == "pip":
        print("install: TL_INSTALLER=pip, so pip installs the course", file=sys.stderr)
    elif run([*pip, "install", "-q", "uv"], stdout=subprocess.DEVNULL) and uv.exists():
        command = [str(uv), "pip", "install", "--python", python, "-e", spec, *uv_arguments(settings)]
        if run(command, env=uv_environment(settings)):
            if not mend_native(python):
                return 1
            if not compile_imports(python):  # only slower imports, never an error
                print("install: could not byte-compile the course's imports; Python will as it imports them",
                      file=sys.stderr)
            return 0
        print("install: uv could not install the course; pip will (slower)", file=sys.stderr)
    else:
        print("install: uv is not available here; pip installs the course (slower)", file=sys.stderr)
    return 0 if run([*pip, "install", "-e", spec]) else 1


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        sys.exit(__doc__)
    sys.exit(install(*sys.argv[1:]))
