"""Your own wake word (notebook 07): phrase checks, confusables, a detector for another phrase
built end to end on small data, export and the ``helpers.listen`` command, the other synthesiser.

The detector test synthesises real (small) data with eSpeak in this process and trains on it; the
encoder is a random KeywordNet (no task-A training here): it checks the plumbing, not the numbers
(notebook 07 asserts those).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import custom_wake, listen, models
from helpers.config import get_profile
from helpers.data import espeak, flite, speech


@pytest.mark.parametrize(("phrase", "says"), [
    ("", "empty"), ("   ", "empty"), ("hey 42", "English letters"), ("привет робот", "English letters"),
    ("banana", "task A's words"), ("turn on the light", "every word"), ("hey bob", "too short"),
    ("hey supercalifragilisticexpialidocious computer", "too long"),
])
def test_bad_phrases_say_why(phrase: str, says: str) -> None:
    with pytest.raises(custom_wake.PhraseError, match=says):
        custom_wake.check_phrase(phrase)


def test_a_good_phrase_is_normalised() -> None:
    assert custom_wake.check_phrase("  Okay,  Robot! ") == "okay robot"
    assert custom_wake.syllables("hey nova") == 3


def test_confusables_share_sounds_and_keep_a_test_part_apart() -> None:
    train, test = custom_wake.confusables("okay robot")
    assert train and test and not set(train) & set(test)
    every = set(train) | set(test)
    assert "okay robot" not in every
    assert {"robot", "okay"} <= every  # the words alone
    assert any(c.endswith(" robot") and c != "okay robot" for c in every)  # one sound changed / a carrier word
    assert custom_wake.confusables("okay robot") == (train, test)  # deterministic


def test_a_detector_for_another_phrase_on_small_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))
    profile = get_profile("quick")
    recipe = custom_wake.CustomRecipe(positives=40, negatives=60, stream_hours=0.01, test_positives=10,
                                      test_confusables=10, epochs=1, batch_size=32)
    phrase = custom_wake.check_phrase("okay robot")
    data = custom_wake.custom_data(phrase, recipe, profile, workers=1)
    assert data["X_train"].shape == (100, 1, 40, 148) and int(data["y_train"].sum()) == 40
    assert data["X_test"].shape[-1] == 298 and sum(k.startswith("positive") for k in data["kind_test"]) == 10
    assert data["kind_train"].count("positive_context") == 20 and data["kind_test"].count("positive_context") == 5
    stream = custom_wake.training_stream(profile, recipe.stream_hours, workers=1)
    test_stream = speech.negative_stream(profile, workers=1, hours=0.01)
    torch.manual_seed(0)
    recognizer = models.KeywordNet(num_classes=5, width=16)  # the course's width (torch 2.14 on CPU crashed in backward
    # with width 8, two threads and a partial last batch: channel counts like 12 are avoided)
    for arm in custom_wake.ARMS:
        model = custom_wake.train_arm(arm, recognizer, data, stream, recipe, seed=0, device=torch.device("cpu"))
        frozen = arm == "frozen + new layers"
        assert all(p.requires_grad != frozen for p in model.features.parameters())
        out = custom_wake.evaluate(model, data, test_stream)
        for key in ("frr_at_1fa", "frr_at_5fa", "confusable_accept_at_1fa", "eer_vs_confusables"):
            assert 0.0 <= out[key] <= 1.0, key
        assert out["threshold_1fa"] >= out["threshold_5fa"]
    # the pre-trained encoder is copied, never changed in place
    assert models.count_parameters(recognizer) == models.count_parameters(models.KeywordNet(num_classes=5, width=16))

    # export, load back, listen (the API and the command line)
    path = custom_wake.export(model, tmp_path / "okay_robot.pt2", phrase, out["threshold_1fa"], 1.0)
    scripted, meta = custom_wake.load_exported(path)
    assert meta["phrase"] == phrase and meta["window_frames"] == 148
    window = data["X_train"][:4].float()
    assert torch.allclose(scripted(window), model(window), atol=1e-5)
    assert meta["scored_in"] in ("bf16 autocast", "fp32")
    # listening scores an exported detector as the evaluation scored it (the threshold's arithmetic)
    assert torch.allclose(custom_wake.score_fn(scripted)(window), custom_wake.score_fn(model)(window), atol=0.05)
    recording = custom_wake.save_recording(tmp_path / "rec.wav", torch.zeros(16_000 * 3))
    fired, scores, _ = custom_wake.listen(scripted, {**meta, "threshold": float("inf")},
                                          custom_wake.read_recording(recording))
    assert fired == [] and len(scores) > 0


def test_listen_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = custom_wake.SequenceDetector(custom_wake.encoder_of(models.KeywordNet(num_classes=3, width=8)),
                                         (8,), 148)
    path = custom_wake.export(model.eval(), tmp_path / "d.pt2", "okay robot", threshold=-1e9, fa_per_hour=1.0)
    recording = custom_wake.save_recording(tmp_path / "r.wav", 0.01 * torch.randn(16_000 * 4))
    assert listen.main([str(path), str(recording)]) == 0
    assert "fired at" in capsys.readouterr().out  # a threshold of -1e9 fires on everything
    assert listen.main([str(tmp_path / "missing.pt2"), str(recording)]) == 2
    assert "no detector" in capsys.readouterr().err
    (tmp_path / "junk.pt2").write_bytes(b"not a model")
    assert listen.main([str(tmp_path / "junk.pt2"), str(recording)]) == 2


def test_flite_missing_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flite.shutil, "which", lambda _name: None)
    assert not flite.available() and custom_wake.other_synth("hey nova") is None
    assert custom_wake.other_synth_words(get_profile("quick")) is None  # notebook 07 then says what to do
    with pytest.raises(flite.FliteError, match="apt-get install flite"):
        flite.synthesize(flite.FliteJob("hey nova"))


def test_task_a_words_said_by_another_synthesiser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Notebook 07's encoder check reads task A's words said by Flite (here a fake: eSpeak's default
    voice says them), rendered like task A's clips and labelled by word, built once and cached."""
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(flite, "available", lambda: True)
    said: list[str] = []

    def fake_flite(texts: list[str], _rng: np.random.Generator) -> list[np.ndarray]:
        said.extend(texts)
        return espeak.synthesize_fresh([espeak.Utterance(text) for text in texts])

    monkeypatch.setattr(custom_wake, "_flite_raw", fake_flite)
    monkeypatch.setattr(custom_wake, "OTHER_WORDS_PER_WORD", 2)
    profile = dataclasses.replace(get_profile("quick"), speech_words_a=3)
    words = speech.vocabulary(3)
    other = custom_wake.other_synth_words(profile)
    again = custom_wake.other_synth_words(profile)  # cached: the same clips, nothing said again
    assert len(said) == 6 and sorted(said) == sorted(words * 2)
    assert other["X"].shape == (6, 1, 40, 98) and other["X"].dtype == torch.float16
    assert [words[k] for k in other["y"].tolist()] == said and torch.equal(again["X"], other["X"])
    # the shape task A's recognizer reads: one logit per word
    assert models.KeywordNet(num_classes=3, width=16).eval()(other["X"].float()).shape == (6, 3)


@pytest.mark.skipif(not flite.available(), reason="Flite is not installed (make other-voices)")
def test_flite_speaks() -> None:
    audio = flite.synthesize(flite.FliteJob("hey nova", "slt", stretch=1.2, f0_hz=150))
    assert audio.dtype == np.float32 and 0.3 * flite.SAMPLE_RATE < len(audio) < 3 * flite.SAMPLE_RATE
    with pytest.raises(flite.FliteError, match="unknown Flite voice"):
        flite.synthesize(flite.FliteJob("hey nova", "nobody"))


def test_prepare_builds_the_longest_runs_first_in_every_worker(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """Notebook 07's runs are a queue both prepare workers take from in the same order, longest
    first, so neither waits for the other's long run at the end (issue 17)."""
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path))
    for name in ("custom_data", "training_stream", "other_synth", "other_synth_words", "demo_recordings"):
        monkeypatch.setattr(custom_wake, name, lambda *args, **kwargs: None)
    built: list[tuple[float, str, int]] = []

    def run(profile, phrase, recipe, arm, seed, fraction=1.0):  # noqa: ANN001, ANN202
        built.append((fraction, arm, seed))
        return {"positives": 1, "frr_at_1fa": 0.0}

    monkeypatch.setattr(custom_wake, "run", run)
    profile = get_profile("quick")
    orders = []
    for second_worker in (False, True):
        monkeypatch.setattr(custom_wake.cache, "REVERSED", second_worker)
        built.clear()
        custom_wake.prepare(profile)
        orders.append(list(built))
    assert orders[0] == orders[1]
    seeds = len(profile.seeds)
    assert all(f == 1.0 and arm in ("all layers", "scratch") for f, arm, _ in orders[0][:2 * seeds])
    assert [f for f, _, _ in orders[0][2 * seeds:-seeds]] == sorted(custom_wake.scale_fractions(profile)[:-1] * 2,
                                                                     reverse=True)
    assert {arm for _, arm, _ in orders[0][-seeds:]} == {"frozen + new layers"}
    assert len(set(orders[0])) == len(orders[0]) == 3 * seeds + 2 * (len(custom_wake.scale_fractions(profile)) - 1)
