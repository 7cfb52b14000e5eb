"""Detection metrics on hand-made scores: EER, DET, false accepts per hour, upper bounds."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import detection


def test_eer_perfect_separation_is_zero() -> None:
    assert detection.equal_error_rate([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0


def test_eer_identical_scores_is_one_half() -> None:
    assert detection.equal_error_rate(np.full(10, 0.3), [0, 1] * 5) == pytest.approx(0.5)


def test_eer_known_case() -> None:
    # Positives 0.9, 0.8, 0.4; negatives 0.7, 0.3, 0.2: at threshold 0.7 one of three
    # positives is rejected and one of three negatives accepted.
    scores = torch.tensor([0.9, 0.8, 0.4, 0.7, 0.3, 0.2])
    assert detection.equal_error_rate(scores, torch.tensor([1, 1, 1, 0, 0, 0])) == pytest.approx(1 / 3)


def test_eer_interpolates_between_points() -> None:
    # Inverted scores: the DET curve runs (0, 1) -> (1, 1) -> (1, 0) and meets FAR = FRR at 1.
    assert detection.equal_error_rate([0.2, 0.8], [1, 0]) == pytest.approx(1.0)
    # One negative above the only positive: FRR drops from 1 to 0 while FAR stays at 1/3.
    assert detection.equal_error_rate([0.5, 0.9, 0.1, 0.2], [1, 0, 0, 0]) == pytest.approx(1 / 3)


def test_det_curve_is_monotone_and_ties_make_one_point() -> None:
    far, frr, thresholds = detection.det_curve([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1])
    assert len(thresholds) == 4  # +inf and three distinct scores
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(frr) <= 0)
    assert (far[0], frr[0], far[-1], frr[-1]) == (0.0, 1.0, 1.0, 0.0)


def test_labels_must_hold_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        detection.equal_error_rate([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="length"):
        detection.equal_error_rate([0.1, 0.2, 0.3], [0, 1])


def _stream(peaks: dict[int, float], seconds: int = 3600) -> np.ndarray:
    """One window per second of an hour, score 0 except at the given seconds."""
    scores = np.zeros(seconds)
    for second, value in peaks.items():
        scores[second] = value
    return scores


def test_false_accepts_merge_within_refractory() -> None:
    scores = _stream({10: 0.9, 11: 0.95, 12: 0.9, 500: 0.9, 2000: 0.9})
    assert detection.count_detections(scores, 0.5, hop_s=1.0, refractory_s=3.0) == 3
    assert detection.count_detections(scores, 0.5, hop_s=1.0, refractory_s=1.0) == 5
    assert detection.false_accepts_per_hour(scores, 0.5, hours=1.0, refractory_s=3.0) == 3.0
    assert detection.false_accepts_per_hour(scores, 0.99, hours=1.0) == 0.0


def test_threshold_for_fa_per_hour_is_the_lowest_that_meets_the_target() -> None:
    scores = _stream({100: 0.9, 200: 0.8, 300: 0.7, 400: 0.6, 500: 0.5})
    assert detection.threshold_for_fa_per_hour(scores, 1.0, fa_per_hour=2.0) == pytest.approx(0.8)
    above_all = detection.threshold_for_fa_per_hour(scores, 1.0, fa_per_hour=0.0)
    assert above_all > 0.9 and detection.false_accepts_per_hour(scores, above_all, 1.0) == 0


def test_frr_at_fa_per_hour_tunes_on_one_part_and_measures_on_the_other() -> None:
    tune = _stream({100: 0.9, 200: 0.8, 300: 0.7})
    evaluate = _stream({50: 0.85, 60: 0.75, 70: 0.95})
    positives = [0.95, 0.85, 0.75, 0.65]
    point = detection.frr_at_fa_per_hour(positives, tune, 1.0, evaluate, 1.0, fa_per_hour=2.0)
    assert point.threshold == pytest.approx(0.8)
    assert point.frr == pytest.approx(0.5)  # 0.75 and 0.65 fall below 0.8
    assert point.fa_per_hour_tune == 2.0
    assert point.false_accepts_eval == 2 and point.fa_per_hour_eval == 2.0  # 0.85 and 0.95


def test_split_stream_keeps_the_hours() -> None:
    (a, hours_a), (b, hours_b) = detection.split_stream(np.arange(100.0), 2.0, fraction=0.25)
    assert len(a) == 25 and len(b) == 75 and hours_a + hours_b == pytest.approx(2.0)


def test_upper_bound_at_zero_false_accepts_is_three_over_t() -> None:
    for hours in (0.5, 2.0, 10.0):
        assert detection.fa_rate_upper_bound(0, hours) == pytest.approx(3.0 / hours, rel=0.01)
    assert detection.fa_rate_upper_bound(0, 1.0) == pytest.approx(-math.log(0.05), rel=1e-6)


def test_upper_bound_matches_chi_square_values() -> None:
    # chi2.ppf(0.95, 4) / 2 = 4.7439 and chi2.ppf(0.95, 22) / 2 = 16.9622 (tables)
    assert detection.fa_rate_upper_bound(1, 1.0) == pytest.approx(4.7439, rel=1e-4)
    assert detection.fa_rate_upper_bound(10, 2.0) == pytest.approx(16.9622 / 2, rel=1e-4)
    assert detection.fa_rate_upper_bound(3, 1.0, 0.99) > detection.fa_rate_upper_bound(3, 1.0)


def test_stream_scores_windows_and_times() -> None:
    features = torch.arange(40 * 300, dtype=torch.float32).reshape(40, 300)
    scores, ends = detection.stream_scores(lambda x: x[:, 0, 0, -1], features, window_frames=100,
                                           hop_frames=20, batch_size=3)
    assert len(scores) == (300 - 100) // 20 + 1
    assert scores[0] == 99 and scores[-1] == 299  # the last frame of each window
    assert ends[0] == pytest.approx(1.0) and ends[1] == pytest.approx(1.2)


def test_best_window_scores_finds_the_phrase_anywhere() -> None:
    clips = torch.zeros(3, 1, 40, 298)
    clips[1, 0, :, 250] = 1.0  # the "phrase" near the end of clip 1
    best = detection.best_window_scores(lambda x: x.amax(dim=(1, 2, 3)), clips, 148, 10)
    assert best.tolist() == [0.0, 1.0, 0.0]
