"""The shared audio front end (helpers.data.audio) and the download helpers both data sources use."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from helpers.data import audio, cache, download, speech


# ----------------------------------------------------------------------------- crops
def test_crops_of_a_long_recording_are_its_windows() -> None:
    recording = torch.arange(100, dtype=torch.float32)
    out = audio.crops(recording, 5, 30, np.random.default_rng(0))
    starts = np.random.default_rng(0).integers(71, size=5)  # the same draw: same seed, same crops
    assert out.shape == (5, 30) and out.is_contiguous()
    assert torch.equal(out, torch.stack([recording[s:s + 30] for s in starts]))


def test_crops_repeat_a_recording_shorter_than_the_window() -> None:
    """A real background bank can be shorter than a window: it is repeated, not an error."""
    out = audio.crops(torch.tensor([1.0, 2.0, 3.0]), 4, 8, np.random.default_rng(1))
    assert out.shape == (4, 8)
    assert all(torch.equal(row[3:], row[:5]) for row in out)  # period 3
    assert audio.crops(torch.ones(50), 0, 20, np.random.default_rng(0)).shape == (0, 20)


# ----------------------------------------------------------------------------- layout and payloads
def test_lay_out_stops_at_the_first_clip_that_does_not_fit() -> None:
    taken = []

    def clips():
        for k in range(100):
            taken.append(k)
            yield torch.ones(8_000)  # 0.5 s each

    track, starts = audio.lay_out(clips(), 5 * audio.SAMPLE_RATE, np.random.default_rng(0))
    assert track.shape == (80_000,) and 1 <= len(starts) <= 5
    assert len(taken) == len(starts) + 1  # one clip read to find it does not fit, no more
    assert all(b - a >= 8_000 + 0.3 * audio.SAMPLE_RATE - 1 for a, b in zip(starts, starts[1:]))
    assert float(track.sum()) == 8_000 * len(starts)


def test_split_counts_gives_the_remainder_to_the_first_kind() -> None:
    assert audio.split_counts(10, {"a": 0.25, "b": 0.25, "c": 0.5}) == {"a": 3, "b": 2, "c": 5}
    assert sum(audio.split_counts(37, {"x": 0.3, "y": 0.3, "z": 0.4}).values()) == 37


def test_as_dtype_converts_floating_tensors_only() -> None:
    payload = {"X": torch.zeros(2, dtype=torch.float16), "y": torch.ones(2, dtype=torch.int64), "words": ["a"]}
    out = audio.as_dtype(payload, torch.float32)
    assert out["X"].dtype == torch.float32 and out["y"].dtype == torch.int64 and out["words"] == ["a"]


# ----------------------------------------------------------------------------- resampling and files
def test_resample_from_espeak_and_from_any_rate() -> None:
    wave = torch.randn(22_050)
    assert audio.resample(wave).shape == (16_000,)  # eSpeak's 22,050 Hz by default
    assert audio.resample(wave[:8_000], 8_000).shape == (16_000,)
    assert audio.resample(wave[:16_000], 16_000).data_ptr() == wave.data_ptr()  # nothing to do
    assert torch.allclose(audio.resample(wave[:8_000], 8_000),
                          torchaudio.functional.resample(wave[:8_000], 8_000, 16_000), atol=1e-5)


def test_read_clip_gives_16khz_mono_float(tmp_path: Path) -> None:
    t = np.arange(8_000) / 8_000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1) * 0.5
    soundfile.write(str(tmp_path / "a.wav"), stereo, 8_000, subtype="PCM_16")
    clip = audio.read_clip(tmp_path / "a.wav")
    assert clip.dtype == torch.float32 and clip.shape == (16_000,)
    assert 0.3 < float(audio.power(clip)) ** 0.5 < 0.4  # a sine of amplitude 0.5: RMS 0.354


def test_speech_still_offers_the_audio_front_end() -> None:
    """Notebook 04 and scripts read these through helpers.data.speech."""
    for name in ("SAMPLE_RATE", "N_MELS", "N_FFT", "HOP", "FRAME_RATE", "WINDOW_A_S", "WINDOW_B_S", "CONTEXT_B_S",
                 "n_frames", "frames_for", "logmel", "logmel_stream", "to_int16", "save_wav", "load_wav"):
        assert getattr(speech, name) is getattr(audio, name), name


# ----------------------------------------------------------------------------- digests
@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_file_digest_is_hashlib_of_the_whole_file(tmp_path: Path, algorithm: str) -> None:
    data = np.random.default_rng(0).bytes((1 << 22) + 123)  # more than one block
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert download.file_digest(path, algorithm) == hashlib.new(algorithm, data).hexdigest()
    assert cache._sha256(path) == hashlib.sha256(data).hexdigest()  # the cache uses the same helper


def test_download_module_loads_torchvision_only_when_it_downloads() -> None:
    """helpers.data.cache imports helpers.data.download: it must stay light. So must what the notebooks and
    prepare's workers import (helpers.data.real among them): torchvision costs every process ~1.5 s."""
    code = ("import sys, helpers.data.cache, helpers.data.download, helpers.data.real, helpers.experiments, "
            "helpers.wakeword, helpers.custom_wake, helpers.plots, helpers.widgets; "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"
