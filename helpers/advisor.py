"""When does transfer from task A to task B make sense? The lecture's three conditions as code."""
from __future__ import annotations

from dataclasses import dataclass

INPUT_KINDS = ("image", "audio", "text", "tabular", "video")


@dataclass(frozen=True)
class Task:
    """What the advisor needs to know about a task.

    input_kind: one of INPUT_KINDS; examples: labelled training examples (or hours x examples per
    hour — any unit, as long as A and B use the same one).
    """

    name: str
    input_kind: str
    examples: float

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KINDS:
            valid = ", ".join(INPUT_KINDS)
            raise ValueError(f"{self.name}: unknown input kind {self.input_kind!r}; use one of {valid}")
        if not self.examples > 0:
            raise ValueError(f"{self.name}: examples must be a positive number, got {self.examples!r}")


@dataclass(frozen=True)
class Condition:
    """One of the three conditions: met or not, and why."""

    name: str
    met: bool | None  # None: cannot be decided from what was given
    reason: str


@dataclass(frozen=True)
class Checklist:
    conditions: tuple[Condition, Condition, Condition]
    verdict: str

    def __str__(self) -> str:
        marks = {True: "yes", False: "no ", None: "?  "}
        lines = [f"[{marks[c.met]}] {c.name}: {c.reason}" for c in self.conditions]
        return "\n".join([*lines, f"verdict: {self.verdict}"])


def transfer_checklist(task_a: Task, task_b: Task, low_level_similarity: float | None = None,
                       min_ratio: float = 10.0, similarity_threshold: float = 0.5) -> Checklist:
    """Check the lecture's three conditions for transferring from ``task_a`` to ``task_b``.

    low_level_similarity: an optional measured number in [0, 1] saying how much A's low-level
    features help B (e.g. ``low_level_similarity(...)`` below); without it condition 3 is judged
    from the input kinds alone and the verdict asks to measure it. min_ratio: how many times more
    examples A needs than B to count as "a lot more".
    """
    same_input = Condition("1. same kind of input", task_a.input_kind == task_b.input_kind,
                           f"A takes {task_a.input_kind}, B takes {task_b.input_kind}")
    ratio = task_a.examples / task_b.examples
    more_data = Condition("2. A has a lot more data than B", ratio >= min_ratio,
                          f"A has {ratio:,.3g}x the examples of B (needs >= {min_ratio:g}x)")
    low_level = _low_level(same_input.met, low_level_similarity, similarity_threshold)
    return Checklist((same_input, more_data, low_level), _verdict(same_input.met, more_data.met, low_level.met, ratio))


def low_level_similarity(gain: float, reference_gain: float) -> float:
    """Condition 3, measured: the share of a reference task A's transfer gain that this task A keeps.

    Both gains (points over scratch, same task B and N_B) come from task As with the same kind of
    input and the same amount of data, so what differs is only what their low-level features are
    worth to B. Returns gain / reference_gain clipped to [0, 1]; the reference must help (> 0).
    """
    if not reference_gain > 0:
        raise ValueError(f"the reference task A must help B to compare with it; its gain is {reference_gain}")
    return min(max(gain / reference_gain, 0.0), 1.0)


def _low_level(same_input: bool, similarity: float | None, threshold: float) -> Condition:
    name = "3. A's low-level features could help B"
    if not same_input:
        return Condition(name, False, "different kinds of input share no low-level features")
    if similarity is None:
        return Condition(name, None, "plausible for the same kind of input; measure it (e.g. a linear probe)")
    if not 0 <= similarity <= 1:
        raise ValueError(f"low_level_similarity must lie in [0, 1], got {similarity}")
    return Condition(name, similarity >= threshold, f"measured similarity {similarity:.2f} (needs >= {threshold:g})")


def _verdict(same_input: bool, more_data: bool, low_level: bool | None, ratio: float) -> str:
    """The advice from all three conditions: the first one that fails decides it."""
    if not same_input:
        return "do not transfer: the inputs differ, so nothing learned on A fits B's input"
    if not more_data:
        also = " (and A's low-level features do not help B either)" if low_level is False else ""
        return (f"little to gain: A has only {ratio:.3g}x B's data, so B's own examples are worth more{also}; "
                "pre-training probably does no harm, but do not expect a meaningful benefit")
    if low_level is False:
        return ("do not expect a benefit: A's low-level features do not help B (condition 3 measured), so "
                "pre-training on A teaches B nothing it can use; train on B alone or find a task A closer to B")
    if low_level is None:
        return ("promising, not yet shown: conditions 1 and 2 hold; measure condition 3 (a linear probe on A's "
                "features, or advisor.low_level_similarity) before counting on a benefit")
    return "transfer is likely to help: pre-train on A, then fine-tune on B (more layers as B's data grow)"
