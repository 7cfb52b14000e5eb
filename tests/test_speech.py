"""Speech data: eSpeak synthesis, the audio front end, augmentation, voice split and the generated sets."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.config import get_profile, replace_profile
from helpers.data import audio, augment, espeak, speech

SR = espeak.SAMPLE_RATE


# ----------------------------------------------------------------------------- synthesis
def test_synthesis_is_not_silent() -> None:
    wave = espeak.synthesize("hello world", "en-us", "f3")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) > 0.3 * SR
    assert 0.05 < np.abs(wave).max() <= 1.0
    assert np.sqrt(np.mean(wave**2)) > 0.01


def test_duration_follows_the_rate() -> None:
    slow = audio.trim_silence(espeak.synthesize("yesterday", rate=110))
    fast = audio.trim_silence(espeak.synthesize("yesterday", rate=220))
    assert 0.2 * SR < len(fast) < len(slow) < 1.2 * SR
    assert len(slow) / len(fast) > 1.5  # half the rate, roughly twice as long


def test_rate_and_pitch_outside_espeak_limits_are_errors() -> None:
    with pytest.raises(espeak.EspeakError, match="words per minute"):
        espeak.synthesize("hi", rate=40)
    with pytest.raises(espeak.EspeakError, match="pitch"):
        espeak.synthesize("hi", pitch=120)


def test_voices_and_variants_are_listed_and_checked() -> None:
    voices, variants = espeak.list_voices(), espeak.list_variants()
    assert "en-us" in voices and len(voices) >= 8
    assert {"f3", "m1", "klatt"} <= set(variants) and len(variants) >= 90
    with pytest.raises(espeak.EspeakError, match="no voice"):
        espeak.synthesize("hi", voice="xx-nowhere")
    with pytest.raises(espeak.EspeakError, match="variant"):
        espeak.synthesize("hi", variant="no-such-variant")


def test_missing_data_or_library_is_a_clear_error(tmp_path: Path) -> None:
    library, data = espeak._default_paths()
    with pytest.raises(espeak.EspeakError, match="voice data not found"):
        espeak.Engine(library, tmp_path)  # refused before the C library could exit()
    with pytest.raises(espeak.EspeakError, match="library not found"):
        espeak.check_paths(tmp_path / "libespeak-ng.so", data)


def test_pool_in_process_keeps_the_order() -> None:
    jobs = [espeak.Utterance("one"), espeak.Utterance("seventeen thousand")]
    with espeak.SynthesisPool(workers=1) as pool:
        short, long = pool.map(jobs)
    assert short.dtype == np.int16 and len(long) > 2 * len(short)


def test_fresh_synthesis_does_not_depend_on_what_was_said_before() -> None:
    # eSpeak NG's state runs on from one utterance to the next (pitch flutter, noise seeded by the
    # clock): in one process the same clip comes out differently the second time. A new engine
    # per batch makes the course's speech data the same in every build, whatever the workers.
    jobs = [espeak.Utterance("hey nova", "en-us", variant, rate=150) for variant in ("m3", "f2", "klatt")]
    first = espeak.synthesize_fresh(jobs)
    espeak.synthesize("this process says something else first")
    again = espeak.synthesize_fresh([*jobs, None])
    assert again[-1] is None
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=False))
    with espeak.SynthesisPool(workers=1) as pool:
        assert all(np.array_equal(a, b) for a, b in zip(first, pool.map(jobs), strict=True))


# ----------------------------------------------------------------------------- augmentation
def _snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    clean, noisy = clean.double(), noisy.double()
    return 10 * torch.log10(clean.square().mean(-1) / (noisy - clean).square().mean(-1))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 12.5, 30.0])
def test_add_noise_gives_exactly_the_snr(snr_db: float) -> None:
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(3, 16_000, generator=generator) * torch.tensor([[0.01], [0.1], [0.5]])
    noise = augment.coloured_noise(48_000, 1.0, generator).reshape(3, 16_000)
    assert torch.allclose(_snr_db(clean, augment.add_noise(clean, noise, snr_db)),
                          torch.full((3,), snr_db, dtype=torch.float64), atol=1e-3)


def test_add_noise_takes_one_snr_per_row() -> None:
    clean, noise = torch.randn(2, 8_000), torch.randn(2, 8_000)
    snr = torch.tensor([3.0, 20.0])
    assert torch.allclose(_snr_db(clean, augment.add_noise(clean, noise, snr)), snr.double(), atol=1e-3)


def test_silent_noise_never_makes_nan() -> None:
    """Babble cut from a silent stretch is all zeros: no SNR to set, and never NaN features."""
    clean, noise = torch.randn(2, 8_000), torch.randn(2, 8_000)
    noise[1] = 0
    mixed = augment.add_noise(clean, noise, 10.0)
    assert torch.isfinite(mixed).all() and torch.equal(mixed[1], clean[1])
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    silent_donors = torch.zeros(3, 8_000)  # every babble row is silent
    wave = augment.add_background(torch.randn(16, 8_000), silent_donors, rng, augment.Augment(), generator)
    assert torch.isfinite(wave).all() and (audio.power(wave) > 0).all()


def test_reverb_keeps_length_and_level() -> None:
    generator = torch.Generator().manual_seed(1)
    dry = torch.randn(4, 16_000, generator=generator)
    rooms = augment.room_impulses(np.array([0.2, 0.5]), generator)
    wet = augment.reverb(dry, rooms, torch.tensor([0, 1, 1, 0]))
    assert wet.shape == dry.shape
    assert torch.allclose(audio.power(wet), audio.power(dry), rtol=1e-4)
    assert not torch.allclose(wet, dry)


def test_trim_and_place() -> None:
    wave = np.r_[np.zeros(100), np.ones(50), np.zeros(30)].astype(np.float32)
    assert len(audio.trim_silence(wave)) == 50
    rng = np.random.default_rng(0)
    windows, offsets = audio.place([torch.ones(50)] * 20, 80, rng)
    assert windows.shape == (20, 80) and 0 <= offsets.min() and offsets.max() <= 30
    assert torch.all(windows.sum(-1) == 50)  # every clip fully inside its window
    cropped, _ = audio.place([torch.ones(200)] * 5, 80, rng, allow_crop=True)
    assert torch.all(cropped.sum(-1) == 80)


def test_every_noise_kind_is_made() -> None:
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    donors = torch.randn(3, 4_000)
    noise = augment.make_noise(list(augment.NOISE_KINDS), 4_000, donors, rng, generator)
    assert noise.shape == (len(augment.NOISE_KINDS), 4_000)
    assert torch.all(audio.power(noise) > 0)


# ----------------------------------------------------------------------------- features
def test_logmel_shape_and_frames() -> None:
    feats = audio.logmel(torch.randn(3, 16_000) * 0.1)
    assert feats.shape == (3, 1, audio.N_MELS, audio.frames_for(1.0)) == (3, 1, 40, 98)
    assert audio.frames_for(1.5) == 148 and audio.frames_for(3.0) == 298
    assert torch.isfinite(feats).all()


def test_stream_features_equal_clip_features() -> None:
    wave = torch.randn(3 * 16_000) * 0.1
    stream = audio.logmel_stream(wave, chunk_frames=70).float()  # several chunks
    assert stream.shape == (40, audio.n_frames(len(wave)))
    start = 50 * audio.HOP  # a 1-s window starting at frame 50 of the stream
    clip = audio.logmel(wave[None, start:start + 16_000])[0, 0]
    assert torch.allclose(stream[:, 50:50 + 98], clip, atol=0.05)  # float16 storage


def test_render_gives_windows_and_onsets() -> None:
    rng = np.random.default_rng(0)
    raw = [espeak.synthesize_int16(espeak.Utterance("seven")), None]
    wave, onsets = speech.render(raw, 1.5, rng)
    assert wave.shape == (2, 24_000) and wave.abs().max() <= 1.0
    assert 0 <= onsets[0] < 1.5 and torch.all(audio.power(wave) > 0)


# ----------------------------------------------------------------------------- split, vocabulary
def test_split_by_voice_variant_has_no_overlap_and_is_deterministic() -> None:
    split = speech.voice_split()
    assert len(split.test_variants) == speech.N_TEST_VARIANTS
    assert not set(split.train_variants) & set(split.test_variants)
    assert speech.voice_split() == split and speech.voice_split(seed=1) != split
    train, test = set(split.speakers("train")), set(split.speakers("test"))
    assert not train & test and len(test) == len(split.voices) * speech.N_TEST_VARIANTS


def test_vocabulary_and_confusables() -> None:
    words = speech.vocabulary(get_profile("quick").speech_words_a)
    assert len(words) >= 100 and len(set(speech.WORDS_A)) == len(speech.WORDS_A)
    wake_tokens = set(speech.WAKE_PHRASE.split())
    assert not wake_tokens & set(speech.WORDS_A) and not wake_tokens & set(speech.OOV_WORDS)
    assert not set(speech.CONFUSABLES_TEST) & set(speech.CONFUSABLES_TRAIN)
    assert speech.WAKE_PHRASE not in (*speech.CONFUSABLES_TRAIN, *speech.CONFUSABLES_TEST)


# ----------------------------------------------------------------------------- cached sets
@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    return replace_profile(get_profile("quick"), speech_words_a=10, speech_clips_a=40,
                           speech_clips_a_test=20, speech_positives_b=8, speech_negatives_b=24,
                           speech_test_b=16, speech_stream_hours=1 / 60)


def test_task_a_is_built_once_then_loaded_identically(tiny, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = speech.speech_task_a(tiny, workers=1)
    assert first["X_train"].shape == (40, 1, 40, 98) and first["X_test"].shape == (20, 1, 40, 98)
    assert first["y_train"].bincount().tolist() == [4] * 10 and len(first["words"]) == 10
    with monkeypatch.context() as patch:
        patch.setattr(espeak, "synthesize_fresh", None)  # a second build would fail
        patch.setenv("TL_DATA", "real")  # the generator ignores it: helpers.data.sources chooses
        second = speech.speech_task_a(tiny, workers=1)
    assert torch.equal(first["X_train"], second["X_train"])
    assert torch.equal(first["y_test"], second["y_test"])
    # built again from nothing (another data folder): the same data, bit for bit
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "again"))
    rebuilt = speech.speech_task_a(tiny, workers=1)
    assert torch.equal(first["X_train"], rebuilt["X_train"]) and torch.equal(first["X_test"], rebuilt["X_test"])


def test_wake_word_task_shapes_and_kinds(tiny) -> None:
    data = speech.wake_word_task(tiny, workers=1)
    assert data["X_train"].shape == (32, 1, 40, 148) and int(data["y_train"].sum()) == 8
    assert data["X_test"].shape == (16, 1, 40, 298) and data["window_frames"] == 148
    kinds = set(data["kind_train"])
    assert "confusable_test" not in kinds and {"positive", "same_voice", "noise"} <= kinds
    assert "confusable_test" in set(data["kind_test"])
    assert [k == "positive" for k in data["kind_test"]] == data["y_test"].bool().tolist()


def test_negative_stream_and_demo(tiny) -> None:
    stream = speech.negative_stream(tiny, workers=1)
    assert stream["features"].shape == (40, audio.n_frames(60 * 16_000))
    assert stream["hours"] == pytest.approx(1 / 60)
    demo = speech.demo_stream(seconds=12, n_wake=1)
    assert demo["audio"].shape == (12 * 16_000,) and len(demo["onsets_s"]) <= 1
    assert demo["features"].shape[0] == 40


def test_wav_round_trip(tmp_path: Path) -> None:
    wave = torch.sin(torch.linspace(0, 100, 8_000)) * 0.5
    path = audio.save_wav(tmp_path / "sine.wav", wave)
    back, rate = audio.load_wav(path)
    assert rate == audio.SAMPLE_RATE and np.allclose(back, wave.numpy(), atol=1e-4)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    """A synthesis pool's workers do not outlive a parent killed with SIGKILL (Ctrl-C twice, OOM)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, time\n"
        "from helpers.data.espeak import SynthesisPool\n"
        "def worker_pid(_):\n"
        "    time.sleep(0.05)\n"
        "    return os.getpid()\n"
        "if __name__ == '__main__':\n"
        "    pool = SynthesisPool(workers=2)\n"
        "    print(*sorted(set(pool.apply(worker_pid, range(16)))), flush=True)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert pids and parent.pid not in pids
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.2)
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
        assert not alive, f"worker processes {alive} outlived their parent"
    finally:
        parent.kill()


def test_more_positive_speakers_for_a_bigger_wake_word_set() -> None:
    split = speech.voice_split()
    few = speech.positive_speakers(split, seed=0)
    many = speech.positive_speakers(split, seed=0, n=5 * speech.N_POSITIVE_SPEAKERS)
    assert len(set(few)) == speech.N_POSITIVE_SPEAKERS and len(set(many)) == 5 * speech.N_POSITIVE_SPEAKERS
    assert all(variant in split.train_variants for _, variant in many)
    profile = get_profile("quick")
    assert speech.wake_train_config(profile, 100, 0)["speakers"] == speech.N_POSITIVE_SPEAKERS
    assert speech.wake_train_config(profile, 500, 0, n_speakers=40)["speakers"] == 40
