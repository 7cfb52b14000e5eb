"""Wake-word experiments: the surgery, the frozen encoder, caching and the reversed experiment.

The speech data are replaced by small random tensors (no synthesis): these tests check the
plumbing, not the numbers (notebook 04 asserts those).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import train, wakeword
from helpers.config import get_profile, replace_profile
from helpers.data import speech

WINDOW = 148  # frames of a wake-word window (1.5 s)


def _clips(n: int, frames: int, positive: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random log-mel clips; positives carry a loud band the detector can learn."""
    X = torch.randn(n, 1, 40, frames, generator=gen)
    X[positive.bool(), :, 5:10, : frames // 2] += 3.0
    return X


def fake_data(n_a: int = 240, words: int = 12, n_b: int = 64, n_test: int = 40) -> dict:
    gen = torch.Generator().manual_seed(0)
    y_a, y_a_test = torch.arange(n_a) % words, torch.arange(48) % words
    y_b, y_test = (torch.arange(n_b) % 4 == 0).long(), (torch.arange(n_test) % 4 == 0).long()
    return {
        "a": {"X_train": torch.randn(n_a, 1, 40, 98, generator=gen), "y_train": y_a,
              "X_test": torch.randn(48, 1, 40, 98, generator=gen), "y_test": y_a_test,
              "words": [f"w{k}" for k in range(words)]},
        "b": {"X_train": _clips(n_b, WINDOW, y_b, gen), "y_train": y_b,
              "X_test": _clips(n_test, WINDOW + 20, y_test, gen), "y_test": y_test, "window_frames": WINDOW},
        "stream": {"features": torch.randn(40, 1_200, generator=gen), "hours": 0.01},
    }


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """Temporary data/artifact folders, fake speech data, a 1-epoch recipe; counts task-A loads."""
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    data, calls = fake_data(), {"task_a": 0, "positives": [], "speakers": []}

    def task_a(profile: object, **_: object) -> dict:
        calls["task_a"] += 1
        return data["a"]

    def wake(profile: object, n_positives: int | None = None, seed: int = 0,
             n_speakers: int = speech.N_POSITIVE_SPEAKERS) -> dict:
        calls["positives"].append(n_positives)
        calls["speakers"].append(n_speakers)
        return data["b"]

    monkeypatch.setattr(speech, "speech_task_a", task_a)
    monkeypatch.setattr(speech, "wake_word_task", wake)
    monkeypatch.setattr(speech, "negative_stream", lambda profile: data["stream"])
    monkeypatch.setattr(wakeword, "RECIPE", dataclasses.replace(wakeword.RECIPE, epochs=1))
    monkeypatch.setattr(wakeword, "REVERSED", dataclasses.replace(wakeword.REVERSED, n_clips_a=40, epochs_a=1))
    return {"data": data, "calls": calls}


@pytest.fixture
def profile() -> object:
    return replace_profile(get_profile("quick"), speech_words_a=12, speech_clips_a=120, speech_epochs_a=1,
                           detector_epochs=1, seeds=(0, 1))


def _linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def test_surgery_adds_several_new_layers_and_freezes_the_encoder(fake: dict, profile: object) -> None:
    recognizer, _ = wakeword.pretrained_recognizer(profile)
    before = {k: v.clone() for k, v in recognizer.state_dict().items()}
    detector = wakeword.new_detector("frozen + new layers", recognizer, seed=0, hidden=(64, 32))
    linears = _linear_layers(detector.head)
    assert [layer.out_features for layer in linears] == [64, 32, 2]  # several new layers, 2-way output
    assert not any(p.requires_grad for p in detector.features.parameters())
    assert all(p.requires_grad for p in detector.head.parameters())
    assert all(torch.equal(v, recognizer.state_dict()[k]) for k, v in before.items())  # a copy was changed
    scratch = wakeword.new_detector("scratch", recognizer, seed=0, hidden=(64, 32))
    assert [p.shape for p in scratch.parameters()] == [p.shape for p in detector.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(scratch.head.parameters(), detector.head.parameters()))
    with pytest.raises(ValueError, match="unknown arm"):
        wakeword.new_detector("last block", recognizer, seed=0)


@pytest.mark.parametrize("via_cached_features", [True, False])
def test_frozen_encoder_is_bit_identical_after_training(fake: dict, profile: object,
                                                        via_cached_features: bool) -> None:
    recognizer, _ = wakeword.pretrained_recognizer(profile)
    detector = wakeword.new_detector("frozen + new layers", recognizer, seed=0)
    encoder_before = {k: v.clone() for k, v in detector.features.state_dict().items()}
    head_before = [p.detach().clone() for p in detector.head.parameters()]
    b, cpu = fake["data"]["b"], torch.device("cpu")
    if via_cached_features:
        wakeword.train_detector(detector, "frozen + new layers", b["X_train"], b["y_train"], 0, cpu)
    else:  # the whole network in train mode: frozen BatchNorm must still keep its statistics
        train.fit(detector, b["X_train"], b["y_train"], epochs=1, batch_size=16, device=cpu, progress=False)
    after = detector.features.state_dict()
    assert any("running_mean" in k for k in after)
    assert all(torch.equal(v, after[k]) for k, v in encoder_before.items())  # weights and BN statistics
    assert any(not torch.equal(a, b) for a, b in zip(head_before, detector.head.parameters()))


def test_all_layers_arm_changes_the_encoder(fake: dict, profile: object) -> None:
    recognizer, _ = wakeword.pretrained_recognizer(profile)
    detector = wakeword.new_detector("all layers", recognizer, seed=0)
    assert all(p.requires_grad for p in detector.parameters())
    b = fake["data"]["b"]
    wakeword.train_detector(detector, "all layers", b["X_train"], b["y_train"], 0, torch.device("cpu"))
    assert not torch.equal(detector.features[2].weight, recognizer.features[2].weight)


def test_recognizer_is_trained_once_then_loaded(fake: dict, profile: object) -> None:
    model, info = wakeword.pretrained_recognizer(profile)
    again, info_again = wakeword.pretrained_recognizer(profile)
    assert fake["calls"]["task_a"] == 1  # the second call loaded from artifacts/
    assert 0.0 <= info["test_accuracy"] <= 1.0 and info == info_again
    assert info["words"] == [f"w{k}" for k in range(12)] and info["n_clips"] == 120
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    wakeword.pretrained_recognizer(profile, n_clips=60, words=6)  # another config: trained again
    assert fake["calls"]["task_a"] == 2


def test_detector_variants_rows_and_cache(fake: dict, profile: object, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = wakeword.detector_variants(profile, seeds=(0, 1))
    assert sorted((r["seed"], r["arm"]) for r in rows) == sorted((s, a) for s in (0, 1) for a in wakeword.ARMS)
    for row in rows:
        assert 0.0 <= row["eer"] <= 1.0 and 0.0 <= row["frr_at_1fa"] <= 1.0
        assert row["fa_bound_at_1fa"] >= row["fa_per_hour_eval_at_1fa"]
        assert len(row["far"]) == len(row["frr"]) >= 2
    frozen = [r for r in rows if r["arm"] == "frozen + new layers"]
    full = [r for r in rows if r["arm"] == "all layers"]
    assert frozen[0]["trainable_params"] < full[0]["trainable_params"]
    calls, fits = fake["calls"]["task_a"], []
    monkeypatch.setattr(train, "fit", lambda *args, **kwargs: fits.append(args))  # a second run must not train
    assert wakeword.detector_variants(profile, seeds=(0, 1)) == rows
    assert fits == [] and fake["calls"]["task_a"] == calls
    table = wakeword.summary_table(rows)
    assert all(arm in table for arm in wakeword.ARMS) and "±" in table
    grid, frr = wakeword.mean_det_points(rows, "scratch")
    assert grid.shape == frr.shape and frr[0] >= frr[-1]


def test_speech_reversed_plumbing(fake: dict, profile: object) -> None:
    result = wakeword.speech_reversed(profile, seeds=(0, 1))
    assert fake["calls"]["positives"] == [5 * profile.speech_positives_b]  # 5x the positives ...
    assert fake["calls"]["speakers"] == [5 * speech.N_POSITIVE_SPEAKERS]  # ... from 5x the voices
    assert {(r["arm"], r["seed"]) for r in result["rows"]} == {(a, s) for a in ("all layers", "scratch")
                                                              for s in (0, 1)}
    assert len(result["gain"]) == 2
    expected = [(s["eer"] - t["eer"]) * 100 for t, s in zip(
        sorted((r for r in result["rows"] if r["arm"] == "all layers"), key=lambda r: r["seed"]),
        sorted((r for r in result["rows"] if r["arm"] == "scratch"), key=lambda r: r["seed"]))]
    assert result["gain"] == pytest.approx(expected)
    assert result["recognizer"]["n_clips"] == 40 and len(result["recognizer"]["words"]) == 10


def test_summaries_on_hand_made_rows() -> None:
    rows = [{"arm": arm, "seed": seed, "eer": eer, "frr_at_1fa": 0.5, "frr_at_5fa": 0.3}
            for arm, base in (("scratch", 0.3), ("all layers", 0.2), ("frozen + new layers", 0.1))
            for seed, eer in ((0, base), (1, base + 0.02))]
    assert wakeword.eer_gain(rows, "frozen + new layers").tolist() == pytest.approx([20.0, 20.0])
    assert wakeword.best_transferred_arm(rows) == "frozen + new layers"
    with pytest.raises(ValueError, match="no runs"):
        wakeword.per_seed(rows, "last block", "eer")


def test_recognizer_learns_every_word_its_data_have(fake: dict, profile: object) -> None:
    # Speech Commands has 34 words, fewer than a profile's speech_words_a: the data decide
    many = replace_profile(profile, speech_words_a=100)
    model, info = wakeword.pretrained_recognizer(many)
    assert len(info["words"]) == 12 and model.head.out_features == 12
    with pytest.raises(ValueError, match="12 words"):
        wakeword.pretrained_recognizer(many, words=20)


def test_fewer_positives_keeps_every_negative_and_the_test_set() -> None:
    task = {"X_train": torch.arange(10).float().view(10, 1), "y_train": torch.tensor([0, 1, 0, 1, 1, 0, 1, 0, 0, 1]),
            "X_test": torch.zeros(3, 1), "y_test": torch.tensor([0, 1, 1])}
    half = wakeword.fewer_positives(task, 2)
    assert half["y_train"].tolist() == [0, 1, 0, 1, 0, 0, 0] and half["X_test"] is task["X_test"]
    assert half["X_train"].flatten().tolist() == [0, 1, 2, 3, 5, 7, 8]
    with pytest.raises(ValueError, match="between 1 and 5"):
        wakeword.fewer_positives(task, 6)


def test_notebook_04s_tables_figures_and_live_demo(fake: dict, profile: object) -> None:
    """What notebook 04 shows, as tested functions: the stream table, DET curves, spectrograms, the demo."""
    import matplotlib

    matplotlib.use("Agg")
    from helpers import plots

    rows = wakeword.detector_variants(profile, seeds=(0, 1))
    table = wakeword.stream_table(rows).splitlines()
    assert "FRR@1" in table[0] and len(table) == 1 + len(rows)
    curves = wakeword.det_curves(rows)
    assert list(curves) == list(wakeword.ARMS) and all(0 <= eer <= 1 for _, _, eer in curves.values())
    assert plots.det_curves(curves).axes[0].get_xscale() == "log"
    data = fake["data"]
    task_a = {**data["a"], "words": data["a"]["words"]}
    task_b = {**data["b"], "kind_train": ["wake" if y else "other" for y in data["b"]["y_train"].tolist()]}
    panels = wakeword.example_spectrograms(task_a, task_b)
    assert [title.split(":")[0] for _, title in panels] == ["task A", "task A", "positive", "negative"]
    assert len(plots.spectrograms(panels).axes) == 4
    recognizer, _ = wakeword.pretrained_recognizer(profile)
    detector = wakeword.train_arm("frozen + new layers", recognizer, data["b"], seed=0)
    assert 0.0 <= wakeword.clip_eer(detector, data["b"]) <= 1.0
    demo = {"features": torch.randn(40, 600), "onsets_s": [1.0, 3.5]}
    listened = wakeword.live_demo(detector, data["b"], data["stream"], demo, fa_per_hour=5.0)
    assert set(listened["thresholds"]) == {"5 FA/h", "EER point"} and listened["said"] == [1.0, 3.5]
    assert len(listened["scores"]) == len(listened["times"]) and set(listened["fired"]) == set(listened["thresholds"])
    assert plots.live_demo(listened).axes[0].get_xlabel() == "time (s)"
