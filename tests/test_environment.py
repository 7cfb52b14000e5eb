"""environment.yml (the conda route) agrees with pyproject.toml (the pip / make route)."""
from __future__ import annotations

from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from helpers.config import REPO_ROOT

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def load_environment() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "environment.yml").read_text())


def load_pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def conda_packages(env: dict[str, Any]) -> dict[str, str]:
    """{name: version spec} of the conda (non-pip) dependencies."""
    specs = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    return {spec.split("=")[0].strip(): spec.partition("=")[2].lstrip("=") for spec in specs}


def pip_section(env: dict[str, Any]) -> list[str]:
    sections = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict) and "pip" in dep]
    assert len(sections) == 1, "environment.yml needs exactly one pip: section"
    return [line.replace(" ", "") for line in sections[0]]


def test_python_version_is_allowed_by_requires_python() -> None:
    python = conda_packages(load_environment())["python"]
    requires = SpecifierSet(load_pyproject()["project"]["requires-python"])
    assert python.count(".") == 1, f"pin python to major.minor in environment.yml, not {python!r}"
    assert f"{python}.0" in requires, f"python={python} is outside requires-python {requires}"


def test_pip_installs_the_package_with_dev_extra() -> None:
    env = load_environment()
    assert "pip" in conda_packages(env)
    assert "-e.[dev]" in pip_section(env)
    assert "dev" in load_pyproject()["project"]["optional-dependencies"]


def test_conda_does_not_pin_what_pyproject_installs() -> None:
    """Dependencies come from pyproject.toml through pip only, so the two files cannot disagree."""
    assert set(conda_packages(load_environment())) == {"python", "pip"}
    assert pip_section(load_environment()) == ["-e.[dev]"]


def test_dev_extra_has_the_test_tools() -> None:
    dev = " ".join(load_pyproject()["project"]["optional-dependencies"]["dev"])
    for tool in ("pytest", "nbval", "pytest-xdist", "ruff", "pyyaml", "nbconvert"):
        assert tool in dev, f"{tool} missing from the dev extra"
