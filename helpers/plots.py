"""Figures of the course. Each function draws one kind of plot and returns its Figure."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor


def _show(ax: plt.Axes, image: Tensor) -> None:
    """One image [C, H, W] (1 channel: gray, 3: RGB; uint8 or float) on ``ax``."""
    image = image.detach().cpu().float()
    if image.shape[0] == 3:
        low, high = image.min(), image.max()
        ax.imshow(((image - low) / (high - low).clamp(min=1e-8)).permute(1, 2, 0))
    else:
        ax.imshow(image[0], cmap="gray")


def image_grid(X: Tensor, y: Tensor, class_names: Sequence[str], per_class: int = 6,
               max_classes: int | None = None) -> Figure:
    """A grid with one column per class and ``per_class`` examples in each."""
    classes = list(range(len(class_names)))[:max_classes]
    fig, axes = plt.subplots(per_class, len(classes), figsize=(0.9 * len(classes) + 0.5, 0.9 * per_class + 0.6),
                             squeeze=False)
    for col, label in enumerate(classes):
        picks = torch.nonzero(y == label)[:per_class, 0]
        for row in range(per_class):
            ax = axes[row][col]
            ax.axis("off")
            if row < len(picks):
                _show(ax, X[picks[row]])
        axes[0][col].set_title(class_names[label], fontsize=7, rotation=45 if len(classes) > 8 else 0)
    fig.tight_layout()
    return fig


def training_curves(train_loss: Sequence[float], title: str = "training loss") -> Figure:
    """Training loss per epoch."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(range(1, len(train_loss) + 1), train_loss, marker="o")
    ax.set(xlabel="epoch", ylabel="cross-entropy", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def filters(weights: Tensor, title: str, ax: plt.Axes | None = None) -> Figure:
    """First-layer conv filters [out, 1, k, k] as a row-major grid of small images."""
    weights = weights.detach().cpu()[:, 0]
    cols = 8
    rows = -(-len(weights) // cols)
    canvas = torch.full((rows * 4, cols * 4), float("nan"))
    for i, w in enumerate(weights):
        w = (w - w.mean()) / (w.abs().max() + 1e-8)
        r, c = divmod(i, cols)
        canvas[r * 4:r * 4 + 3, c * 4:c * 4 + 3] = w
    fig = ax.figure if ax is not None else plt.figure(figsize=(3.2, 0.4 * rows + 0.6))
    ax = ax or fig.add_subplot()
    ax.imshow(canvas, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return fig


def feature_maps(image: Tensor, maps: Tensor, title: str, count: int = 8) -> Figure:
    """An input image beside the ``count`` most active feature maps [C, H, W] it produces."""
    strongest = maps.flatten(1).abs().mean(1).argsort(descending=True)[:count]
    fig, axes = plt.subplots(1, count + 1, figsize=(1.3 * (count + 1), 1.6))
    axes[0].imshow(image[0], cmap="gray")
    axes[0].set_title("input", fontsize=8)
    for ax, channel in zip(axes[1:], strongest.tolist()):
        ax.imshow(maps[channel], cmap="magma")
        ax.set_title(f"map {channel}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _mean_std(values: Tensor) -> tuple[float, float]:
    return values.mean().item(), (values.std().item() if len(values) > 1 else 0.0)


def accuracy_vs_size(table: dict[str, dict[int, Tensor]], ax: plt.Axes | None = None, seeds: bool = False) -> Figure:
    """Accuracy (mean ± std over seeds, as a band) against N_B, one line per strategy; with
    ``seeds``, every seed's accuracy as a dot too."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.5, 3.6))
    ax = ax or fig.add_subplot()
    for strategy, by_size in table.items():
        sizes = sorted(by_size)
        stats = [_mean_std(by_size[n] * 100) for n in sizes]
        means = [m for m, _ in stats]
        line, = ax.plot(sizes, means, marker="o", label=strategy)
        ax.fill_between(sizes, [m - s for m, s in stats], [m + s for m, s in stats], alpha=0.2)
        if seeds:
            for n in sizes:
                values = (by_size[n] * 100).tolist()
                ax.scatter([n] * len(values), values, s=10, color=line.get_color(), alpha=0.6, zorder=3)
    ax.set(xscale="log", xlabel="task-B training examples N_B", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gain_vs_size(gains: dict[int, Tensor], ax: plt.Axes | None = None) -> Figure:
    """Transfer gain (points) against N_B: per-seed dots and the mean line."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 3.4))
    ax = ax or fig.add_subplot()
    sizes = sorted(gains)
    ax.plot(sizes, [gains[n].mean().item() for n in sizes], marker="o", color="C1", label="mean over seeds")
    for n in sizes:
        ax.scatter([n] * len(gains[n]), gains[n], color="C1", alpha=0.4, s=14)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="task-B training examples N_B", ylabel="gain over scratch (points)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_curves(curves: dict[str, Tensor], reference: float | None = None, ax: plt.Axes | None = None) -> Figure:
    """Test accuracy after each epoch, one line per strategy: the mean over seeds with a band
    (min to max over seeds). ``curves``: strategy -> [seeds, epochs]; ``reference``: a dashed level."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(6, 3.4))
    ax = ax or fig.add_subplot()
    for k, (name, values) in enumerate(curves.items()):
        epochs = torch.arange(1, values.shape[1] + 1)
        ax.plot(epochs, values.mean(0) * 100, color=f"C{k}", label=f"{name} (mean over seeds)")
        ax.fill_between(epochs, values.amin(0) * 100, values.amax(0) * 100, color=f"C{k}", alpha=0.2)
    if reference is not None:
        ax.axhline(reference * 100, color="k", ls="--", lw=0.8, label="scratch's final accuracy")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cost_bars(names: Sequence[str], seconds: Sequence[float], params: Sequence[int]) -> Figure:
    """Training seconds and trainable parameters per strategy, side by side."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 2.8))
    left.barh(names, seconds, color="C0")
    left.set(xlabel="seconds per run (mean)", title="cost in time")
    right.barh(names, params, color="C2")
    right.set(xlabel="trainable parameters", xscale="log", title="cost in parameters")
    fig.tight_layout()
    return fig


def heatmap(values: Tensor, rows: Sequence[int], cols: Sequence[int], row_label: str, col_label: str,
            title: str, marks: dict[tuple[int, int], str] | None = None) -> Figure:
    """A grid of numbers (e.g. transfer gain over N_A x N_B) with the values written in the cells."""
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2, 0.9 * len(rows) + 1.4))
    limit = max(values.abs().max().item(), 1e-6)
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower")
    for (i, j), value in zip([(i, j) for i in range(len(rows)) for j in range(len(cols))], values.flatten()):
        label = f"{value:+.1f}" + (f"\n{marks[(rows[i], cols[j])]}" if marks and (rows[i], cols[j]) in marks else "")
        ax.text(j, i, label, ha="center", va="center", fontsize=8)
    ax.set(xticks=range(len(cols)), xticklabels=cols, yticks=range(len(rows)), yticklabels=rows,
           xlabel=col_label, ylabel=row_label, title=title)
    fig.colorbar(image, ax=ax, label="points")
    fig.tight_layout()
    return fig


def confusion_matrix(y_true: Tensor, y_pred: Tensor, class_names: Sequence[str],
                     title: str = "confusion matrix (test split)") -> Figure:
    """Counts of (true class, predicted class); the diagonal is what was right."""
    k = len(class_names)
    counts = torch.bincount(y_true.cpu() * k + y_pred.cpu(), minlength=k * k).view(k, k)
    fig, ax = plt.subplots(figsize=(0.55 * k + 2.2, 0.55 * k + 1.6))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j].item()), ha="center", va="center", fontsize=8,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def confident_mistakes(X: Tensor, y_true: Tensor, probs: Tensor, class_names: Sequence[str],
                       count: int = 8) -> Figure:
    """The ``count`` wrong predictions the model was surest of, with what it said and the truth."""
    predicted = probs.argmax(1)
    wrong = torch.nonzero(predicted != y_true).flatten()
    order = wrong[probs[wrong, predicted[wrong]].argsort(descending=True)][:count]
    fig, axes = plt.subplots(1, max(len(order), 1), figsize=(1.6 * max(len(order), 1), 2.1), squeeze=False)
    for ax in axes[0]:
        ax.axis("off")
    for ax, i in zip(axes[0], order.tolist(), strict=False):
        _show(ax, X[i])
        ax.set_title(f"said {class_names[predicted[i]]}\n({probs[i, predicted[i]]:.0%})\nis {class_names[y_true[i]]}",
                     fontsize=7)
    if not len(order):
        axes[0][0].set_title("no mistakes on this split", fontsize=8)
    fig.tight_layout()
    return fig


def stage_curves(head_val: Sequence[float], tune_val: Sequence[float]) -> Figure:
    """Validation accuracy per epoch over the two stages of fine-tuning (head only, then all layers)."""
    fig, ax = plt.subplots(figsize=(5.5, 3))
    first = range(1, len(head_val) + 1)
    second = range(len(head_val) + 1, len(head_val) + len(tune_val) + 1)
    ax.plot(first, [100 * v for v in head_val], label="stage 1: head only (frozen backbone)")
    ax.plot(second, [100 * v for v in tune_val], label="stage 2: all layers (augmented)")
    best = max([*head_val, *tune_val])
    ax.axhline(100 * best, color="gray", lw=0.8, ls=":", label=f"best: {best:.1%}")
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title="the epoch is picked on the validation split")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def spectrograms(panels: Sequence[tuple[Tensor, str]]) -> Figure:
    """Log-mel spectrograms side by side (time to the right, low mel bands at the bottom)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.5 * len(panels), 2.8), squeeze=False)
    for ax, (image, title) in zip(axes[0], panels, strict=True):
        ax.imshow(image, origin="lower", aspect="auto", cmap="magma")
        ax.set(title=title, xlabel="frame (10 ms)", ylabel="mel band")
    fig.tight_layout()
    return fig


def det_curves(curves: dict[str, tuple[Tensor, Tensor, float]], title: str = "DET curves") -> Figure:
    """False rejects against false accepts (log scale) per arm, with each arm's EER in the legend."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (far, frr, eer) in curves.items():
        ax.plot(far * 100, frr * 100, label=f"{name} (EER {eer:.2f})")
    ax.plot([0, 100], [0, 100], "k:", lw=0.8, label="false accepts = false rejects")
    ax.set(xscale="log", xlim=(0.5, 100), ylim=(0, 100), xlabel="false accepts (% of other clips)",
           ylabel="false rejects (% of wake words)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def live_demo(demo: dict, said_for_s: float = 1.0) -> Figure:
    """A detector's score over a recording, when the phrase was said, its thresholds and detections
    (``demo``: what ``wakeword.live_demo`` returns)."""
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.plot(demo["times"], demo["scores"], lw=0.8, label="score (log-odds of the wake word, end of window)")
    for k, onset in enumerate(demo["said"]):
        ax.axvspan(onset, onset + said_for_s, color="tab:green", alpha=0.2, label="wake word said" if k == 0 else None)
    for (name, value), colour in zip(demo["thresholds"].items(), ("tab:red", "tab:orange"), strict=False):
        ax.axhline(value, color=colour, ls="--", lw=0.8, label=f"threshold ({name})")
        for k, t in enumerate(demo["fired"][name]):
            ax.axvline(t, color=colour, lw=1.5, label=f"detection ({name})" if k == 0 else None)
    ax.set(xlabel="time (s)", ylabel="score", xlim=(0, float(demo["times"][-1])))
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    return fig


def frr_vs_data(positives: Sequence[int], hours: Sequence[float], frr: dict[str, Sequence[float]],
                frr_5: dict[str, Sequence[float]] | None = None) -> Figure:
    """False-reject rate at 1 FA/h (solid; at 5 FA/h dashed, when given) per start as the training
    data grow (positives and negative hours together)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (name, values) in enumerate(frr.items()):
        colour = f"C{k}"
        ax.plot(positives, values, "o-", color=colour, label=f"{name}, 1 FA/h")
        if frr_5 is not None and name in frr_5:
            ax.plot(positives, frr_5[name], "o--", color=colour, alpha=0.7, label=f"{name}, 5 FA/h")
    ax.set(xscale="log", ylim=(0, 1), xlabel="positive clips (with the negative hours below each)",
           ylabel="false-reject rate", title="more synthetic data")
    ax.set_xticks(list(positives), [f"{n:,}\n{h:g} h" for n, h in zip(positives, hours, strict=True)])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
