"""Interactive explorers: they redraw figures from cached results and never retrain."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from helpers import experiments, plots


def describe_size(rows: list[dict], strategies: tuple[str, ...], n_b: int) -> str:
    """At one N_B: accuracy (mean ± std and every seed) and the cost of each strategy (what it trains,
    seconds per run) — the numbers the figure does not show."""
    lines = [f"N_B = {n_b:,}"]
    for strategy in strategies:
        picked = [r for r in rows if r["strategy"] == strategy and r["n_b"] == n_b]
        acc = experiments.accuracies(rows, strategy, n_b) * 100
        seconds = sum(r["seconds"] for r in picked) / len(picked)
        params = picked[0]["trainable_params"]
        lines.append(f"  {strategy:11s} {acc.mean():5.1f} ± {acc.std():4.1f} %  (seeds: "
                     f"{', '.join(f'{a:.1f}' for a in acc.tolist())})   trains {params:>9,} parameters, "
                     f"{seconds:5.1f} s a run")
    return "\n".join(lines)


def sweep_explorer(rows: list[dict], near_rows: list[dict] | None = None) -> widgets.VBox:
    """Pick the task (the far X-rays, or the near task), strategies and a target size N_B: the
    accuracy curves with every seed as a dot, and at that size what each strategy trains and costs."""
    tasks = {"X-rays (far from task A)": rows}
    if near_rows:
        tasks["near task (new objects)"] = near_rows
    task_picker = widgets.ToggleButtons(options=list(tasks), description="task")
    strategy_picker = widgets.SelectMultiple(options=experiments.STRATEGIES, value=experiments.STRATEGIES,
                                             description="strategies")
    size_picker = widgets.SelectionSlider(options=[0], description="N_B")
    output = widgets.Output()

    def sizes_of(task_rows: list[dict]) -> list[int]:
        return sorted({row["n_b"] for row in task_rows})

    switching = [False]  # True while the slider's options change with the task: redraw once, after

    def redraw(_change: object = None) -> None:
        if switching[0]:
            return
        task_rows = tasks[task_picker.value]
        with output:
            output.clear_output(wait=True)
            strategies = tuple(strategy_picker.value)
            table = {s: {n: experiments.accuracies(task_rows, s, n) for n in sizes_of(task_rows)} for s in strategies}
            fig = plots.accuracy_vs_size(table, seeds=True)
            fig.axes[0].axvline(size_picker.value, color="grey", ls="--")
            fig.axes[0].set_title(task_picker.value, fontsize=9)
            plt.show()
            print(describe_size(task_rows, strategies, size_picker.value))

    def new_task(_change: object = None) -> None:
        sizes = sizes_of(tasks[task_picker.value])
        switching[0] = True
        try:
            size_picker.options = sizes
            size_picker.value = sizes[len(sizes) // 2]
        finally:
            switching[0] = False
        redraw()

    strategy_picker.observe(redraw, names="value")
    size_picker.observe(redraw, names="value")
    task_picker.observe(new_task, names="value")
    new_task()
    box = widgets.VBox([task_picker, widgets.HBox([strategy_picker, size_picker]), output])
    display(box)
    return box
