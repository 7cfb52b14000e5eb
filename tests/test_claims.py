"""helpers.claims: every bar defined once, and the notebooks assert through the table."""
from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from helpers import claims, results
from helpers.config import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0*.ipynb"))
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


@pytest.fixture
def build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh build dir for each test (TL_BUILD_DIR)."""
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


# --- reading the notebooks' code -------------------------------------------------------------

def code_cells(path: Path) -> list[ast.Module]:
    """Each code cell of a notebook, parsed (a cell that does not parse fails the test)."""
    cells = json.loads(path.read_text())["cells"]
    return [ast.parse("".join(c["source"]), filename=f"{path.name}[{i}]")
            for i, c in enumerate(cells) if c["cell_type"] == "code"]


def calls(path: Path, owner: str, name: str) -> Iterator[tuple[int, ast.Call]]:
    """(cell number, call) for every ``owner.name(...)`` call, in notebook order."""
    for index, cell in enumerate(code_cells(path)):
        for node in ast.walk(cell):
            func = getattr(node, "func", None)
            if (isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr == name
                    and isinstance(func.value, ast.Name) and func.value.id == owner):
                yield index, node


def notebook_key(path: Path) -> str:
    """The notebook's ``NOTEBOOK = "..."`` constant, which must be its file name."""
    for cell in code_cells(path):
        for node in cell.body:
            if (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["NOTEBOOK"]
                    and isinstance(node.value, ast.Constant)):
                assert node.value.value == path.stem, f"{path.name}: NOTEBOOK should be {path.stem!r}"
                return node.value.value
    raise AssertionError(f"{path.name} defines no NOTEBOOK constant")


def figure_names(path: Path, owner: str, name: str) -> list[tuple[int, int, str, str]]:
    """(cell, line, notebook, figure) of every ``owner.name(NOTEBOOK, "figure", ...)`` call.

    A figure name that is not a string literal is allowed for results.record (per-profile names)
    but not for claims.check, whose (notebook, figure) must be checkable against the table.
    """
    found = []
    for cell, call in calls(path, owner, name):
        where = f"{path.name} cell {cell} line {call.lineno}"
        first, second = call.args[0], call.args[1]
        if isinstance(first, ast.Name) and first.id == "NOTEBOOK":
            notebook = notebook_key(path)
        else:
            assert isinstance(first, ast.Constant), f"{where}: {owner}.{name} should get NOTEBOOK first"
            notebook = first.value
        if not isinstance(second, ast.Constant):
            assert owner != "claims", f"{where}: claims.check needs a literal figure name"
            continue
        found.append((cell, call.lineno, notebook, second.value))
    return found


def _numbers(node: ast.AST) -> Iterator[float]:
    """Numeric literals in an expression, except indices (``grid[-1, 0]`` is no bar)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        yield node.value
    for field, child in ast.iter_fields(node):
        if isinstance(node, ast.Subscript) and field == "slice":
            continue
        for item in child if isinstance(child, list) else [child]:
            if isinstance(item, ast.AST):
                yield from _numbers(item)


def bars_by_hand(path: Path) -> list[str]:
    """Asserts that compare with a number: an ordering (<, >=, ...) or == with a float literal.

    Equality with an integer is a count or a shape (an invariant, allowed); a tolerance check of
    a formula is written with np.isclose, not as a bar.
    """
    found = []
    for index, cell in enumerate(code_cells(path)):
        for node in ast.walk(cell):
            if not isinstance(node, ast.Assert):
                continue
            if any(_is_bar(n) for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                found.append(f"{path.name} cell {index} line {node.lineno}: {ast.unparse(node.test)}")
    return found


def _is_bar(compare: ast.Compare) -> bool:
    numbers = [v for side in [compare.left, *compare.comparators] for v in _numbers(side)]
    ordering = any(isinstance(op, ORDERING) for op in compare.ops)
    return (ordering and bool(numbers)) or any(isinstance(v, float) for v in numbers)


# --- the notebooks assert through the table ------------------------------------------------------

def test_the_notebooks_are_found():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_checked_claim_is_in_the_table(path: Path):
    for cell, _, notebook, figure in figure_names(path, "claims", "check"):
        assert notebook == path.stem, f"{path.name} cell {cell}: checks a claim of {notebook}"
        claims.find(notebook, figure)  # raises UnknownClaim, listing the notebook's claims


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_bar_is_asserted_by_hand(path: Path):
    found = bars_by_hand(path)
    assert not found, "define these bars in helpers/claims.py and use claims.check:\n" + "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_claim_of_the_table_is_checked_by_its_notebook(path: Path):
    checked = {figure for *_, figure in figure_names(path, "claims", "check")}
    missing = [c.figure for c in claims.CLAIMS if c.notebook == path.stem and c.figure not in checked]
    assert not missing, f"{path.name} never calls claims.check for {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claimed_figures_are_not_recorded_around_their_bar(path: Path):
    claimed = {c.figure for c in claims.CLAIMS if c.notebook == path.stem}
    bypass = [f"cell {cell}: {figure}" for cell, _, _, figure in figure_names(path, "results", "record")
              if figure in claimed]
    assert not bypass, f"{path.name} records claimed figures with results.record, not claims.check: {bypass}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_relative_bar_reads_a_figure_recorded_just_before(path: Path):
    """The reference must be recorded earlier in the same run, not left over from an old one."""
    written = [(cell, line, figure) for name in ("record", "check")
               for cell, line, _, figure in figure_names(path, "results" if name == "record" else "claims", name)]
    for cell, line, _, figure in figure_names(path, "claims", "check"):
        claim = claims.find(path.stem, figure)
        if claim.reference is not None:
            before = [w for w in written if w[2] == claim.reference and w[:2] < (cell, line)]
            assert before, f"{path.name} cell {cell}: record {claim.reference} before checking {figure}"


def test_the_ast_checks_catch_what_they_should(tmp_path: Path):
    cells = ['NOTEBOOK = "99_demo"\nassert gain >= 6 and spread.max() <= 3',
             "assert x.shape == (5, n) and len(layers) == 3 and grid[-1, 0] is not None",
             "assert drift == 0.0",
             "assert eer <= 0.6 * scratch",
             'claims.check(NOTEBOOK, "no_such_figure", 1.0)']
    path = tmp_path / "99_demo.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": s} for s in cells]}))
    assert [found.split(":")[0] for found in bars_by_hand(path)] == [
        "99_demo.ipynb cell 0 line 2", "99_demo.ipynb cell 2 line 1", "99_demo.ipynb cell 3 line 1"]
    assert figure_names(path, "claims", "check") == [(4, 1, "99_demo", "no_such_figure")]
    with pytest.raises(claims.UnknownClaim, match="99_demo"):
        test_every_checked_claim_is_in_the_table(path)


# --- the table ---------------------------------------------------------------------------------------

def test_each_claim_is_defined_once_and_reads_well():
    keys = [(c.notebook, c.figure) for c in claims.CLAIMS]
    assert len(keys) == len(set(keys))
    for claim in claims.CLAIMS:
        assert claim.bar and claim.meaning and (REPO_ROOT / "notebooks" / f"{claim.notebook}.ipynb").exists()


def test_the_bars_the_notebooks_used_to_assert():
    bar = {(c.notebook, c.figure): c.bar for c in claims.CLAIMS}
    assert bar["03_last_layer_vs_full", "gain_full_vs_scratch_nb100"] == ">= +6 points (mean over seeds)"
    assert bar["03_last_layer_vs_full", "gain_full_vs_scratch_nb1000"] == (
        "<= gain_full_vs_scratch_nb100 - 3 points (mean over seeds)")
    assert bar["04_wake_word", "eer_transfer"] == "<= 0.6 x eer_scratch (mean over seeds)"
    assert bar["05_reversed_sizes", "image_gain_reversed"] == "-2.5 <= x <= +1 points (mean over seeds)"
    assert bar["05_reversed_sizes", "speech_gain_reversed"] == "|x| <= 3 points (mean over seeds)"
    assert bar["00_start_here", "matmul_max_error"] == "< 0.01"
    assert bar["03_last_layer_vs_full", "batchnorm_drift_proper_freeze"] == "== 0"


@pytest.mark.parametrize(("figure", "value", "reference", "holds"), [
    ("gain_full_vs_scratch_nb100", 6.0, None, True),
    ("gain_full_vs_scratch_nb100", 5.99, None, False),
    ("gain_full_vs_scratch_nb1000", 4.0, 7.0, True),
    ("gain_full_vs_scratch_nb1000", 4.5, 7.0, False),
    ("batchnorm_drift_proper_freeze", 0.0, None, True),
    ("batchnorm_drift_proper_freeze", 1e-7, None, False),
    ("batchnorm_drift_naive_freeze", 0.01, None, False),  # strict: > 0.01
])
def test_holds(figure: str, value: float, reference: float | None, holds: bool):
    notebook = "03_last_layer_vs_full"
    assert claims.find(notebook, figure).holds(value, reference) is holds


def test_a_claim_needs_a_bound_and_a_known_seed_statistic():
    with pytest.raises(ValueError, match="bound"):
        claims.Claim("00_x", "f", "m")
    with pytest.raises(ValueError, match="seeds must be one of"):
        claims.Claim("00_x", "f", "m", low=0.0, seeds="median")
    with pytest.raises(ValueError, match="one bound"):
        claims.Claim("00_x", "f", "m", low=0.0, high=1.0, reference="g")


# --- check() -------------------------------------------------------------------------------------------

def test_check_records_and_passes(build: Path):
    assert claims.check("01_pretraining", "source_test_accuracy", 0.91) == 0.91
    assert results.load_results() == {"01_pretraining": {"source_test_accuracy": 0.91}}


def test_check_raises_with_the_claim_the_value_the_bar_and_its_meaning(build: Path):
    with pytest.raises(claims.ClaimFailed) as failure:
        claims.check("01_pretraining", "source_test_accuracy", 0.5)
    assert isinstance(failure.value, AssertionError)  # a failed claim stops the notebook like an assert
    message = str(failure.value)
    assert "01_pretraining.source_test_accuracy = 0.5" in message and ">= 0.8" in message
    assert "the image recognizer's accuracy" in message
    assert results.load_results()["01_pretraining"]["source_test_accuracy"] == 0.5  # recorded all the same


def test_check_reduces_per_seed_values_as_the_table_says(build: Path):
    gains = torch.tensor([7.0, 4.0, 10.0])
    notebook = "03_last_layer_vs_full"
    assert claims.check(notebook, "gain_full_vs_scratch_nb100", gains) == pytest.approx(7.0)
    assert claims.check(notebook, "gain_full_vs_scratch_nb100_min_seed", gains) == 4.0
    assert claims.check("05_reversed_sizes", "image_gain_reversed_max_abs_seed", [0.5, -2.5, 1.0]) == 2.5
    assert claims.check(notebook, "gain_full_vs_scratch_nb100", gains.mean()) == pytest.approx(7.0)  # 0-d: one number
    with pytest.raises(claims.ClaimFailed, match=r"per seed: 7, 1, 10"):
        claims.check(notebook, "gain_full_vs_scratch_nb100_min_seed", [7.0, 1.0, 10.0])


def test_a_single_run_claim_refuses_per_seed_values(build: Path):
    with pytest.raises(TypeError, match="one run"):
        claims.check("01_pretraining", "source_test_accuracy", [0.9, 0.8])
    with pytest.raises(ValueError, match="no per-seed values"):
        claims.check("03_last_layer_vs_full", "gain_full_vs_scratch_nb100", [])


def test_relative_claim_reads_the_recorded_reference(build: Path):
    notebook = "03_last_layer_vs_full"
    claims.check(notebook, "gain_full_vs_scratch_nb100", [8.0, 8.0, 8.0])
    assert claims.check(notebook, "gain_full_vs_scratch_nb1000", [2.0, 3.0, 1.0]) == 2.0
    with pytest.raises(claims.ClaimFailed) as failure:
        claims.check(notebook, "gain_full_vs_scratch_nb1000", 6.0)
    message = str(failure.value)
    assert "<= gain_full_vs_scratch_nb100 - 3 points" in message
    assert "gain_full_vs_scratch_nb100 = 8, so the bound is 5" in message


def test_relative_claim_accepts_its_reference_as_an_argument(build: Path):
    assert claims.check("04_wake_word", "eer_transfer", 0.1, reference=0.3) == 0.1
    with pytest.raises(claims.ClaimFailed, match="0.6 x eer_scratch"):
        claims.check("04_wake_word", "eer_transfer", 0.2, reference=0.3)


def test_missing_reference_is_a_clear_error(build: Path):
    with pytest.raises(claims.MissingReference, match="eer_scratch, which is not recorded"):
        claims.check("04_wake_word", "eer_transfer", 0.1)


def test_unknown_claim_lists_the_notebooks_claims(build: Path):
    with pytest.raises(claims.UnknownClaim, match="eer_transfer"):
        claims.check("04_wake_word", "eer_transfered", 0.1)
    assert not (build / "results.json").exists()


# --- status, report and the command line ------------------------------------------------------------

def test_status_and_report():
    data = {"04_wake_word": {"eer_transfer": 0.1, "eer_scratch": 0.3, "source_test_accuracy": 0.5}}
    state = {(c.notebook, c.figure): s for c, _, s in claims.report(data)}
    assert state["04_wake_word", "eer_transfer"] == "holds"
    assert state["04_wake_word", "source_test_accuracy"] == "fails"
    assert state["03_last_layer_vs_full", "gain_full_vs_scratch_nb100"] == "not measured"
    claim = claims.find("03_last_layer_vs_full", "gain_full_vs_scratch_nb1000")
    assert claims.status(claim, {"03_last_layer_vs_full": {"gain_full_vs_scratch_nb1000": 1.0}}) == "not measured"


def test_main_exits_1_when_a_recorded_claim_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"01_pretraining": {"source_test_accuracy": 0.9}}))
    assert claims.main([str(path)]) == 0
    assert "holds        01_pretraining.source_test_accuracy = 0.9  (want >= 0.8)" in capsys.readouterr().out
    path.write_text(json.dumps({"01_pretraining": {"source_test_accuracy": 0.7}}))
    assert claims.main([str(path)]) == 1
