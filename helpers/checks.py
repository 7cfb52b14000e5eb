"""Auto-checks for the notebooks' exercises: each says what is wrong, in words a learner can use.

A check raises ``ExerciseError`` with a hint when an answer is wrong and returns a short
confirmation when it is right. The expected values live *here* — computed from the data passed
in, or by a reference implementation in this module — never in a notebook's check cell, and no
message prints them: feedback says what is wrong (too big, a bias forgotten, the wrong shape),
not what the answer is. An unanswered exercise (``...``) raises ``NotImplementedError`` in the
notebook itself, before any check runs.

Predict-run-explain exercises use :func:`predict` (a prediction must be stated, as a number in
a sensible range; it is never graded) and :func:`compare` (how far the run was from it).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from torch import nn


class ExerciseError(AssertionError):
    """The answer is not right yet; the message says why and what to look at."""


def require(condition: bool, hint: str) -> None:
    """Raise ExerciseError with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(hint)


def _number(answer: object, what: str) -> float:
    require(answer is not ... and answer is not None, f"{what}: replace the ... with your answer")
    require(isinstance(answer, int | float) and not isinstance(answer, bool),
            f"{what}: expected a number, got {type(answer).__name__}")
    require(math.isfinite(float(answer)), f"{what}: expected a finite number, got {answer}")
    return float(answer)


def check_number(answer: object, expected: float, what: str, tolerance: float = 0.0) -> str:
    """Check a numeric answer against a value computed from the data; says only too big or too small."""
    value = _number(answer, what)
    require(value <= expected + tolerance, f"{what}: {answer} is too big; look again")
    require(value >= expected - tolerance, f"{what}: {answer} is too small; look again")
    return f"Correct: {what} = {answer}"


def check_trainable(model: nn.Module, expected_trainable: set[str]) -> str:
    """Check that exactly the parameters named in ``expected_trainable`` require gradients."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    extra, missing = sorted(trainable - expected_trainable), sorted(expected_trainable - trainable)
    require(not extra, f"these parameters still train but should be frozen: {extra[:4]}")
    require(not missing, f"these parameters should train but are frozen: {missing[:4]}")
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"Correct: {len(trainable)} tensors, {count:,} parameters train"


# --- predict, run, explain ---------------------------------------------------------------------

def predict(prediction: object, what: str, low: float, high: float, unit: str = "") -> float:
    """Accept a prediction once it is stated: a number between ``low`` and ``high``. Never graded."""
    value = _number(prediction, f"your prediction of {what}")
    require(low <= value <= high, f"your prediction of {what} ({prediction}{unit}) is outside what is possible "
                                  f"here ({low:g} to {high:g}{unit}); any number in that range is fine")
    return value


def compare(prediction: float, measured: float, what: str, unit: str = "") -> str:
    """How far the run was from the prediction, in words — and the question to answer next."""
    difference = measured - prediction
    apart = " percentage points" if unit.strip() == "%" else unit  # 55 % vs 50 %: 5 points apart
    if abs(difference) < 1e-12:
        where = "exactly what you predicted"
    else:
        where = f"{abs(difference):.3g}{apart} {'above' if difference > 0 else 'below'} your prediction"
    return (f"{what}: you predicted {prediction:.3g}{unit}; the run measured {measured:.3g}{unit}, {where}. "
            "Before reading on, write down in a sentence what explains it.")


# --- 00_start_here -----------------------------------------------------------------------------

FEATURES = ("edges", "curves", "corners", "light/dark blobs", "textures", "colour", "letters", "faces")


def check_shared_features(answer: object) -> str:
    """Notebook 00: a stated prediction of the low-level features tasks A and B share (not graded)."""
    require(answer is not ... and answer is not None, "replace the ... with a set of features, e.g. {'edges'}")
    require(isinstance(answer, set | frozenset | list | tuple), f"give a set of names, got {type(answer).__name__}")
    chosen = set(answer)
    require(bool(chosen), "pick at least one feature you expect both tasks to share")
    unknown = sorted(chosen - set(FEATURES))
    require(not unknown, f"{unknown} are not in the list: choose from {', '.join(FEATURES)}")
    return (f"Noted: you expect {', '.join(sorted(chosen))}. Notebook 01 shows the first-layer filters a "
            "network learns from task A, and what they pick up in an X-ray: compare then.")


# --- 01_pretraining ----------------------------------------------------------------------------

def check_first_layer_weights(first_layer_weights: Callable[[int], object]) -> str:
    """Notebook 01: the weights of a 3x3 convolution from 1 channel to ``width`` channels, no bias."""
    for width in (8, 32, 48):
        answer = _number(first_layer_weights(width), f"first_layer_weights({width})")
        expected = nn.Conv2d(1, width, 3, bias=False).weight.numel()  # the reference: PyTorch counts
        require(answer != expected + width, f"first_layer_weights({width}): you counted a bias per filter; this "
                                            "convolution has none (bias=False: BatchNorm follows it)")
        require(answer != 3 * expected, f"first_layer_weights({width}): three input channels? The images are "
                                        "grayscale: one channel")
        require(answer == expected, f"first_layer_weights({width}) = {answer:g} is too "
                                    f"{'big' if answer > expected else 'small'}: each filter is a 3x3 patch of "
                                    "weights per input channel")
    return "Correct: width x 1 channel x 3 x 3 weights"


# --- 02_head_replacement -----------------------------------------------------------------------

def check_freeze_all_but_last_block(freeze: Callable[[nn.Module], object], make_net: Callable[[], nn.Module]) -> str:
    """Notebook 02: everything frozen except the last conv block and the head."""
    net = make_net()
    freeze(net)
    last_block = {f"features.{i}.{name}" for i, module in enumerate(net.features) if module is net.blocks[-1]
                  for name, _ in module.named_parameters()}
    return check_trainable(net, last_block | {f"head.{name}" for name, _ in net.head.named_parameters()})


def check_head_parameters(head_parameters: Callable[[int, int], object]) -> str:
    """Notebook 02: the weights and biases of a linear layer with ``in_features`` inputs."""
    for inputs, outputs in ((128, 7), (64, 2), (10, 1)):
        answer = _number(head_parameters(inputs, outputs), f"head_parameters({inputs}, {outputs})")
        layer = nn.Linear(inputs, outputs)
        expected = layer.weight.numel() + layer.bias.numel()  # the reference: PyTorch counts
        require(answer != layer.weight.numel(), f"head_parameters({inputs}, {outputs}): you forgot the bias b[L] "
                                                "(one per output)")
        require(answer != layer.weight.numel() + inputs, f"head_parameters({inputs}, {outputs}): one bias per "
                                                         "output, not per input")
        require(answer == expected, f"head_parameters({inputs}, {outputs}) = {answer:g} is too "
                                    f"{'big' if answer > expected else 'small'}: W[L] has one row per output")
    return "Correct: in_features x outputs weights + outputs biases"


# --- 03_last_layer_vs_full ---------------------------------------------------------------------

def _log_interpolation(n_b: int, n_low: int, gain_low: float, n_high: int, gain_high: float) -> float:
    t = (math.log(n_b) - math.log(n_low)) / (math.log(n_high) - math.log(n_low))
    return gain_low + t * (gain_high - gain_low)


def check_interpolation(interpolate_gain: Callable[..., object]) -> str:
    """Notebook 03: linear interpolation of the gain in log(N_B) (checked on made-up gains)."""
    cases = [(300, 100, 8.0, 1000, 1.0), (100, 100, 8.0, 1000, 1.0), (1000, 100, 8.0, 1000, 1.0),
             (200, 50, -2.0, 800, 4.0)]
    for case in cases:
        answer = _number(interpolate_gain(*case), f"interpolate_gain{case}")
        expected = _log_interpolation(*case)
        n_b, n_low, gain_low, n_high, gain_high = case
        linear = gain_low + (n_b - n_low) / (n_high - n_low) * (gain_high - gain_low)
        require(abs(answer - linear) > 1e-6 or abs(linear - expected) < 1e-6,
                f"interpolate_gain{case}: that is a straight line in N_B; the exercise asks for one in log(N_B)")
        require(abs(answer - expected) < 1e-6, f"interpolate_gain{case} = {answer:.4g} is too "
                                               f"{'big' if answer > expected else 'small'}: at n_low it must give "
                                               "gain_low, at n_high gain_high")
    return "Correct: a straight line between the two measured sizes, in log(N_B)"


# --- 04_wake_word ------------------------------------------------------------------------------

def check_fa_rate_bound(fa_rate_bound_zero: object) -> str:
    """Notebook 04: the 95 % upper bound of the false-accept rate after 0 false accepts."""
    for hours in (0.25, 1.0, 10.0):
        answer = _number(fa_rate_bound_zero(hours), f"fa_rate_bound_zero({hours})")  # type: ignore[operator]
        expected = -math.log(0.05) / hours
        side = "big" if answer > expected else "small"
        require(abs(answer - expected) <= 0.01 * expected,
                f"fa_rate_bound_zero({hours}) = {answer:.3g} per hour is too {side}: "
                "find the rate r with P(0 false accepts in T hours) = exp(-r T) = 0.05")
    return "Correct: 0 false accepts in 1 hour only shows that the rate is below about 3 per hour"


def check_detector_surgery(build_detector: object, recognizer: nn.Module) -> str:
    """Notebook 04: new layers on top, everything frozen but the last block and the head."""
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


def check_frr(frr_at: object, scores: Iterable[float], threshold: float) -> str:
    """Notebook 04: the false-reject rate of wake-word clips at a threshold (a clip fires at >= threshold)."""
    import numpy as np

    values = np.asarray(list(scores), dtype=float)
    answer = _number(frr_at(values, threshold), "frr_at")  # type: ignore[operator]
    expected = float(np.mean(values < threshold))
    require(0.0 <= answer <= 1.0, f"a false-reject rate is a fraction between 0 and 1, got {answer}")
    if abs(answer - expected) > 1e-9:
        require(abs(answer - (1 - expected)) > 1e-9,
                "that is the fraction of wake words *detected*; the false-reject rate is the fraction missed")
        require(abs(answer - float(np.mean(values <= threshold))) > 1e-9,
                "a clip whose score equals the threshold fires: it is not missed")
        require(False, f"frr_at gives {answer:.4g}, which is too {'big' if answer > expected else 'small'}: count "
                       "the wake-word clips whose score stays below the threshold, divided by all of them")
    return "Correct: the share of wake words the detector misses at this threshold"


# --- 05_reversed_sizes -------------------------------------------------------------------------

def check_best_task_a_size(best_task_a_size: Callable[[dict], object], grid: dict) -> str:
    """Notebook 05: the task-A size with the largest gain at the smallest N_B (column 0 of the map)."""
    answer = best_task_a_size(grid)
    require(answer in grid["n_a"], f"return one of the task-A sizes of the map ({', '.join(map(str, grid['n_a']))})")
    column = grid["gain"][:, 0]
    row = grid["n_a"].index(answer)
    require(column[row] >= column.max(), "another task-A size has a larger gain in the first column (the "
                                         "smallest N_B): compare every row of that column")
    return f"Correct: at the smallest N_B the largest task A gives the most ({answer:,} images)"


def check_skin_checklist(answer: object) -> str:
    """Notebook 05: the checklist of the skin-photo scenario (50,000 photos of A, 200 of B)."""
    from helpers import advisor

    require(isinstance(answer, advisor.Checklist), "return what advisor.transfer_checklist returns")
    same_kind, more_data, _ = answer.conditions
    require(same_kind.met is True, "both tasks are photographs: give them the same input kind")
    require(more_data.met is True, "condition 2 compares how many examples A and B have: check the numbers you "
                                   "gave each Task")
    return "Correct: the checklist for the skin photos"


def predict_conditions(prediction: object) -> tuple[bool, bool, bool]:
    """Notebook 05: a stated prediction of the three conditions (True or False each); never graded."""
    require(prediction is not ... and prediction is not None, "replace the ... with three True/False values")
    require(isinstance(prediction, tuple | list) and len(prediction) == 3 and
            all(isinstance(p, bool) for p in prediction), "predict True or False for each of the three conditions")
    return tuple(prediction)  # type: ignore[return-value]


def compare_conditions(prediction: tuple[bool, bool, bool], checklist: object) -> str:
    """The advisor's judgement of each condition beside the prediction."""
    lines = []
    conditions = checklist.conditions  # type: ignore[attr-defined]
    for number, (predicted, condition) in enumerate(zip(prediction, conditions, strict=True), start=1):
        if condition.met is None:
            lines.append(f"condition {number}: the advisor cannot judge it without a measurement "
                         f"(you said {predicted})")
        else:
            agreement = "as you predicted" if predicted == condition.met else "not what you predicted"
            lines.append(f"condition {number}: {'holds' if condition.met else 'does not hold'} ({agreement})")
    return "\n".join(lines)
