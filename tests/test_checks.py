"""Exercise checks hold the expected values, and no check cell or message gives the answer away."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from helpers import advisor, checks
from helpers.authoring import course, notebooks

NOTEBOOKS = notebooks.course_notebooks()


def _normal(source: str) -> str:
    return re.sub(r"\s+", "", source)


def _computes(node: ast.AST) -> bool:
    """An expression that computes from names (not a constant prediction like 60.0 or {"edges"})."""
    return any(isinstance(n, ast.Name) for n in ast.walk(node)) and \
        any(isinstance(n, ast.BinOp | ast.Call | ast.Compare | ast.Subscript) for n in ast.walk(node))


def key_expressions(solution: str) -> set[str]:
    """What a solution computes: its returned and assigned expressions and their computing parts."""
    found = set()
    for node in ast.walk(ast.parse(solution)):
        value = getattr(node, "value", None) if isinstance(node, ast.Return | ast.Assign) else None
        if value is None:
            continue
        for part in ast.walk(value):
            if isinstance(part, ast.BinOp | ast.Call | ast.Compare) and _computes(part):
                found.add(_normal(ast.unparse(part)))
    return found


def is_check_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and "checks." in cell.source and "raise NotImplementedError" not in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_check_cells_of_the_student_edition_do_not_compute_the_answer(path: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path))
    course.write_student_editions([path])
    student = nbformat.read(tmp_path / "student" / path.name, as_version=4)
    original = nbformat.read(path, as_version=4)
    solutions = [c.source for c in original.cells if course.SOLUTION_TAG in c.metadata.get("tags", [])]
    keys = set().union(*(key_expressions(s) for s in solutions)) if solutions else set()
    for cell in filter(is_check_cell, student.cells):
        leaked = sorted(k for k in keys if k in _normal(cell.source))
        assert not leaked, f"{path.name}: a check cell computes what the solution computes: {leaked}"


def test_the_leak_finder_finds_the_old_leaks() -> None:
    old_solution = "# Solution\ndef best_task_a_size(grid):\n    return grid['n_a'][int(grid['gain'][:, 0].argmax())]"
    old_check = 'print(checks.check_number(best_task_a_size(grid), grid["n_a"][int(grid["gain"][:, 0].argmax())], "x"))'
    assert any(k in _normal(old_check.replace('"', "'")) for k in key_expressions(old_solution))
    assert key_expressions("def f():\n    return 60.0") == set()  # a prediction is not an answer


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2] in ("01", "02", "03", "04", "05", "06", "07")],
                         ids=lambda p: p.stem)
def test_every_lesson_has_a_predict_run_explain_exercise(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    sources = [c.source for c in nb.cells]
    assert any("checks.predict" in s for s in sources) and any("checks.compare" in s for s in sources), path.name
    assert any("**Explain.**" in s for s in sources), path.name


def _message(check, *args) -> str:  # noqa: ANN001
    with pytest.raises(checks.ExerciseError) as error:
        check(*args)
    return str(error.value)


def test_wrong_answers_get_a_hint_without_the_answer() -> None:
    assert "123" not in _message(checks.check_number, 100, 123.0, "x") and "too small" in _message(
        checks.check_number, 100, 123.0, "x")
    message = _message(checks.check_first_layer_weights, lambda w: w * 9 + w)
    assert "bias" in message and "72" not in message
    assert not {"72", "288", "432"} & set(re.findall(r"\d+", _message(checks.check_first_layer_weights,
                                                                      lambda w: w * 9 - 1)))
    message = _message(checks.check_head_parameters, lambda i, o: i * o)
    assert "forgot the bias" in message and "903" not in message
    assert "903" not in _message(checks.check_head_parameters, lambda i, o: i * o + o + 1)
    message = _message(checks.check_interpolation, lambda n, a, ga, b, gb: ga + (n - a) / (b - a) * (gb - ga))
    assert "log(N_B)" in message and "5.4" not in message
    message = _message(checks.check_fa_rate_bound, lambda hours: 1.0)
    assert "too small" in message and "11.98" not in message and "12" not in message
    scores = np.array([0.1, 0.4, 0.5, 0.9])
    for wrong in (lambda s, t: 0.75, lambda s, t: float(np.mean(s <= t)), lambda s, t: 0.9):
        message = _message(checks.check_frr, wrong, scores, 0.5)
        assert "0.5 " not in message.replace("0.5)", "") or "threshold" in message
        assert "0.50" not in message
    grid = {"n_a": [100, 3000, 90000], "n_b": [100, 1000], "gain": torch.tensor([[1.0, 0.0], [4.0, 1.0], [7.0, 0.5]])}
    message = _message(checks.check_best_task_a_size, lambda g: 3000, grid)
    assert "90000" not in message and "90,000" not in message
    wrong = advisor.transfer_checklist(advisor.Task("skin photos", "image", 200), advisor.Task("rare", "image", 200))
    message = _message(checks.check_skin_checklist, wrong)
    assert "250" not in message and "50,000" not in message


def test_right_answers_pass() -> None:
    assert checks.check_first_layer_weights(lambda w: w * 9).startswith("Correct")
    assert checks.check_head_parameters(lambda i, o: i * o + o).startswith("Correct")
    assert checks.check_frr(lambda s, t: float(np.mean(s < t)), [0.1, 0.5, 0.9], 0.5).startswith("Correct")
    assert checks.check_fa_rate_bound(lambda h: -np.log(0.05) / h).startswith("Correct")


def test_a_prediction_must_be_stated_and_possible_but_is_never_graded() -> None:
    with pytest.raises(checks.ExerciseError, match="replace the ..."):
        checks.predict(..., "the gain", -50, 50)
    with pytest.raises(checks.ExerciseError, match="outside what is possible"):
        checks.predict(120, "an accuracy", 0, 100, " %")
    with pytest.raises(checks.ExerciseError, match="expected a number"):
        checks.predict("six", "the gain", -50, 50)
    assert checks.predict(-49, "the gain", -50, 50) == -49.0
    said = checks.compare(5.0, 7.5, "gain", " points")
    assert "5 points" in said and "7.5 points" in said and "above your prediction" in said and "wrong" not in said
    assert "Noted" in checks.check_shared_features({"edges"})
    with pytest.raises(checks.ExerciseError, match="not in the list"):
        checks.check_shared_features({"edges", "wheels"})
