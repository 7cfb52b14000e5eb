"""The course's claims: each measured figure in build/results.json with the bar it must clear.

The notebooks assert these (with the seeds of the profile); this table lets the site and the
command line show every figure beside its bar::

    python -m helpers.claims [build/results.json]   # exit 1 when a recorded claim fails
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers import results

Figures = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Claim:
    """One figure and its bar: ``test(value, all_figures)`` says whether it holds."""

    notebook: str
    figure: str
    bar: str  # the bar in words, as the table shows it
    test: Callable[[float, Figures], bool]
    meaning: str  # what the figure is, in a few words


def figure(data: Figures, notebook: str, name: str) -> float | None:
    """A recorded figure, or None when it was not recorded (yet)."""
    return data.get(notebook, {}).get(name)


def _relative(notebook: str, other: str, check: Callable[[float, float], bool]) -> Callable[[float, Figures], bool]:
    def test(value: float, data: Figures) -> bool:
        reference = figure(data, notebook, other)
        if reference is None:
            raise LookupError(f"{notebook}.{other} is not recorded")
        return check(value, reference)
    return test


CLAIMS: tuple[Claim, ...] = (
    Claim("01_pretraining", "source_test_accuracy", ">= 0.80", lambda v, _: v >= 0.80,
          "the image recognizer's accuracy on task A's test set"),
    Claim("03_last_layer_vs_full", "gain_full_vs_scratch_nb100", ">= +6 points", lambda v, _: v >= 6.0,
          "pre-training + fine-tuning all layers minus scratch, N_B = 100 (mean of seeds)"),
    Claim("03_last_layer_vs_full", "gain_full_vs_scratch_nb100_min_seed", ">= +3 points", lambda v, _: v >= 3.0,
          "the same gain on its worst seed"),
    Claim("03_last_layer_vs_full", "gain_full_vs_scratch_nb1000", "< the gain at N_B = 100",
          _relative("03_last_layer_vs_full", "gain_full_vs_scratch_nb100", lambda v, ref: v < ref),
          "the gain with ten times more X-rays"),
    Claim("03_last_layer_vs_full", "last_block_minus_scratch_nb50", ">= 0 points", lambda v, _: v >= 0.0,
          "retraining only the last block + head minus scratch, N_B = 50"),
    Claim("04_wake_word", "source_test_accuracy", ">= 0.70", lambda v, _: v >= 0.70,
          "the speech recognizer's accuracy on held-out voices"),
    Claim("04_wake_word", "eer_transfer", "<= 0.6 x eer_scratch",
          _relative("04_wake_word", "eer_scratch", lambda v, ref: v <= 0.6 * ref),
          "the wake-word detector's equal error rate, transferred"),
    Claim("05_reversed_sizes", "image_gain_reversed", "|x| <= 2.5 points", lambda v, _: abs(v) <= 2.5,
          "images: gain from 100 task-A images at N_B = 1,000"),
    Claim("05_reversed_sizes", "speech_gain_reversed", "|x| <= 3 points", lambda v, _: abs(v) <= 3.0,
          "speech: EER gain from a tiny recognizer, 5x the positives"),
)


def status(claim: Claim, data: Figures) -> str:
    """'holds', 'fails' or 'not measured' (the figure, or one it compares with, is missing)."""
    value = figure(data, claim.notebook, claim.figure)
    if value is None:
        return "not measured"
    try:
        return "holds" if claim.test(value, data) else "fails"
    except LookupError:
        return "not measured"


def report(data: Figures) -> list[tuple[Claim, float | None, str]]:
    """Every claim with its value (None when missing) and status."""
    return [(claim, figure(data, claim.notebook, claim.figure), status(claim, data)) for claim in CLAIMS]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    data = results.load_results(Path(argv[0]) if argv else None)
    failed = False
    for claim, value, state in report(data):
        shown = "-" if value is None else f"{value:.4g}"
        print(f"{state:12s} {claim.notebook}.{claim.figure} = {shown}  (want {claim.bar})")
        failed |= state == "fails"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
