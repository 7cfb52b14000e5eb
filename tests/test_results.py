"""helpers.results: atomic, merging, parallel-safe build/results.json."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import results


@pytest.fixture
def build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh build dir for each test (TL_BUILD_DIR)."""
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


def test_record_merges_notebooks_and_names(build: Path) -> None:
    assert results.load_results() == {}
    assert results.record("01_a", "accuracy", 0.75) == 0.75
    results.record("01_a", "loss", 1)
    results.record("02_b", "gain", -0.5)
    results.record("01_a", "accuracy", 0.8)  # same name: newest value wins
    assert results.load_results() == {"01_a": {"accuracy": 0.8, "loss": 1.0}, "02_b": {"gain": -0.5}}
    assert json.loads((build / "results.json").read_text()) == results.load_results()


def test_results_file_is_readable_by_others(build: Path) -> None:
    results.record("00", "x", 1)
    assert (build / "results.json").stat().st_mode & 0o044 == 0o044


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused(build: Path, value: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        results.record("00", "bad", value)
    assert not (build / "results.json").exists()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_corrupt_results_is_a_clear_error_and_left_untouched(build: Path, text: str) -> None:
    build.mkdir(parents=True)
    path = build / "results.json"
    path.write_text(text)
    with pytest.raises(results.ResultsError, match="results.json"):
        results.record("00", "x", 1.0)
    with pytest.raises(results.ResultsError, match="move it aside|Move it aside"):
        results.load_results()
    assert path.read_text() == text


def test_unwritable_build_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A regular file where the build folder should be (chmod does not stop root)."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    monkeypatch.setenv("TL_BUILD_DIR", str(blocker / "build"))
    with pytest.raises(results.ResultsError, match="TL_BUILD_DIR"):
        results.record("00", "x", 1.0)


def test_failed_write_leaves_old_file_and_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        results.atomic_write_text(path, "new \ud800")  # a lone surrogate cannot be encoded
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_parallel_records_lose_nothing(build: Path) -> None:
    """8 processes x 10 records each, all at once: every figure must be there."""
    code = ("import sys\nfrom helpers import results\n"
            "for i in range(10): results.record(f'nb{sys.argv[1]}', f'fig{i}', int(sys.argv[1]) * 100 + i)")
    env = {**os.environ, "TL_BUILD_DIR": str(build)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p)], env=env) for p in range(8)]
    assert [proc.wait(timeout=60) for proc in procs] == [0] * 8
    data = results.load_results()
    assert data == {f"nb{p}": {f"fig{i}": float(p * 100 + i) for i in range(10)} for p in range(8)}


def test_format_table() -> None:
    assert "no figures" in results.format_table({})
    lines = results.format_table({"01_b": {"z": 1.23456, "a": 2}, "00_a": {"long_name": 0.5}}).splitlines()
    assert [line.split()[:2] for line in lines] == [["00_a", "long_name"], ["01_b", "a"], ["01_b", "z"]]
    assert lines[2].split()[2] == "1.235"
    assert len({line.index(line.split()[2]) for line in lines}) == 1  # values in one column
