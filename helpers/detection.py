"""Metrics of wake-word detection: ROC / DET, equal error rate, false accepts per hour.

Conventions: a higher score means "more likely the wake word"; a window or clip *fires* when
its score is >= the threshold. Labels are 1 (wake word) and 0 (anything else).

Clip level::

    equal_error_rate(scores, labels)        # where false accepts = false rejects
    far, frr, thresholds = det_curve(scores, labels)

Streaming (a recording with no wake word in it, scored window by window)::

    scores, times = stream_scores(model_fn, features, window_frames=148, hop_frames=10)
    point = frr_at_fa_per_hour(pos_scores, tune_scores, tune_hours, eval_scores, eval_hours, 1.0)
    fa_rate_upper_bound(point.false_accepts_eval, eval_hours)   # 95 % bound, 3/T at zero
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | list[float]


def _as_numpy(values: ArrayLike) -> np.ndarray:
    if torch.is_tensor(values):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def _checked(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s, y = _as_numpy(scores), _as_numpy(labels)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.size} vs {y.size}")
    if not set(np.unique(y)) <= {0.0, 1.0} or y.min() == y.max():
        raise ValueError("labels must be 0/1 and hold both classes (positives and negatives)")
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or infinity: check the model's output")
    return s, y.astype(bool)


# ----------------------------------------------------------------------------- clip level
def roc_points(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve: false-positive rate, true-positive rate and threshold of every distinct score.

    The first point is (0, 0) at threshold +inf (nothing fires); tied scores make one point.
    """
    s, y = _checked(scores, labels)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(~y)[last_of_tie]
    fpr = np.r_[0.0, fp / (~y).sum()]
    tpr = np.r_[0.0, tp / y.sum()]
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def det_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET curve: false-accept rate, false-reject rate and threshold (FAR rising, FRR falling)."""
    fpr, tpr, thresholds = roc_points(scores, labels)
    return fpr, 1.0 - tpr, thresholds


def equal_error_rate(scores: ArrayLike, labels: ArrayLike) -> float:
    """The error rate where false accepts equal false rejects (linear between DET points).

    0 for perfectly separated scores, 0.5 for scores that carry no information.
    """
    far, frr, _ = det_curve(scores, labels)
    gap = frr - far  # falls from 1 to -1 along the curve
    i = int(np.argmax(gap <= 0))  # first point where false accepts reach false rejects
    if i == 0 or gap[i] == 0:
        return float(far[i])
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


# ----------------------------------------------------------------------------- scoring
ScoreFn = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def _score_batches(model_fn: ScoreFn, windows: torch.Tensor, batch_size: int,
                   device: torch.device | None) -> np.ndarray:
    """``model_fn`` over ``windows`` [n, 1, mels, frames] in batches; one score per window."""
    out = []
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size].contiguous().float()
        out.append(model_fn(batch.to(device) if device else batch).reshape(-1).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def stream_scores(model_fn: ScoreFn, features: torch.Tensor, window_frames: int,
                  hop_frames: int = 10, frame_rate: float = 100.0, batch_size: int = 1024,
                  device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Score a long recording window by window, as a detector listening live would.

    ``features`` [mels, frames] (or [1, mels, frames]); ``model_fn`` maps a batch
    [b, 1, mels, window_frames] to b scores (e.g. ``lambda x: model(x).sigmoid()``).
    Returns the scores and the time (s) at the *end* of each window, when it could fire.
    """
    feats = features.reshape(-1, features.shape[-1])
    windows = feats.unfold(-1, window_frames, hop_frames)  # [mels, n, window]: a view, no copy
    windows = windows.permute(1, 0, 2).unsqueeze(1)
    scores = _score_batches(model_fn, windows, batch_size, device)
    ends = (np.arange(len(scores)) * hop_frames + window_frames) / frame_rate
    return scores, ends


def best_window_scores(model_fn: ScoreFn, clips: torch.Tensor, window_frames: int,
                       hop_frames: int = 10, batch_size: int = 1024,
                       device: torch.device | None = None) -> np.ndarray:
    """One score per clip [n, 1, mels, frames]: the best of its windows (the phrase may be
    anywhere in a context longer than the model's window)."""
    windows = clips.unfold(-1, window_frames, hop_frames)  # [n, 1, mels, k, window]
    n, k = windows.shape[0], windows.shape[3]
    windows = windows.permute(0, 3, 1, 2, 4).reshape(n * k, 1, clips.shape[2], window_frames)
    return _score_batches(model_fn, windows, batch_size, device).reshape(n, k).max(axis=1)


# ----------------------------------------------------------------------------- streams
def detections(scores: ArrayLike, threshold: float, hop_s: float, refractory_s: float = 1.0) -> np.ndarray:
    """Indices of the windows where a detector fires: a window's score >= ``threshold``, and after
    a detection the detector stays silent for ``refractory_s`` (one utterance fires once)."""
    above = np.flatnonzero(_as_numpy(scores) >= threshold)
    gap = max(1, math.ceil(refractory_s / hop_s - 1e-9))  # windows to skip after a detection
    fired, next_allowed = [], -1
    for index in above:
        if index >= next_allowed:
            fired.append(index)
            next_allowed = index + gap
    return np.asarray(fired, dtype=np.int64)


def count_detections(scores: ArrayLike, threshold: float, hop_s: float,
                     refractory_s: float = 1.0) -> int:
    """How many times a detector fires on a scored stream (see :func:`detections`)."""
    return len(detections(scores, threshold, hop_s, refractory_s))


def detection_times(scores: ArrayLike, times: ArrayLike, threshold: float, refractory_s: float = 1.0) -> list[float]:
    """When a detector listening live fires (``times``: evenly spaced, as :func:`stream_scores` gives)."""
    times = _as_numpy(times)
    hop = float(times[1] - times[0]) if len(times) > 1 else 1.0
    return [float(times[i]) for i in detections(scores, threshold, hop, refractory_s)]


def _hop(scores: ArrayLike, hours: float, hop_s: float | None) -> float:
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    return hop_s if hop_s is not None else hours * 3600.0 / max(1, _as_numpy(scores).size)


def false_accepts_per_hour(scores_stream: ArrayLike, threshold: float, hours: float,
                           refractory_s: float = 1.0, hop_s: float | None = None) -> float:
    """False accepts per hour on a stream with no wake word (``hours`` long).

    ``hop_s``, the time between windows, defaults to hours / number of windows.
    """
    hop = _hop(scores_stream, hours, hop_s)
    return count_detections(scores_stream, threshold, hop, refractory_s) / hours


def threshold_for_fa_per_hour(scores_stream: ArrayLike, hours: float, fa_per_hour: float,
                              refractory_s: float = 1.0, hop_s: float | None = None) -> float:
    """The lowest threshold whose false accepts per hour on this stream are <= ``fa_per_hour``.

    Found by bisection over the stream's own scores (a finer threshold changes nothing);
    above the top score nothing fires, so a threshold always exists.
    """
    s = _as_numpy(scores_stream)
    candidates = np.r_[np.unique(s), np.nextafter(s.max(initial=0.0), np.inf)]

    def ok(threshold: float) -> bool:
        return false_accepts_per_hour(s, threshold, hours, refractory_s, hop_s) <= fa_per_hour

    low, high = 0, len(candidates) - 1  # candidates[high] always passes
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if ok(candidates[mid]) else (mid + 1, high)
    while not ok(candidates[low]):  # refractory merging can make the count non-monotone
        low += 1
    return float(candidates[low])


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold chosen on one part of a stream and measured on another."""

    fa_per_hour_target: float
    threshold: float
    frr: float  # fraction of wake words missed at this threshold
    fa_per_hour_tune: float  # on the part the threshold was chosen on (<= target)
    false_accepts_eval: int  # on the held-out part
    fa_per_hour_eval: float
    eval_hours: float


def frr_at_fa_per_hour(pos_scores: ArrayLike, tune_scores: ArrayLike, tune_hours: float,
                       eval_scores: ArrayLike, eval_hours: float, fa_per_hour: float,
                       refractory_s: float = 1.0, hop_s: float | None = None) -> OperatingPoint:
    """False-reject rate at ``fa_per_hour`` false accepts per hour, measured honestly.

    The threshold is chosen on ``tune_scores`` (one part of the negative stream) and the false
    accepts are counted on ``eval_scores`` (another part), as a deployed detector would meet
    audio it was not tuned on. ``pos_scores`` holds one score per wake-word clip.
    """
    threshold = threshold_for_fa_per_hour(tune_scores, tune_hours, fa_per_hour, refractory_s, hop_s)
    eval_hop = _hop(eval_scores, eval_hours, hop_s)
    false_accepts = count_detections(eval_scores, threshold, eval_hop, refractory_s)
    return OperatingPoint(
        fa_per_hour_target=fa_per_hour, threshold=threshold,
        frr=float(np.mean(_as_numpy(pos_scores) < threshold)),
        fa_per_hour_tune=false_accepts_per_hour(tune_scores, threshold, tune_hours, refractory_s, hop_s),
        false_accepts_eval=false_accepts, fa_per_hour_eval=false_accepts / eval_hours,
        eval_hours=eval_hours)


def split_stream(scores: ArrayLike, hours: float, fraction: float = 0.5
                 ) -> tuple[tuple[np.ndarray, float], tuple[np.ndarray, float]]:
    """Cut a scored stream in two parts in time: ((tune, tune_hours), (eval, eval_hours))."""
    s = _as_numpy(scores)
    cut = int(round(len(s) * fraction))
    if not 0 < cut < len(s):
        raise ValueError(f"fraction {fraction} leaves an empty part of a {len(s)}-window stream")
    return (s[:cut], hours * cut / len(s)), (s[cut:], hours * (len(s) - cut) / len(s))


# ----------------------------------------------------------------------------- confidence
def _poisson_cdf(k: int, rate: float) -> float:
    """P(X <= k) for X ~ Poisson(rate): the regularised upper incomplete gamma Q(k + 1, rate)."""
    return float(torch.special.gammaincc(torch.tensor(k + 1.0, dtype=torch.float64),
                                         torch.tensor(rate, dtype=torch.float64)))


def fa_rate_upper_bound(false_accepts: int, hours: float, confidence: float = 0.95) -> float:
    """Upper ``confidence`` bound on the false-accept rate (per hour), exact Poisson.

    The rate r with P(X <= false_accepts | r * hours) = 1 - confidence (the chi-square bound
    chi2(confidence, 2k + 2) / 2T). With zero false accepts in T hours it is -ln(0.05) / T,
    about 3 / T: a clean hour of testing only shows the rate is below ~3 per hour.
    """
    if false_accepts < 0 or hours <= 0 or not 0 < confidence < 1:
        raise ValueError("need false_accepts >= 0, hours > 0 and 0 < confidence < 1")
    alpha = 1.0 - confidence
    low, high = 0.0, false_accepts + 10.0 + 10.0 * math.sqrt(false_accepts + 1)
    while _poisson_cdf(false_accepts, high) > alpha:  # widen until the root is bracketed
        high *= 2
    for _ in range(100):  # bisection: the CDF falls as the expected count grows
        mid = (low + high) / 2
        low, high = (mid, high) if _poisson_cdf(false_accepts, mid) > alpha else (low, mid)
    return (low + high) / 2 / hours
