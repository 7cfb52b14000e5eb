"""Training recipes of the experiments (frozen, typed, units in comments) and their cache keys.

A recipe is everything about *how* a network is trained; a data spec (helpers.data.sources) is
everything about *what* it is trained on. Every cached experiment is keyed by
:func:`experiment_key` — the data's keys plus the recipes plus the few settings of the run — so
nothing that changes a result can be left out of its key, and nothing is keyed by hand.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class _Optimised:
    """What every recipe with ``lr``, ``weight_decay`` and ``batch_size`` hands to ``train.fit``."""

    lr: float
    weight_decay: float
    batch_size: int

    def optimiser(self) -> dict[str, float | int]:
        """The keyword arguments of ``train.fit`` that this recipe sets."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "batch_size": self.batch_size}


@dataclass(frozen=True)
class PretrainRecipe(_Optimised):
    """Pre-training an image recognizer on task A."""

    lr: float = 2e-3  # peak learning rate of the one-cycle schedule (AdamW)
    weight_decay: float = 5e-4
    batch_size: int = 128  # examples per step
    # Task A is augmented as pre-training on photos is: a random shift and mirror image (task A's
    # classes keep their label under both). Fine-tuning and scratch are not augmented.
    max_shift: int = 4  # pixels, each direction
    flip: bool = True  # mirror left-right with probability 1/2
    min_samples: int = 40_000  # examples shown at least: a small task A trains for more epochs

    def epochs_for(self, n_examples: int, profile_epochs: int) -> int:
        """The profile's epochs, or more when ``n_examples`` is small (at least min_samples shown)."""
        return max(profile_epochs, -(-self.min_samples // n_examples))


@dataclass(frozen=True)
class FineTuneRecipe(_Optimised):
    """Training on a target task, the same for every strategy (scratch included)."""

    lr: float = 2e-3  # peak learning rate of the one-cycle schedule (AdamW)
    weight_decay: float = 5e-4
    batch_size: int = 32  # examples per step
    min_samples: int = 4_000  # examples shown in total, at least (small N: many epochs) ...
    max_samples: int = 20_000  # ... and at most (large N: fewer epochs)
    samples_per_example: int = 40  # otherwise 40 epochs

    def epochs_for(self, n_examples: int) -> int:
        """Epochs so that a run sees samples_per_example x N examples, clipped to [min, max] samples."""
        samples = min(max(n_examples * self.samples_per_example, self.min_samples), self.max_samples)
        return max(1, -(-samples // n_examples))


@dataclass(frozen=True)
class RecognizerRecipe:
    """Pre-training the speech recognizer (task A: words)."""

    lr: float = 3e-3  # peak learning rate of the one-cycle schedule (AdamW)
    weight_decay: float = 5e-4
    batch_size: int = 128  # clips per step
    label_smoothing: float = 0.1

    def optimiser(self) -> dict[str, float | int]:
        """The keyword arguments of ``train.fit`` that this recipe sets."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DetectorRecipe:
    """Training a wake-word detector, the same for every arm (scratch included)."""

    hidden: tuple[int, ...] = (64, 32)  # widths of the new layers between the encoder and the 2-way output
    lr: float = 2e-3  # peak learning rate of the one-cycle schedule (AdamW), every trained parameter
    weight_decay: float = 5e-4
    batch_size: int = 64  # windows per step
    epochs: int = 20  # passes over the wake-word training set (the profile may set fewer: wakeword.recipe_for)

    def optimiser(self) -> dict[str, float | int]:
        """The keyword arguments of ``train.fit`` that this recipe sets."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "batch_size": self.batch_size,
                "epochs": self.epochs}


@dataclass(frozen=True)
class ReversedSpeech:
    """The speech counter-example: a "10 hours" recognizer and a "50 hours" wake-word set."""

    n_clips_a: int = 500  # task-A clips of the tiny recognizer
    n_words_a: int = 10  # words it knows
    epochs_a: int = 40  # passes over its clips
    positives_factor: int = 5  # x notebook 04's positives, spoken by x its voices


def _plain(value: Any) -> Any:
    """A JSON-able copy: dataclasses become dicts (with their type's name), tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **_plain(dataclasses.asdict(value))}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def experiment_key(kind: str, version: int, data: Sequence[Mapping[str, Any]] = (),
                   recipes: Sequence[Any] = (), **settings: Any) -> dict[str, Any]:
    """The cache key of one experiment: its kind and code version, the keys of the data it reads
    (each says its source), the recipes it trains with, the arithmetic it trains in on this
    machine's device ("bf16 autocast" or "fp32": ``runtime.numerics``), and its own settings
    (seed, sizes, ...)."""
    from helpers.runtime import numerics  # here: this module stays importable without torch

    return {"kind": kind, "version": version, "data": _plain(list(data)), "recipes": _plain(list(recipes)),
            "numerics": numerics(), **_plain(settings)}
