"""Workshop editions (`make student`) and the course site (`make site`)."""
import json
import os
import subprocess
import sys

import nbformat
import pytest

from helpers import claims, config
from helpers.authoring import course, notebooks, site

NOTEBOOKS = notebooks.course_notebooks()


def solution_sources(nb):
    return [c.source for c in nb.cells if course.SOLUTION_TAG in c.metadata.get("tags", [])]


def test_every_exercise_has_a_tagged_solution_and_a_stub():
    with_exercises = 0
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        untagged = [notebooks.first_source_line(c) for c in notebooks.code_cells(nb)
                    if notebooks.first_source_line(c).startswith("# Solution")
                    and course.SOLUTION_TAG not in c.metadata.get("tags", [])]
        assert not untagged, f"{path.name}: solution cells without the tag"
        stubs = [c for c in notebooks.code_cells(nb) if "raise NotImplementedError" in c.source]
        assert len(stubs) == len(solution_sources(nb)), path.name
        with_exercises += bool(stubs)
    assert with_exercises >= 5


def test_student_editions_hold_no_solution_code(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path))
    written = course.write_student_editions(NOTEBOOKS)
    assert (tmp_path / "student" / course.INSTRUCTOR_GUIDE).exists()
    for path in NOTEBOOKS:
        original = nbformat.read(path, as_version=4)
        student = nbformat.read(tmp_path / "student" / path.name, as_version=4)
        text = "\n".join(c.source for c in student.cells)
        for solution in solution_sources(original):
            body = solution.split("\n", 1)[1].strip()  # without the "# Solution" line
            assert body not in text, f"{path.name} leaks a solution"
        assert len(student.cells) == len(original.cells) - len(solution_sources(original))
        assert all(not c.get("outputs") for c in notebooks.code_cells(student))
    assert len(written) == len(NOTEBOOKS) + 1


def test_an_untagged_solution_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# Solution\nx = 1")])
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(course.NotebookError, match="tag it"):
        course.write_student_editions([path])


def test_instructor_guide_gets_the_measured_times(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path))
    (tmp_path / "timings.json").write_text(json.dumps({"profile": "quick", "seconds": {"01_pretraining": 4.2}}))
    course.write_student_editions(NOTEBOOKS[:1])
    guide = (tmp_path / "student" / course.INSTRUCTOR_GUIDE).read_text()
    assert "| 01_pretraining | 4 s |" in guide and "profile quick" in guide


def test_site_index_shows_lessons_claims_and_pages(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path))
    pages = tmp_path / "html"
    pages.mkdir()
    (pages / "01_pretraining.html").write_text("<html><body class='x'><p>lesson</p></body></html>")
    (tmp_path / "results.json").write_text(json.dumps({
        "01_pretraining": {"source_test_accuracy": 0.85},
        "03_last_layer_vs_full": {"gain_full_vs_scratch_nb100": 2.0}}))
    index = site.build_site(NOTEBOOKS)
    text = index.read_text()
    for path in NOTEBOOKS:
        assert site.notebook_title(path)[0].split("·")[-1].strip()[:20] in text
    assert 'href="01_pretraining.html"' in text and "not run yet" in text
    assert "<td class='holds'>holds</td>" in text and "<td class='fails'>fails</td>" in text
    assert "not measured" in text
    page = (pages / "01_pretraining.html").read_text()
    assert page.count("index.html") == 1
    assert not site.add_navigation(pages / "01_pretraining.html")  # idempotent


@pytest.mark.parametrize(("recorded", "environment", "says"), [
    ("real", "synthetic", "real</b> data sets"),  # what the run recorded wins over today's TL_DATA
    ("synthetic", "real", "generated locally"),
    (None, "real", "real</b> data sets"),  # a run from before the source was recorded: TL_DATA
])
def test_site_names_the_data_source_of_the_run(tmp_path, monkeypatch, recorded, environment, says):
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("TL_DATA", environment)
    timings = {"profile": "quick", "seconds": {}} | ({"data": recorded} if recorded else {})
    (tmp_path / "timings.json").write_text(json.dumps(timings))
    text = site.build_site(NOTEBOOKS[:1]).read_text()
    assert says in text
    assert ("generated locally" in text) == (says == "generated locally")


def test_run_records_the_data_source_for_the_site(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("TL_DATA", "real")
    monkeypatch.setattr(course, "execute_notebook", lambda path, profile, timeout, threads=None, wait=None: 1.5)
    course.run_course(NOTEBOOKS[:1], "quick", timeout=10)
    assert notebooks.load_timings() == {"profile": "quick", "data": "real", "seconds": {NOTEBOOKS[0].stem: 1.5}}


def test_claims_relative_bar_needs_its_reference():
    data = {"04_wake_word": {"eer_transfer": 0.1}}
    claim = next(c for c in claims.CLAIMS if c.figure == "eer_transfer")
    assert claims.status(claim, data) == "not measured"
    assert claims.status(claim, {"04_wake_word": {"eer_transfer": 0.1, "eer_scratch": 0.3}}) == "holds"
    assert claims.status(claim, {"04_wake_word": {"eer_transfer": 0.2, "eer_scratch": 0.3}}) == "fails"


@pytest.mark.needs_data
def test_student_notebook_stops_at_the_first_exercise(tmp_path):
    """Executed top to bottom, a student edition stops at its first exercise, with the stub's message."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    student = course.student_edition(nbformat.read(config.REPO_ROOT / "notebooks/01_pretraining.ipynb",
                                                   as_version=4))
    client = NotebookClient(student, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as error:
        client.execute(env={**os.environ, "TL_PROFILE": "quick", "TL_BUILD_DIR": str(tmp_path / "build")})
    assert error.value.ename == "NotImplementedError"
    assert "Exercise 1" in error.value.evalue


def test_make_student_and_site_commands(tmp_path):
    env = {**os.environ, "TL_BUILD_DIR": str(tmp_path)}
    for command in ("student", "site"):
        done = subprocess.run([sys.executable, "-m", "helpers.authoring.course", command], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "html" / "index.html").exists() and (tmp_path / "student" / "05_reversed_sizes.ipynb").exists()


def test_site_renders_the_inline_markdown_of_the_course_map():
    rendered = site._markdown_inline("a *lot* of **data**, `make run`, [03](03_last_layer_vs_full.ipynb), 2 * 3")
    assert rendered == ('a <i>lot</i> of <b>data</b>, <code>make run</code>, '
                        '<a href="03_last_layer_vs_full.html">03</a>, 2 * 3')
    assert "*" not in site._markdown_inline("**01** *the idea*") and "&lt;b&gt;" in site._markdown_inline("<b>")


def test_explorer_says_what_each_strategy_costs():
    from helpers import widgets

    rows = [{"strategy": s, "n_b": 100, "seed": seed, "accuracy": 0.5 + 0.1 * seed, "seconds": 2.0,
             "trainable_params": p} for s, p in (("scratch", 1000), ("last layer", 10)) for seed in (0, 1)]
    text = widgets.describe_size(rows, ("scratch", "last layer"), 100)
    assert "N_B = 100" in text and "1,000 parameters" in text and "2.0 s a run" in text and "60.0" in text


def test_explorer_switches_between_the_far_and_the_near_task():
    import matplotlib

    matplotlib.use("Agg")
    from helpers import experiments, widgets

    def rows_for(sizes):
        return [{"strategy": s, "n_b": n, "seed": seed, "accuracy": 0.5, "seconds": 1.0, "trainable_params": 10}
                for s in experiments.STRATEGIES for n in sizes for seed in (0, 1)]

    box = widgets.sweep_explorer(rows_for((50, 100, 1000)), rows_for((12, 60, 1200)))
    task_picker, (_, size_picker) = box.children[0], box.children[1].children
    assert size_picker.value == 100
    task_picker.value = task_picker.options[1]
    assert list(size_picker.options) == [12, 60, 1200] and size_picker.value == 60
