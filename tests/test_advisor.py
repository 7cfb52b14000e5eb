"""The three conditions of the lecture, as helpers.advisor computes them."""
import pytest

from helpers.advisor import Task, transfer_checklist


def test_lecture_example_images_to_xrays_transfers():
    result = transfer_checklist(Task("photos", "image", 1_000_000), Task("x-rays", "image", 100))
    assert [c.met for c in result.conditions[:2]] == [True, True]
    assert result.conditions[2].met is None and "likely to help" in result.verdict


def test_reversed_sizes_give_no_meaningful_benefit():
    result = transfer_checklist(Task("photos", "image", 100), Task("x-rays", "image", 1_000))
    assert result.conditions[1].met is False and "little to gain" in result.verdict


def test_speech_hours_example():
    assert "likely" in transfer_checklist(Task("speech", "audio", 10_000), Task("wake", "audio", 1)).verdict
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


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown input kind"):
        Task("a", "smell", 10)
    with pytest.raises(ValueError, match="positive"):
        Task("a", "image", 0)


def test_checklist_prints_readably():
    text = str(transfer_checklist(Task("photos", "image", 1e6), Task("x-rays", "image", 100)))
    assert "1. same kind of input" in text and "verdict:" in text
