"""Interactive explorers: they redraw figures from cached results and never retrain."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from helpers import experiments, plots


def sweep_explorer(rows: list[dict]) -> widgets.VBox:
    """Pick strategies and a target size N_B; see accuracy curves and that size's numbers."""
    sizes = sorted({row["n_b"] for row in rows})
    strategy_picker = widgets.SelectMultiple(options=experiments.STRATEGIES, value=experiments.STRATEGIES,
                                             description="strategies")
    size_picker = widgets.SelectionSlider(options=sizes, value=sizes[len(sizes) // 2], description="N_B")
    output = widgets.Output()

    def redraw(_change: object = None) -> None:
        with output:
            output.clear_output(wait=True)
            table = {s: {n: experiments.accuracies(rows, s, n) for n in sizes} for s in strategy_picker.value}
            fig = plots.accuracy_vs_size(table)
            fig.axes[0].axvline(size_picker.value, color="grey", ls="--")
            plt.show()
            for strategy in strategy_picker.value:
                acc = table[strategy][size_picker.value] * 100
                print(f"N_B={size_picker.value:>5}  {strategy:11s} {acc.mean():5.1f} ± {acc.std():.1f} %  "
                      f"(seeds: {', '.join(f'{a:.1f}' for a in acc.tolist())})")

    strategy_picker.observe(redraw, names="value")
    size_picker.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([strategy_picker, size_picker]), output])
    display(box)
    return box
