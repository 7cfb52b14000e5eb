"""The shared audio front end of the speech data: the generator and the real-data converter use it.

* constants: 16-kHz audio, 40 log-mel bands, 25-ms windows, 10-ms hops, and the clip lengths of
  the course's two speech tasks;
* signal steps: resampling, trimming, loudness, placement in a window, laying clips out in a
  track, random crops of a long recording, levels and int16 conversion;
* features: log-mel of clips and of long streams (the same frames either way);
* WAV files (soundfile: ``torchaudio.load`` needs FFmpeg, which this course does not install);
* two small payload helpers shared by both data sources (dtype conversion, kind counts).

A leaf module: it imports only numpy, torch, torchaudio and the standard library.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio

SAMPLE_RATE = 16_000  # Hz, the rate of every clip and feature of the course
ESPEAK_RATE = 22_050  # Hz, what eSpeak NG produces (helpers.data.espeak.SAMPLE_RATE)
N_MELS = 40
N_FFT = 400  # 25-ms analysis window
HOP = 160  # 10-ms frame hop: 100 frames per second
FRAME_RATE = SAMPLE_RATE / HOP
WINDOW_A_S = 1.0  # task-A clip length (seconds); every word fits at the slowest rate
WINDOW_B_S = 1.5  # wake-word window: "hey nova" runs > 1 s at slow rates
CONTEXT_B_S = 3.0  # wake-word test clip: the phrase somewhere in 3 s, scored by its best window


# ----------------------------------------------------------------------------- signal steps
@functools.lru_cache(maxsize=4)
def _resampler(source_rate: int) -> torchaudio.transforms.Resample:
    # Built once per rate: constructing the polyphase kernel costs more than applying it.
    return torchaudio.transforms.Resample(source_rate, SAMPLE_RATE)


def resample(audio: np.ndarray | torch.Tensor, source_rate: int = ESPEAK_RATE) -> torch.Tensor:
    """Audio [..., t] at ``source_rate`` (eSpeak's 22,050 Hz by default) -> float32 at 16 kHz."""
    wave = torch.as_tensor(audio, dtype=torch.float32)
    if source_rate == SAMPLE_RATE:
        return wave
    with torch.no_grad():
        return _resampler(source_rate)(wave)


def trim_silence(audio: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    """``audio`` without its leading and trailing near-silence (eSpeak pads with zeros)."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return audio[loud[0]:loud[-1] + 1] if loud.size else audio[:0]


def normalise_loudness(audio: np.ndarray, level_dbfs: float) -> np.ndarray:
    """``audio`` scaled so that its RMS is ``level_dbfs`` (dB relative to full scale)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return audio * (10 ** (level_dbfs / 20) / rms) if rms > 0 else audio


def power(x: torch.Tensor) -> torch.Tensor:
    """Mean power of each row of ``x`` (last dimension), in float64."""
    return x.square().mean(dim=-1).double()


def set_level(noise: torch.Tensor, level_dbfs: torch.Tensor) -> torch.Tensor:
    """``noise`` scaled so that each row's RMS is ``level_dbfs``."""
    gain = 10 ** (level_dbfs.double() / 20) / power(noise).sqrt().clamp_min(1e-12)
    return noise * gain.to(noise.dtype).unsqueeze(-1)


def to_int16(audio: torch.Tensor) -> torch.Tensor:
    """Float audio in [-1, 1] -> int16 (half the bytes; what WAV files hold)."""
    return (audio.clamp(-1, 1) * 32767).round().to(torch.int16)


def place(clips: Sequence[np.ndarray | torch.Tensor], length: int, rng: np.random.Generator,
          allow_crop: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """Put each clip at a random offset in a zero window of ``length`` samples.

    A clip longer than the window is centred (words) or, with ``allow_crop``, cut at a random
    place (crops of continuous speech). Returns the windows [n, length] and the offsets
    (negative: the clip starts before the window).
    """
    out = torch.zeros(len(clips), length)
    offsets = np.zeros(len(clips), np.int64)
    for i, clip in enumerate(clips):
        spare = length - len(clip)
        low, high = (min(0, spare), max(0, spare)) if allow_crop or spare >= 0 else (spare // 2,) * 2
        offsets[i] = start = int(rng.integers(low, high, endpoint=True))
        piece = torch.as_tensor(clip[max(0, -start):max(0, -start) + length])
        out[i, max(0, start):max(0, start) + len(piece)] = piece
    return out, offsets


def lay_out(clips: Iterable[torch.Tensor], length: int, rng: np.random.Generator,
            gap_s: tuple[float, float] = (0.3, 2.0)) -> tuple[torch.Tensor, list[int]]:
    """Clips one after another with random pauses, in a track of ``length`` samples.

    Returns the track and the start of each clip that fitted; ``clips`` is consumed lazily
    and left alone once the track is full (so no clip is synthesised or read for nothing).
    """
    track = torch.zeros(length)
    starts, cursor = [], int(rng.uniform(*gap_s) * SAMPLE_RATE)
    for clip in clips:
        if cursor + len(clip) > length:
            break
        track[cursor:cursor + len(clip)] = clip
        starts.append(cursor)
        cursor += len(clip) + int(rng.uniform(*gap_s) * SAMPLE_RATE)
    return track, starts


def crops(recording: torch.Tensor, n: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` random crops [n, length] of a 1-D recording (repeated first when it is too short).

    Generated noise is always long enough; a real background bank may not be.
    """
    if len(recording) < length:
        recording = recording.repeat(length // len(recording) + 1)
    starts = torch.as_tensor(rng.integers(len(recording) - length + 1, size=n))
    return recording.unfold(0, length, 1)[starts]  # a strided view, copied only for these rows


# ----------------------------------------------------------------------------- features
@functools.lru_cache(maxsize=1)
def _mel() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, f_min=20.0,
        f_max=SAMPLE_RATE / 2, center=False, power=2.0)


def n_frames(n_samples: int) -> int:
    """Log-mel frames of ``n_samples`` samples (no padding at the ends)."""
    return 1 + (n_samples - N_FFT) // HOP


def frames_for(seconds: float) -> int:
    """Log-mel frames of a clip of ``seconds``: 1.0 s -> 98, 1.5 s -> 148, 3.0 s -> 298."""
    return n_frames(round(seconds * SAMPLE_RATE))


def logmel(wave_batch: torch.Tensor) -> torch.Tensor:
    """Log-mel features [n, 1, 40, frames] (dB, absolute level) of waves [n, samples] at 16 kHz.

    No per-clip normalisation (no top_db relative to the clip's maximum), so a window cut out
    of a long stream's features equals the features of the same audio as a clip.
    """
    with torch.no_grad():
        mel = _mel()(wave_batch.float())
    return (10.0 * torch.log10(mel.clamp_min(1e-10))).unsqueeze(1)


def logmel_stream(audio: torch.Tensor, chunk_frames: int = 6_000) -> torch.Tensor:
    """Log-mel features [40, frames] (float16) of a long 1-D recording, computed in chunks.

    Chunks overlap by N_FFT - HOP samples, so the frames are exactly those of one long pass.
    """
    total = n_frames(len(audio))
    parts = []
    for first in range(0, total, chunk_frames):
        last = min(total, first + chunk_frames)
        piece = audio[first * HOP:(last - 1) * HOP + N_FFT]
        parts.append(logmel(piece.unsqueeze(0))[0, 0].half())
    return torch.cat(parts, dim=-1)


# ----------------------------------------------------------------------------- WAV files
def save_wav(path: str | Path, audio: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE
             ) -> Path:
    """Write mono ``audio`` (float in [-1, 1] or int16) as a 16-bit WAV file; returns the path."""
    import soundfile  # here, not at import: only needed for files

    data = audio.numpy() if torch.is_tensor(audio) else np.asarray(audio)
    if data.dtype != np.int16:
        data = np.clip(data, -1.0, 1.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data, sample_rate, subtype="PCM_16")
    return path


def load_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV file as float32 mono in [-1, 1]; returns (audio, sample_rate)."""
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def read_clip(path: str | Path) -> torch.Tensor:
    """A WAV file as a float32 mono tensor at 16 kHz (resampled if it has another rate)."""
    audio, rate = load_wav(path)
    return resample(np.ascontiguousarray(audio, np.float32), rate)


# ----------------------------------------------------------------------------- payloads
def as_dtype(payload: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """``payload`` with every floating-point tensor converted to ``dtype`` (others unchanged)."""
    return {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in payload.items()}


def split_counts(total: int, mix: dict[str, float]) -> dict[str, int]:
    """Split ``total`` by the shares of ``mix``; the rounding remainder goes to the first kind."""
    counts = {kind: int(total * share) for kind, share in mix.items()}
    counts[next(iter(mix))] += total - sum(counts.values())
    return counts
