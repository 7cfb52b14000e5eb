"""The three conditions of the lecture, as helpers.advisor computes them."""
import pytest

from helpers.advisor import Task, low_level_similarity, transfer_checklist


def test_lecture_example_images_to_xrays_transfers_when_all_three_hold():
    a, b = Task("photos", "image", 1_000_000), Task("x-rays", "image", 100)
    result = transfer_checklist(a, b, low_level_similarity=0.9)
    assert [c.met for c in result.conditions] == [True, True, True]
    assert "likely to help" in result.verdict


def test_unknown_similarity_asks_to_measure_it():
    result = transfer_checklist(Task("photos", "image", 1_000_000), Task("x-rays", "image", 100))
    assert [c.met for c in result.conditions] == [True, True, None]
    assert "measure condition 3" in result.verdict and "likely to help" not in result.verdict


def test_reversed_sizes_give_no_meaningful_benefit():
    result = transfer_checklist(Task("photos", "image", 100), Task("x-rays", "image", 1_000))
    assert result.conditions[1].met is False and "little to gain" in result.verdict


def test_speech_hours_example():
    assert "promising" in transfer_checklist(Task("speech", "audio", 10_000), Task("wake", "audio", 1)).verdict
    assert "little" in transfer_checklist(Task("speech", "audio", 10), Task("wake", "audio", 50)).verdict


def test_different_inputs_fail_conditions_one_and_three():
    result = transfer_checklist(Task("speech", "audio", 10_000), Task("x-rays", "image", 100))
    assert result.conditions[0].met is False and result.conditions[2].met is False
    assert "do not transfer" in result.verdict


def test_measured_similarity_decides_condition_three():
    a, b = Task("shuffled", "image", 30_000), Task("x-rays", "image", 100)
    assert transfer_checklist(a, b, low_level_similarity=0.1).conditions[2].met is False
    assert transfer_checklist(a, b, low_level_similarity=0.9).conditions[2].met is True
    with pytest.raises(ValueError, match="must lie in"):
        transfer_checklist(a, b, low_level_similarity=2.0)


def test_low_similarity_means_no_benefit_even_with_plenty_of_data():
    """The bug of issue 12: '[no] 3.' and still 'transfer is likely to help'."""
    result = transfer_checklist(Task("shuffled", "image", 30_000), Task("x-rays", "image", 100),
                                low_level_similarity=0.1)
    assert [c.met for c in result.conditions] == [True, True, False]
    assert "likely to help" not in result.verdict
    assert "do not expect a benefit" in result.verdict and "low-level features do not help" in result.verdict


def test_too_little_data_and_low_similarity_names_both():
    result = transfer_checklist(Task("shuffled", "image", 100), Task("x-rays", "image", 1_000),
                                low_level_similarity=0.0)
    assert [c.met for c in result.conditions] == [True, False, False]
    assert "little to gain" in result.verdict and "low-level features do not help" in result.verdict


def test_a_high_similarity_does_not_rescue_too_little_data_or_different_inputs():
    too_little = transfer_checklist(Task("a", "image", 100), Task("b", "image", 1_000), low_level_similarity=1.0)
    assert "little to gain" in too_little.verdict and "likely" not in too_little.verdict
    different = transfer_checklist(Task("a", "audio", 1e6), Task("b", "image", 100), low_level_similarity=1.0)
    assert different.conditions[2].met is False and "do not transfer" in different.verdict


@pytest.mark.parametrize(("gain", "reference", "expected"), [
    (8.0, 8.0, 1.0), (2.0, 8.0, 0.25), (-1.5, 8.0, 0.0), (12.0, 8.0, 1.0), (0.0, 5.0, 0.0)])
def test_low_level_similarity_is_the_share_of_the_reference_gain(gain, reference, expected):
    assert low_level_similarity(gain, reference) == pytest.approx(expected)


def test_low_level_similarity_needs_a_reference_that_helps():
    with pytest.raises(ValueError, match="must help"):
        low_level_similarity(1.0, 0.0)
    with pytest.raises(ValueError, match="must help"):
        low_level_similarity(1.0, -2.0)


def test_shuffled_pixels_example_fails_condition_three_and_real_task_a_meets_it():
    """Notebook 05's numbers (real task A +8 points, shuffled pixels +1 at N_B = 100)."""
    a_real, a_shuffled, b = Task("objects", "image", 90_000), Task("shuffled", "image", 90_000), Task("x", "image", 100)
    real = transfer_checklist(a_real, b, low_level_similarity=low_level_similarity(8.0, 8.0))
    shuffled = transfer_checklist(a_shuffled, b, low_level_similarity=low_level_similarity(1.0, 8.0))
    assert real.conditions[2].met is True and "likely to help" in real.verdict
    assert shuffled.conditions[2].met is False and "likely to help" not in shuffled.verdict


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown input kind"):
        Task("a", "smell", 10)
    with pytest.raises(ValueError, match="positive"):
        Task("a", "image", 0)


def test_checklist_prints_readably():
    text = str(transfer_checklist(Task("photos", "image", 1e6), Task("x-rays", "image", 100)))
    assert "1. same kind of input" in text and "verdict:" in text
