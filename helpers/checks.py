"""Auto-checks for the notebooks' exercises: each says what is wrong, in words a learner can use.

A check raises ``ExerciseError`` with a hint when an answer is wrong and returns a short
confirmation when it is right. An unanswered exercise (``...``) raises ``NotImplementedError``
in the notebook itself, before any check runs.
"""
from __future__ import annotations

from torch import nn


class ExerciseError(AssertionError):
    """The answer is not right yet; the message says why and what to look at."""


def require(condition: bool, hint: str) -> None:
    """Raise ExerciseError with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(hint)


def check_number(answer: object, expected: float, what: str, tolerance: float = 0.0) -> str:
    """Check a numeric answer against the value the notebook computed itself."""
    require(answer is not ... and answer is not None, f"{what}: replace the ... with your answer")
    require(isinstance(answer, int | float), f"{what}: expected a number, got {type(answer).__name__}")
    require(abs(float(answer) - expected) <= tolerance,
            f"{what}: {answer} is not right (off by {float(answer) - expected:+g}); look again")
    return f"Correct: {what} = {answer}"


def check_trainable(model: nn.Module, expected_trainable: set[str]) -> str:
    """Check that exactly the parameters named in ``expected_trainable`` require gradients."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    extra, missing = sorted(trainable - expected_trainable), sorted(expected_trainable - trainable)
    require(not extra, f"these parameters still train but should be frozen: {extra[:4]}")
    require(not missing, f"these parameters should train but are frozen: {missing[:4]}")
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"Correct: {len(trainable)} tensors, {count:,} parameters train"


# --- notebook-specific checks below (one section per notebook) ---


# --- 04_wake_word ---
def check_fa_rate_bound(fa_rate_bound_zero: object) -> str:
    """Exercise 1 of notebook 04: the 95 % upper bound of the false-accept rate after 0 false accepts."""
    import math

    for hours in (0.25, 1.0, 10.0):
        answer = fa_rate_bound_zero(hours)  # type: ignore[operator]
        require(isinstance(answer, int | float), f"fa_rate_bound_zero({hours}) should return a number, "
                                                 f"got {type(answer).__name__}")
        expected = -math.log(0.05) / hours
        require(abs(answer - expected) <= 0.01 * expected,
                f"fa_rate_bound_zero({hours}) = {answer:.3g}, expected about {expected:.3g} per hour: "
                "find the rate r with P(0 false accepts in T hours) = exp(-r T) = 0.05")
    return f"Correct: 0 false accepts in 1 hour only shows the rate is below {-math.log(0.05):.2f} per hour"


def check_detector_surgery(build_detector: object, recognizer: nn.Module) -> str:
    """Exercise 2 of notebook 04: new layers on top, everything frozen but the last block and the head."""
    import copy

    model = build_detector(copy.deepcopy(recognizer))  # type: ignore[operator]
    require(isinstance(model, nn.Module), "build_detector should return the model")
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    require(len(linears) >= 2, f"the new head has {len(linears)} linear layer(s): add several new layers "
                               "(replace_head(..., hidden=(...)))")
    require(linears[-1].out_features == 2, f"the output layer should have 2 outputs, not {linears[-1].out_features}")
    last_block = {f"features.{i}.{n}" for i, m in enumerate(model.features) if m is model.blocks[-1]
                  for n, _ in m.named_parameters()}
    head = {f"head.{n}" for n, _ in model.head.named_parameters()}
    return check_trainable(model, last_block | head)


def check_frr(frr_at: object, scores: object, threshold: float, expected: float) -> str:
    """Exercise 3 of notebook 04: the false-reject rate of wake-word clips at a threshold."""
    answer = frr_at(scores, threshold)  # type: ignore[operator]
    require(answer is not None and answer is not ..., "frr_at should return a number")
    answer = float(answer)
    require(0.0 <= answer <= 1.0, f"a false-reject rate is a fraction between 0 and 1, got {answer}")
    require(abs(answer - (1 - expected)) > 1e-9 or abs(expected - 0.5) < 1e-9,
            "that is the fraction of wake words *detected*; the false-reject rate is the fraction missed")
    return check_number(round(answer, 6), round(expected, 6), "false-reject rate", tolerance=1e-6)
