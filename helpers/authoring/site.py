"""The executed course as a static site: build/html/index.html and one page per notebook.

``python -m helpers.authoring.course run`` writes each executed notebook's page
(build/html/NN_*.html, plots and audio players embedded); :func:`build_site` adds the index: the
course map, which data the run used, the results table from build/results.json with every
claim's bar and whether it held, the run times, and the real-browser snapshot of the widget when
``make test`` took one. Every page opens from the file system; no server is needed. ``make site``
(or ``make run``) builds it.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import nbformat

from helpers import claims, config, results
from helpers.authoring.notebooks import course_notebooks, load_timings
from helpers.data.sources import data_source

NAV_MARK = "<!-- tl-course-nav -->"
DATA_SOURCES = {  # what the index says about the data, by the TL_DATA the run used
    "synthetic": "The data are generated locally (<code>TL_DATA=synthetic</code>): the images of task A "
                 "are procedural objects and the X-rays of task B are <b>simulated</b> chest radiographs; "
                 "the speech is synthesised.",
    "real": "The data are the <b>real</b> data sets fetched by <code>data_scripts/fetch_real.py</code> "
            "(<code>TL_DATA=real</code>): CIFAR-10 in grayscale for task A, PneumoniaMNIST chest X-rays "
            "for task B, Google Speech Commands v2 for the speech lessons.",
}
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ccc; padding: .3rem .6rem; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.holds { color: #176317; font-weight: bold; } .fails { color: #a11; font-weight: bold; } .missing { color: #777; }
img.snapshot { max-width: 100%; border: 1px solid #ccc; } .small { color: #555; font-size: .9em; }
"""


def notebook_title(path: Path) -> tuple[str, str]:
    """(title, first paragraph) of a notebook: its first heading and the text under it."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        if lines and lines[0].startswith("#"):
            paragraph = []
            for line in lines[1:]:
                if not line.strip() and paragraph:
                    break
                if line.strip():
                    paragraph.append(line.strip())
            return lines[0].lstrip("# ").strip(), " ".join(paragraph)
    return path.stem, ""


def _markdown_inline(text: str) -> str:
    """Escape, then render the inline markdown of the notebooks' intro paragraphs: **bold**,
    *italic*, `code` and [links](NN_name.ipynb) (to the lesson's page)."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+?)(?:\.ipynb)?\)",
                  lambda m: f'<a href="{m.group(2)}{".html" if not m.group(2).startswith("http") else ""}">'
                            f"{m.group(1)}</a>", out)


def _course_map(notebooks: list[Path], pages: Path, timings: dict[str, float]) -> str:
    rows = []
    for path in notebooks:
        title, intro = notebook_title(path)
        page = pages / f"{path.stem}.html"
        link = (f'<a href="{page.name}">{html.escape(title)}</a>' if page.exists()
                else f"{html.escape(title)} <span class='missing'>(not run yet: make run)</span>")
        seconds = timings.get(path.stem)
        time_cell = "" if seconds is None else f"{seconds:.0f} s"
        rows.append(f"<tr><td>{link}<div class='small'>{_markdown_inline(intro)}</div></td>"
                    f"<td class='num'>{time_cell}</td></tr>")
    return "<table><tr><th>Lesson</th><th>Run time</th></tr>" + "".join(rows) + "</table>"


def _claims_table(data: claims.Figures) -> str:
    rows = []
    for claim, value, state in claims.report(data):
        css = {"holds": "holds", "fails": "fails"}.get(state, "missing")
        shown = "—" if value is None else f"{value:.4g}"
        rows.append(f"<tr><td>{html.escape(claim.notebook)}</td><td><code>{html.escape(claim.figure)}</code>"
                    f"<div class='small'>{html.escape(claim.meaning)}</div></td><td class='num'>{shown}</td>"
                    f"<td>{html.escape(claim.bar)}</td><td class='{css}'>{state}</td></tr>")
    return ("<table><tr><th>Notebook</th><th>Figure</th><th>Measured</th><th>Bar</th><th>Result</th></tr>"
            + "".join(rows) + "</table>")


def _figures_table(data: claims.Figures) -> str:
    rows = [f"<tr><td>{html.escape(nb)}</td><td><code>{html.escape(name)}</code></td>"
            f"<td class='num'>{value:.4g}</td></tr>"
            for nb in sorted(data) for name, value in sorted(data[nb].items())]
    if not rows:
        return "<p class='missing'>No figures recorded yet: run <code>make run</code>.</p>"
    return "<table><tr><th>Notebook</th><th>Figure</th><th>Value</th></tr>" + "".join(rows) + "</table>"


def _snapshots(build: Path) -> str:
    shots = sorted((build / "browser").glob("*.png"))
    if not shots:
        return "<p class='missing'>No browser snapshot yet: <code>make test</code> takes one.</p>"
    parts = []
    for shot in shots:
        encoded = base64.b64encode(shot.read_bytes()).decode("ascii")
        parts.append(f"<figure><img class='snapshot' alt='{html.escape(shot.stem)}' "
                     f"src='data:image/png;base64,{encoded}'><figcaption class='small'>{html.escape(shot.name)}: "
                     "JupyterLab in Chromium after running every cell</figcaption></figure>")
    return "".join(parts)


def add_navigation(page: Path) -> bool:
    """Give a notebook page a link back to the index (once); True when the page changed."""
    text = page.read_text(encoding="utf-8")
    if NAV_MARK in text or "<body" not in text:
        return False
    head, body = text.split("<body", 1)
    tag_end = body.index(">") + 1
    nav = (f"{NAV_MARK}<div style='font-family:system-ui,sans-serif;padding:.5rem 1rem;background:#f3f3f3'>"
           "<a href='index.html'>← Transfer learning, hands-on: all lessons and results</a></div>")
    results.atomic_write_text(page, head + "<body" + body[:tag_end] + nav + body[tag_end:])
    return True


def build_site(notebooks: list[Path] | None = None) -> Path:
    """Write build/html/index.html (and navigation on every page); return its path."""
    build = config.build_dir()
    pages = build / "html"
    pages.mkdir(parents=True, exist_ok=True)
    notebooks = notebooks if notebooks is not None else course_notebooks()
    data = results.load_results()
    timing_data = load_timings()
    timings, profile = timing_data.get("seconds", {}), timing_data.get("profile", "?")
    # the source the last run recorded; a run from before it was recorded: today's $TL_DATA
    source = timing_data.get("data") or data_source()
    for path in notebooks:
        page = pages / f"{path.stem}.html"
        if page.exists():
            add_navigation(page)
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Transfer learning, hands-on</title>
<style>{STYLE}</style></head><body>
<h1>Transfer learning, hands-on</h1>
<p>The course's notebooks as they ran last (profile <b>{html.escape(str(profile))}</b>), with every
figure they measured. {DATA_SOURCES.get(source, html.escape(str(source)))}</p>
<h2>Course map</h2>{_course_map(notebooks, pages, timings)}
<h2>Claims and results</h2>
<p>Each notebook asserts its claims over several seeds; here is every claim with its bar.</p>
{_claims_table(data)}
<h2>Widget snapshot</h2>{_snapshots(build)}
<h2>Every recorded figure</h2>{_figures_table(data)}
<p class="small">Built by <code>make site</code> from build/results.json and build/html/.</p>
</body></html>
"""
    index = pages / "index.html"
    results.atomic_write_text(index, body)
    return index
