"""Offline speech data: a word recognizer (task A) and a wake-word detector (task B).

Everything is synthesised locally with eSpeak NG (:mod:`helpers.data.espeak`), augmented
(rate, pitch, loudness, position, reverb, background noise at a chosen SNR), turned into
log-mel features and cached with :func:`helpers.data.cache.load_or_build`. eSpeak's output
varies slightly from call to call, so the *cache* is what makes a data set reproducible: it is
built once and then always loaded.

Voices are split by eSpeak *variant* (a speaker: pitch, formants, breathiness): test clips come
from variants never heard in training, in every accent.

Main entry points (each returns tensors ready for training)::

    speech_task_a(profile)           # dict(X_train, y_train, X_test, y_test, words, ...)
    wake_word_task(profile)          # dict(X_train, y_train, X_test, y_test, kind_test, ...)
    negative_stream(profile)         # dict(features [40, T], hours, frame_rate)
    demo_stream(seconds=45, seed=0)  # dict(audio, sample_rate, onsets_s, features, ...)
    prepare(profile)                 # builds all of the above into the cache
"""
from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio

from helpers.config import Profile, get_profile
from helpers.data import espeak
from helpers.data.cache import load_or_build
from helpers.data.espeak import R, SynthesisPool, T, Utterance

VERSION = 2  # bump when the generator changes: every cached speech set is rebuilt
SAMPLE_RATE = 16_000  # Hz, after resampling eSpeak's 22,050 Hz
N_MELS = 40
N_FFT = 400  # 25-ms analysis window
HOP = 160  # 10-ms frame hop: 100 frames per second
FRAME_RATE = SAMPLE_RATE / HOP
WINDOW_A_S = 1.0  # task-A clip length (seconds); every word fits at the slowest rate
WINDOW_B_S = 1.5  # wake-word window: "hey nova" runs > 1 s at slow rates
CONTEXT_B_S = 3.0  # wake-word test clip: the phrase somewhere in 3 s, scored by its best window
N_TEST_VARIANTS = 25  # voice variants held out for testing (of ~100)
WAKE_PHRASE = "hey nova"

# Task A: a closed vocabulary of common words, chosen to avoid homophones ("two" but no "to").
WORDS_A: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "apple", "banana", "orange", "water", "coffee", "music", "light", "door", "window", "kitchen",
    "table", "chair", "phone", "money", "paper", "river", "mountain", "garden", "morning", "evening",
    "today", "tomorrow", "yesterday", "weather", "summer", "winter", "spring", "green", "blue",
    "yellow", "purple", "black", "white", "brown", "silver", "open", "close", "start", "finish",
    "pause", "next", "back", "repeat", "volume", "louder", "quiet", "call", "message", "timer",
    "alarm", "minute", "number", "letter", "picture", "camera", "video", "movie", "story", "book",
    "school", "teacher", "doctor", "family", "mother", "father", "sister", "brother", "friend",
    "people", "city", "street", "train", "plane", "bicycle", "ticket", "dinner", "lunch",
    "breakfast", "bread", "cheese", "chicken", "potato", "tomato", "pizza", "sugar", "little",
    "large", "warm", "cold", "fast", "slow", "early", "late", "always", "maybe", "please", "thank",
    "sorry", "welcome", "question", "answer", "problem", "reason", "idea", "simple", "different",
    "important", "special", "wonderful", "beautiful", "animal", "horse", "rabbit", "turtle",
    "elephant", "monkey", "tiger", "dragon", "rocket", "planet",
)
# Task-B negatives that task A never saw.
OOV_WORDS: tuple[str, ...] = (
    "hello", "hurry", "heavy", "honey", "never", "notice", "novel", "nobody", "heaven", "hover",
    "cover", "later", "north", "ocean", "garage", "jelly", "puzzle", "candle", "velvet", "whistle",
    "lemon", "pencil", "magnet", "bottle", "ladder", "engine", "island", "harbor", "forest",
    "nature", "noble", "total", "local", "vocal", "good morning", "how are you", "what time is it",
    "turn on the light", "see you later", "not now",
)
# Phrases that sound like the wake phrase. The test-only ones are never used in training.
CONFUSABLES_TRAIN: tuple[str, ...] = (
    "hey nora", "nova", "hey", "hey over", "hey now", "okay nova", "hey november", "hey nolan",
    "hey sofa", "play nova",
)
CONFUSABLES_TEST: tuple[str, ...] = (
    "hey mona", "hey rover", "say nova", "hey noah", "hey lover", "hey joanna",
)
NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown", "hum", "babble")


@dataclass(frozen=True)
class Augment:
    """Random conditions of one rendered clip (ranges are uniform, units in the names)."""

    rate_wpm: tuple[int, int] = (110, 220)  # speaking rate
    pitch: tuple[int, int] = (20, 80)  # eSpeak 0-100
    pitch_range: tuple[int, int] = (10, 90)  # eSpeak 0-100 (monotone ... lively)
    level_dbfs: tuple[float, float] = (-29.0, -17.0)  # speech RMS
    snr_db: tuple[float, float] = (5.0, 30.0)  # speech-to-noise ratio
    noise_only_dbfs: tuple[float, float] = (-55.0, -25.0)  # noise RMS when there is no speech
    reverb_prob: float = 0.5
    rt60_s: tuple[float, float] = (0.1, 0.6)  # room reverberation time


AUGMENT = Augment()


# ----------------------------------------------------------------------------- voices
@dataclass(frozen=True)
class VoiceSplit:
    """Accents shared by both sides; variants (speakers) disjoint between train and test."""

    voices: tuple[str, ...]
    train_variants: tuple[str, ...]
    test_variants: tuple[str, ...]

    def speakers(self, split: str) -> list[tuple[str, str]]:
        """Every (voice, variant) pair of ``split`` ('train' or 'test')."""
        variants = self.train_variants if split == "train" else self.test_variants
        return [(voice, variant) for voice in self.voices for variant in variants]


def voice_split(n_test_variants: int = N_TEST_VARIANTS, seed: int = 0) -> VoiceSplit:
    """Hold out ``n_test_variants`` voice variants for testing, chosen by ``seed``."""
    variants = espeak.list_variants()
    if not 0 < n_test_variants < len(variants):
        raise ValueError(f"n_test_variants must be in 1..{len(variants) - 1}, got {n_test_variants}")
    order = np.random.default_rng(seed).permutation(len(variants))
    test = sorted(variants[i] for i in order[:n_test_variants])
    train = sorted(variants[i] for i in order[n_test_variants:])
    return VoiceSplit(tuple(espeak.list_voices()), tuple(train), tuple(test))


def make_jobs(texts: Sequence[str], speakers: Sequence[tuple[str, str]], rng: np.random.Generator,
              augment: Augment = AUGMENT) -> list[Utterance]:
    """One synthesis job per text, each with a random speaker, rate, pitch and range."""
    picks = rng.integers(len(speakers), size=len(texts))
    rates = rng.integers(*augment.rate_wpm, size=len(texts), endpoint=True)
    pitches = rng.integers(*augment.pitch, size=len(texts), endpoint=True)
    ranges = rng.integers(*augment.pitch_range, size=len(texts), endpoint=True)
    return [Utterance(text, *speakers[k], int(r), int(p), int(g))
            for text, k, r, p, g in zip(texts, picks, rates, pitches, ranges)]


# ----------------------------------------------------------------------------- signal steps
def trim_silence(audio: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    """``audio`` without its leading and trailing near-silence (eSpeak pads with zeros)."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return audio[loud[0]:loud[-1] + 1] if loud.size else audio[:0]


def normalise_loudness(audio: np.ndarray, level_dbfs: float) -> np.ndarray:
    """``audio`` scaled so that its RMS is ``level_dbfs`` (dB relative to full scale)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return audio * (10 ** (level_dbfs / 20) / rms) if rms > 0 else audio


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


@functools.lru_cache(maxsize=1)
def _resampler() -> torchaudio.transforms.Resample:
    # Built once: constructing the polyphase kernel costs more than applying it.
    return torchaudio.transforms.Resample(espeak.SAMPLE_RATE, SAMPLE_RATE)


def resample(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Audio [..., t] at 22,050 Hz -> [..., t'] at 16 kHz."""
    with torch.no_grad():
        return _resampler()(torch.as_tensor(audio, dtype=torch.float32))


def power(x: torch.Tensor) -> torch.Tensor:
    """Mean power of each row of ``x`` (last dimension), in float64."""
    return x.square().mean(dim=-1).double()


def add_noise(clean: torch.Tensor, noise: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
    """``clean + g * noise`` with the gain g that makes the SNR exactly ``snr_db`` (per row).

    The SNR is 10 log10(mean(clean^2) / mean((g noise)^2)), over the whole window. A row of
    noise that is all zeros has no SNR to set: its clean row is returned unchanged (not NaN).
    """
    snr = torch.as_tensor(snr_db, dtype=torch.float64)
    noise_power = power(noise)
    gain = torch.sqrt(power(clean) / (noise_power.clamp_min(1e-300) * 10 ** (snr / 10)))
    gain = torch.where(noise_power > 0, gain, torch.zeros_like(gain))
    return clean + gain.to(clean.dtype).unsqueeze(-1) * noise


def set_level(noise: torch.Tensor, level_dbfs: torch.Tensor) -> torch.Tensor:
    """``noise`` scaled so that each row's RMS is ``level_dbfs``."""
    gain = 10 ** (level_dbfs.double() / 20) / power(noise).sqrt().clamp_min(1e-12)
    return noise * gain.to(noise.dtype).unsqueeze(-1)


def coloured_noise(length: int, exponent: float, generator: torch.Generator) -> torch.Tensor:
    """Noise [length] with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    white = torch.randn(length, generator=generator)
    if exponent == 0:
        return white
    freqs = torch.fft.rfftfreq(length).clamp_min(1.0 / length)
    return torch.fft.irfft(torch.fft.rfft(white) / freqs ** (exponent / 2), n=length)


def hum(length: int, mains_hz: float, generator: torch.Generator) -> torch.Tensor:
    """Mains hum [length]: ``mains_hz`` and a few harmonics at random phases, a little hiss."""
    t = torch.arange(length) / SAMPLE_RATE
    wave = 0.05 * torch.randn(length, generator=generator)
    for harmonic, amplitude in ((1, 1.0), (2, 0.5), (3, 0.3), (5, 0.1)):
        phase = 2 * math.pi * float(torch.rand(1, generator=generator))
        wave += amplitude * torch.sin(2 * math.pi * harmonic * mains_hz * t + phase)
    return wave


def steady_noise(kind: str, length: int, generator: torch.Generator) -> torch.Tensor:
    """A recording [length] of one steady noise kind: white, pink, brown or hum."""
    if kind == "hum":
        mains_hz = 50.0 if float(torch.rand(1, generator=generator)) < 0.5 else 60.0
        return hum(length, mains_hz, generator)
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
    return coloured_noise(length, exponent, generator)


def _crops(recording: torch.Tensor, n: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    starts = torch.as_tensor(rng.integers(len(recording) - length + 1, size=n))
    return recording.unfold(0, length, 1)[starts]  # a strided view, copied only for these rows


def babble(n: int, length: int, donors: torch.Tensor, rng: np.random.Generator,
           talkers: int = 4) -> torch.Tensor:
    """Background talkers: each row the sum of ``talkers`` randomly shifted donor rows.

    ``donors`` must come from the same split (same voices) as the clips, so babble never
    leaks a test voice into training.
    """
    out = torch.zeros(n, length)
    for _ in range(talkers):
        rows = torch.as_tensor(rng.integers(len(donors), size=n))
        out += torch.roll(donors[rows], int(rng.integers(length)), dims=-1)
    return out


def make_noise(kinds: Sequence[str], length: int, donors: torch.Tensor, rng: np.random.Generator,
               generator: torch.Generator) -> torch.Tensor:
    """One noise row [length] per entry of ``kinds`` (see NOISE_KINDS).

    Rows of a steady kind are random crops of one longer recording: cheaper than shaping a
    spectrum per row, and as varied once levels and SNRs are random.
    """
    noise = torch.zeros(len(kinds), length)
    kinds_arr = np.asarray(kinds)
    for kind in NOISE_KINDS:
        rows = np.flatnonzero(kinds_arr == kind)
        if not len(rows):
            continue
        if kind == "babble":
            noise[rows] = babble(len(rows), length, donors, rng)
        else:
            source = steady_noise(kind, length * (1 + min(len(rows), 7)), generator)
            noise[rows] = _crops(source, len(rows), length, rng)
    return noise


def fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFTs of such sizes are fast (a prime factor is slow)."""
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power3 = power5
        while power3 < best:
            size = power3 * (1 << max(0, (-(-n // power3) - 1).bit_length()))
            best = min(best, size)
            power3 *= 3
        power5 *= 5
    return best


def room_impulses(rt60_s: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """Simple rooms [k, samples]: a direct path plus exponentially decaying noise.

    ``rt60_s`` is the time for the tail to decay by 60 dB.
    """
    rt60 = torch.as_tensor(rt60_s, dtype=torch.float32).unsqueeze(-1)
    t = torch.arange(int(SAMPLE_RATE * float(rt60.max()))) / SAMPLE_RATE
    decay = torch.exp(-6.91 * t / rt60)  # ln(1000) = 6.91: -60 dB at rt60
    impulses = 0.3 * torch.randn(len(rt60), len(t), generator=generator) * decay
    impulses[:, 0] = 1.0  # the direct sound
    return impulses


def reverb(batch: torch.Tensor, impulses: torch.Tensor, which: torch.Tensor | None = None
           ) -> torch.Tensor:
    """Each row of ``batch`` convolved with a room impulse (row ``which[i]`` of ``impulses``).

    The output keeps the input's length (the tail past the window is cut) and its RMS.
    """
    length = batch.shape[-1]
    size = fft_size(length + impulses.shape[-1])
    rooms = torch.fft.rfft(impulses, size)
    rooms = rooms[which] if which is not None else rooms
    wet = torch.fft.irfft(torch.fft.rfft(batch, size) * rooms, size)[..., :length]
    return wet * (power(batch) / power(wet).clamp_min(1e-20)).sqrt().to(wet.dtype).unsqueeze(-1)


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
    """Log-mel features [40, frames] of a long 1-D recording, computed in chunks of memory.

    Chunks overlap by N_FFT - HOP samples, so the frames are exactly those of one long pass.
    """
    total = n_frames(len(audio))
    parts = []
    for first in range(0, total, chunk_frames):
        last = min(total, first + chunk_frames)
        piece = audio[first * HOP:(last - 1) * HOP + N_FFT]
        parts.append(logmel(piece.unsqueeze(0))[0, 0].half())
    return torch.cat(parts, dim=-1)


# ----------------------------------------------------------------------------- rendering
def prepare_clips(raw: Sequence[np.ndarray | None], rng: np.random.Generator,
                  augment: Augment = AUGMENT) -> list[torch.Tensor]:
    """Trim, normalise loudness and resample to 16 kHz; None (a noise-only clip) -> empty."""
    levels = rng.uniform(*augment.level_dbfs, size=len(raw))
    out = []
    for clip, level in zip(raw, levels):
        audio = np.zeros(0, np.float32) if clip is None else clip.astype(np.float32) / 32768.0
        audio = normalise_loudness(trim_silence(audio), float(level)).astype(np.float32)
        out.append(resample(audio) if audio.size else torch.zeros(0))
    return out


def render(raw: Sequence[np.ndarray | None], seconds: float, rng: np.random.Generator,
           augment: Augment = AUGMENT, allow_crop: np.ndarray | None = None,
           donor_mask: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Turn raw eSpeak clips (int16 at 22,050 Hz; None = no speech) into 16-kHz training audio.

    Steps: trim, loudness, resampling, random placement, reverb (some clips), background noise
    at a random SNR. ``donor_mask`` marks the clips that may serve as babble (never the wake
    word in a negative's background). Returns audio [n, seconds * 16 kHz] and the onset of each
    clip in seconds.
    """
    length = round(seconds * SAMPLE_RATE)
    clips = prepare_clips(raw, rng, augment)
    crop = np.zeros(len(clips), bool) if allow_crop is None else np.asarray(allow_crop, bool)
    speech, offsets = _place_mixed(clips, length, rng, crop)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    speech = _maybe_reverb(speech, rng, augment, generator)
    donors = speech if donor_mask is None else speech[torch.as_tensor(np.asarray(donor_mask, bool))]
    audio = _add_background(speech, donors if len(donors) else speech, rng, augment, generator)
    return audio, offsets / SAMPLE_RATE


def _place_mixed(clips: list[torch.Tensor], length: int, rng: np.random.Generator,
                 crop: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    windows = torch.zeros(len(clips), length)
    offsets = np.zeros(len(clips), np.int64)
    for flag in (False, True):
        rows = np.flatnonzero(crop == flag)
        if len(rows):
            placed, offsets[rows] = place([clips[i] for i in rows], length, rng, flag)
            windows[torch.as_tensor(rows)] = placed
    return windows, offsets


def _maybe_reverb(speech: torch.Tensor, rng: np.random.Generator, augment: Augment,
                  generator: torch.Generator, n_rooms: int = 8) -> torch.Tensor:
    """Reverb on a random share of the rows, each in one of ``n_rooms`` random rooms."""
    rows = torch.as_tensor(np.flatnonzero(rng.random(len(speech)) < augment.reverb_prob))
    if len(rows):
        impulses = room_impulses(rng.uniform(*augment.rt60_s, size=n_rooms), generator)
        which = torch.as_tensor(rng.integers(n_rooms, size=len(rows)))
        speech = speech.clone()
        speech[rows] = reverb(speech[rows], impulses, which)
    return speech


def _add_background(speech: torch.Tensor, donors: torch.Tensor, rng: np.random.Generator,
                    augment: Augment, generator: torch.Generator) -> torch.Tensor:
    noise = make_noise(rng.choice(NOISE_KINDS, size=len(speech)), speech.shape[-1], donors, rng,
                       generator)
    dead = power(noise) == 0  # e.g. babble cut from the exact-zero silence between donors' words
    if dead.any():
        noise[dead] = torch.randn(int(dead.sum()), noise.shape[-1], generator=generator)
    silent = power(speech) == 0  # noise-only clips: an SNR means nothing, set a level instead
    audio = add_noise(speech, noise, torch.as_tensor(rng.uniform(*augment.snr_db, size=len(speech))))
    levels = torch.as_tensor(rng.uniform(*augment.noise_only_dbfs, size=len(speech)))
    audio[silent] = set_level(noise[silent], levels[silent])
    peak = audio.abs().amax(dim=-1, keepdim=True).clamp_min(0.99) / 0.99
    return audio / peak  # no clipping: scale the rare loud row down instead


@dataclass(frozen=True)
class Block:
    """A unit of work for one worker process: synthesise, render and featurise some clips."""

    jobs: tuple[Utterance | None, ...]
    seconds: float
    seed: tuple[int, ...]
    allow_crop: np.ndarray | None = None
    donor_mask: np.ndarray | None = None


def render_block(block: Block) -> np.ndarray:
    """Features (float16 [n, 1, 40, frames]) of a block; runs in a worker process."""
    raw = [None if job is None else espeak.synthesize_int16(job) for job in block.jobs]
    audio, _ = render(raw, block.seconds, np.random.default_rng(block.seed),
                      allow_crop=block.allow_crop, donor_mask=block.donor_mask)
    return logmel(audio).half().numpy()


def synthesize_features(jobs: Sequence[Utterance | None], seconds: float, pool: LazyPool,
                        seed: tuple[int, ...], allow_crop: np.ndarray | None = None,
                        donor_mask: np.ndarray | None = None, block_size: int = 250
                        ) -> torch.Tensor:
    """Synthesise, render and featurise ``jobs`` block by block on the pool; float16 features.

    Each block draws its randomness from ``(*seed, block index)``, so the result does not
    depend on the number of workers. Babble donors come from the same block.
    """
    def part(values: np.ndarray | None, start: int) -> np.ndarray | None:
        return None if values is None else np.asarray(values)[start:start + block_size]

    blocks = [Block(tuple(jobs[start:start + block_size]), seconds, (*seed, start),
                    part(allow_crop, start), part(donor_mask, start))
              for start in range(0, len(jobs), block_size)]
    features = [torch.from_numpy(f) for f in pool.apply(render_block, blocks)]
    return torch.cat(features) if features else torch.zeros(0, 1, N_MELS, frames_for(seconds)).half()


# ----------------------------------------------------------------------------- pools
class LazyPool:
    """A SynthesisPool started on first use, so a fully cached run starts no processes."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers
        self._pool: SynthesisPool | None = None

    def apply(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[function(item) for item in items]`` on the worker processes (see SynthesisPool)."""
        if self._pool is None:
            self._pool = SynthesisPool(self.workers)
        return self._pool.apply(function, items)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> LazyPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


_ACTIVE_POOL: LazyPool | None = None  # set by prepare(): one pool for every data set


@contextlib.contextmanager
def _synthesis_pool(workers: int | None) -> Iterator[LazyPool]:
    """The pool of a running prepare(), else a new one that ends with the block."""
    if _ACTIVE_POOL is not None:
        yield _ACTIVE_POOL
        return
    with LazyPool(workers) as pool:
        yield pool


def _key(seed: int, purpose: str) -> tuple[int, int]:
    """A seed per (seed, purpose): independent random streams, stable across runs."""
    return seed, int.from_bytes(purpose.encode()[:8].ljust(8, b"\0"), "little")


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(_key(seed, purpose))


def _log(message: str) -> None:
    print(f"[speech] {message}", flush=True)


# ----------------------------------------------------------------------------- task A
def vocabulary(n_words: int) -> list[str]:
    """The first ``n_words`` words of task A's vocabulary."""
    if not 2 <= n_words <= len(WORDS_A):
        raise ValueError(f"speech_words_a must be in 2..{len(WORDS_A)}, got {n_words}")
    return list(WORDS_A[:n_words])


def _task_a_config(profile: Profile) -> dict[str, Any]:
    return {"version": VERSION, "words": profile.speech_words_a, "train": profile.speech_clips_a,
            "test": profile.speech_clips_a_test, "seconds": WINDOW_A_S, "n_mels": N_MELS,
            "hop": HOP, "test_variants": N_TEST_VARIANTS, "augment": asdict(AUGMENT), "seed": 0}


def _balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % n_classes)


def _build_task_a(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    started = time.perf_counter()
    words, split = vocabulary(config["words"]), voice_split(config["test_variants"])
    payload: dict[str, Any] = {"words": words}
    for side, count in (("train", config["train"]), ("test", config["test"])):
        rng = _rng(config["seed"], f"A-{side}")
        labels = _balanced_labels(count, len(words), rng)
        jobs = make_jobs([words[k] for k in labels], split.speakers(side), rng)
        payload[f"X_{side}"] = synthesize_features(jobs, config["seconds"], pool,
                                                   _key(config["seed"], f"A-{side}-render"))
        payload[f"y_{side}"] = torch.as_tensor(labels, dtype=torch.int64)
    payload["examples"] = _examples([(w, w) for w in words[:6]], split.speakers("test"))
    _log(f"task A: {config['train']:,} + {config['test']:,} clips of {len(words)} words "
         f"in {time.perf_counter() - started:.0f} s")
    return payload


def _examples(labelled: Sequence[tuple[str, str]], speakers: Sequence[tuple[str, str]],
              seconds: float = WINDOW_A_S) -> dict[str, Any]:
    """A few rendered clips as int16 audio, to listen to in the notebook (made in-process)."""
    rng = _rng(0, "examples")
    jobs = make_jobs([text for text, _ in labelled], speakers, rng)
    audio, _ = render([espeak.synthesize_int16(job) for job in jobs], seconds, rng)
    return {"audio": to_int16(audio), "labels": [label for _, label in labelled]}


def to_int16(audio: torch.Tensor) -> torch.Tensor:
    """Float audio in [-1, 1] -> int16 (half the bytes; what WAV files hold)."""
    return (audio.clamp(-1, 1) * 32767).round().to(torch.int16)


def _as_dtype(payload: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    return {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in payload.items()}


def speech_task_a(profile: Profile | None = None, dtype: torch.dtype = torch.float32,
                  workers: int | None = None) -> dict[str, Any]:
    """Task A, the word recognizer: built once (cached), then loaded.

    Returns ``X_train`` [n, 1, 40, 98] log-mel (1-s clips), ``y_train`` word indices,
    ``X_test``/``y_test`` (held-out voice variants), ``words`` (the vocabulary) and
    ``examples`` (``audio`` int16 [k, 16000], ``labels``) to listen to.
    """
    from helpers.data import real  # lazily: TL_DATA=real serves the fetched Speech Commands instead
    if real.data_source() == "real":
        return real.speech_task_a(profile, dtype, workers)
    config = _task_a_config(profile or get_profile())
    with _synthesis_pool(workers) as pool:
        payload = load_or_build("speech_task_a", config, lambda: _build_task_a(config, pool))
    return _as_dtype(payload, dtype)


# ----------------------------------------------------------------------------- task B
# Shares of the wake-word training negatives, by kind.
NEGATIVE_MIX: dict[str, float] = {
    "word": 0.25, "oov": 0.15, "confusable": 0.20, "same_voice": 0.15, "speech_crop": 0.15,
    "noise": 0.10,
}
# Shares of the wake-word test clips (held-out voices), by kind.
TEST_MIX: dict[str, float] = {
    "positive": 0.25, "confusable_test": 0.15, "word": 0.2, "oov": 0.15, "speech_crop": 0.15,
    "noise": 0.1,
}
N_POSITIVE_SPEAKERS = 8  # "a few voices" say every training positive


def _counts(total: int, mix: dict[str, float]) -> dict[str, int]:
    """Split ``total`` by the shares of ``mix``; the rounding remainder goes to the first kind."""
    counts = {kind: int(total * share) for kind, share in mix.items()}
    first = next(iter(counts))
    counts[first] += total - sum(counts.values())
    return counts


def _sentences(n: int, rng: np.random.Generator, vocabulary_: Sequence[str],
               words: tuple[int, int] = (3, 7)) -> list[str]:
    """Random word sequences (continuous speech that never contains the wake phrase)."""
    lengths = rng.integers(*words, size=n, endpoint=True)
    return [" ".join(rng.choice(vocabulary_, size=k)) for k in lengths]


def _texts_for(kind: str, n: int, rng: np.random.Generator, words: Sequence[str],
               confusables: Sequence[str]) -> list[str | None]:
    """``n`` texts of one negative (or positive) kind; None means noise only."""
    pool = {"positive": [WAKE_PHRASE], "word": words, "oov": OOV_WORDS,
            "confusable": confusables, "confusable_test": confusables,
            "same_voice": [*words, *OOV_WORDS, *confusables]}
    if kind == "noise":
        return [None] * n
    if kind == "speech_crop":
        return list(_sentences(n, rng, [*words, *OOV_WORDS]))
    return list(rng.choice(pool[kind], size=n))


def _kind_jobs(counts: dict[str, int], speakers: dict[str, Sequence[tuple[str, str]]],
               rng: np.random.Generator, words: Sequence[str], confusables: Sequence[str]
               ) -> tuple[list[Utterance | None], list[str]]:
    jobs: list[Utterance | None] = []
    kinds: list[str] = []
    for kind, n in counts.items():
        texts = _texts_for(kind, n, rng, words, confusables)
        voiced = make_jobs([t or "" for t in texts], speakers.get(kind, speakers["other"]), rng)
        jobs += [job if text is not None else None for job, text in zip(voiced, texts)]
        kinds += [kind] * n
    order = rng.permutation(len(jobs))  # mixed kinds: every block has babble donors
    return [jobs[i] for i in order], [kinds[i] for i in order]


def positive_speakers(split: VoiceSplit, seed: int, n: int = N_POSITIVE_SPEAKERS
                      ) -> list[tuple[str, str]]:
    """The few training speakers who say every training positive (distinct variants)."""
    rng = _rng(seed, "B-speakers")
    variants = rng.choice(split.train_variants, size=n, replace=False)
    voices = rng.choice(split.voices, size=n)
    return [(str(v), str(w)) for v, w in zip(voices, variants)]


def _wake_train_config(profile: Profile, n_positives: int, seed: int,
                       n_speakers: int = N_POSITIVE_SPEAKERS) -> dict[str, Any]:
    return {"version": VERSION, "positives": n_positives, "negatives": profile.speech_negatives_b,
            "words": profile.speech_words_a, "seconds": WINDOW_B_S, "n_mels": N_MELS, "hop": HOP,
            "test_variants": N_TEST_VARIANTS, "augment": asdict(AUGMENT), "seed": seed,
            "mix": NEGATIVE_MIX, "speakers": n_speakers}


def _build_wake_train(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    split, rng = voice_split(config["test_variants"]), _rng(config["seed"], "B-train")
    chosen = positive_speakers(split, config["seed"], config["speakers"])
    others = [s for s in split.speakers("train") if s not in chosen]
    counts = {"positive": config["positives"], **_counts(config["negatives"], NEGATIVE_MIX)}
    speakers = {"positive": chosen, "same_voice": chosen, "other": others}
    jobs, kinds = _kind_jobs(counts, speakers, rng, vocabulary(config["words"]), CONFUSABLES_TRAIN)
    _log(f"wake word: {len(jobs):,} training clips ({config['positives']} positives)")
    kinds_arr = np.asarray(kinds)
    X = synthesize_features(jobs, config["seconds"], pool, _key(config["seed"], "B-train-render"),
                            allow_crop=kinds_arr == "speech_crop", donor_mask=kinds_arr != "positive")
    return {"X_train": X, "y_train": torch.as_tensor(kinds_arr == "positive", dtype=torch.int64),
            "kind_train": kinds, "positive_speakers": [f"{v}+{w}" for v, w in chosen]}


def _wake_test_config(profile: Profile) -> dict[str, Any]:
    return {"version": VERSION, "clips": profile.speech_test_b, "words": profile.speech_words_a,
            "seconds": CONTEXT_B_S, "n_mels": N_MELS, "hop": HOP, "test_variants": N_TEST_VARIANTS,
            "augment": asdict(AUGMENT), "mix": TEST_MIX, "seed": 0}


def _build_wake_test(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    split, rng = voice_split(config["test_variants"]), _rng(config["seed"], "B-test")
    counts = _counts(config["clips"], TEST_MIX)
    speakers = {"other": split.speakers("test")}
    jobs, kinds = _kind_jobs(counts, speakers, rng, vocabulary(config["words"]), CONFUSABLES_TEST)
    _log(f"wake word: {len(jobs):,} test clips (held-out voices)")
    kinds_arr = np.asarray(kinds)
    X = synthesize_features(jobs, config["seconds"], pool, _key(config["seed"], "B-test-render"),
                            allow_crop=kinds_arr == "speech_crop", donor_mask=kinds_arr != "positive")
    examples = _examples([(WAKE_PHRASE, "positive"), ("hey mona", "confusable_test"),
                          ("say nova", "confusable_test"), ("hey nora", "confusable")],
                         split.speakers("test"), WINDOW_B_S)
    return {"X_test": X, "y_test": torch.as_tensor(kinds_arr == "positive", dtype=torch.int64),
            "kind_test": kinds, "examples": examples}


def wake_word_task(profile: Profile | None = None, n_positives: int | None = None, seed: int = 0,
                   dtype: torch.dtype = torch.float32, workers: int | None = None,
                   n_speakers: int = N_POSITIVE_SPEAKERS) -> dict[str, Any]:
    """Task B, the wake-word detector ("hey nova"): a small training set and a fixed test set.

    Training (``seed`` picks the ``n_speakers`` positive speakers — "a few voices" by default —
    and the clips; real data ignores ``n_speakers``): ``X_train`` [n, 1, 40, 148]
    (1.5-s windows), ``y_train`` (1 = wake word), ``kind_train`` (positive, word, oov,
    confusable, same_voice, speech_crop, noise). Test, on held-out voice variants and the same
    for every seed: ``X_test`` [m, 1, 40, 298] (3-s contexts; score each by its best 1.5-s
    window, see helpers.detection.best_window_scores), ``y_test``, ``kind_test`` (with
    confusable_test: phrases never seen in training). Also ``window_frames`` and ``examples``.
    """
    from helpers.data import real  # lazily: TL_DATA=real serves the fetched Speech Commands instead
    if real.data_source() == "real":
        return real.wake_word_task(profile, n_positives, seed, dtype, workers)
    profile = profile or get_profile()
    n_positives = profile.speech_positives_b if n_positives is None else n_positives
    train_config = _wake_train_config(profile, n_positives, seed, n_speakers)
    test_config = _wake_test_config(profile)
    with _synthesis_pool(workers) as pool:
        train = load_or_build("speech_wake_train", train_config,
                              lambda: _build_wake_train(train_config, pool))
        test = load_or_build("speech_wake_test", test_config,
                             lambda: _build_wake_test(test_config, pool))
    return _as_dtype({**train, **test, "window_frames": frames_for(WINDOW_B_S),
                      "wake_phrase": WAKE_PHRASE}, dtype)


# ----------------------------------------------------------------------------- streams
STREAM_CHUNK_S = 60  # the stream is built minute by minute: bounded memory, one room each


def _stream_texts(n: int, rng: np.random.Generator, words: Sequence[str],
                  confusable_share: float = 0.15) -> list[str]:
    """Utterances of continuous speech; some hold a confusable phrase (the hard negatives)."""
    texts = _sentences(n, rng, [*words, *OOV_WORDS], words=(1, 5))
    confusables = [*CONFUSABLES_TRAIN, *CONFUSABLES_TEST]
    for i in np.flatnonzero(rng.random(n) < confusable_share):
        texts[i] = f"{texts[i]} {rng.choice(confusables)}" if rng.random() < 0.5 \
            else str(rng.choice(confusables))
    return texts


def _lay_out(clips: Iterable[torch.Tensor], length: int, rng: np.random.Generator,
             gap_s: tuple[float, float] = (0.3, 2.0)) -> tuple[torch.Tensor, list[int]]:
    """Clips one after another with random pauses, in a track of ``length`` samples.

    Returns the track and the start of each clip that fitted; ``clips`` is consumed lazily
    and left alone once the track is full (so no clip is synthesised for nothing).
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


@dataclass(frozen=True)
class StreamPiece:
    """A unit of work for one worker: ``seconds`` of continuous speech from these jobs."""

    jobs: tuple[Utterance, ...]
    seconds: float
    seed: tuple[int, ...]


def render_stream_piece(piece: StreamPiece) -> tuple[np.ndarray, list[float]]:
    """Continuous speech in one room with one background (runs in a worker process).

    Returns int16 audio at 16 kHz and the start (s) of each utterance that fitted (the first
    ones of ``piece.jobs``; the rest are never synthesised).
    """
    rng = np.random.default_rng(piece.seed)
    clips = (prepare_clips([espeak.synthesize_int16(job)], rng)[0] for job in piece.jobs)
    track, starts = _lay_out(clips, round(piece.seconds * SAMPLE_RATE), rng)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    speech = _maybe_reverb(track[None], rng, AUGMENT, generator)
    audio = _add_background(speech, speech, rng, AUGMENT, generator)[0]
    return to_int16(audio).numpy(), [start / SAMPLE_RATE for start in starts]


def _stream_config(profile: Profile) -> dict[str, Any]:
    return {"version": VERSION, "hours": profile.speech_stream_hours, "words": profile.speech_words_a,
            "chunk_s": STREAM_CHUNK_S, "n_mels": N_MELS, "hop": HOP, "augment": asdict(AUGMENT),
            "test_variants": N_TEST_VARIANTS, "seed": 0}


def _build_negative_stream(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    started = time.perf_counter()
    speakers = voice_split(config["test_variants"]).speakers("test")
    rng, words = _rng(config["seed"], "stream"), vocabulary(config["words"])
    n_chunks = math.ceil(config["hours"] * 3600 / config["chunk_s"])
    pieces = [StreamPiece(tuple(make_jobs(_stream_texts(40, rng, words), speakers, rng)),
                          config["chunk_s"], (*_key(config["seed"], "stream"), i))
              for i in range(n_chunks)]  # 40 utterances: more than fit in a minute
    audio = torch.cat([torch.from_numpy(a) for a, _ in pool.apply(render_stream_piece, pieces)])
    features = logmel_stream(audio.float() / 32767)
    hours = n_chunks * config["chunk_s"] / 3600
    _log(f"negative stream: {hours:.2f} h in {time.perf_counter() - started:.0f} s")
    return {"features": features, "hours": hours}


def negative_stream(profile: Profile | None = None, dtype: torch.dtype = torch.float32,
                    workers: int | None = None) -> dict[str, Any]:
    """Continuous speech and noise with no wake word, for false accepts per hour.

    Held-out voices; about 15 % of utterances contain a confusable phrase. Returns
    ``features`` [40, frames] (100 frames per second: a window of the wake-word model is
    ``features[:, t:t + window_frames]``), ``hours`` and ``frame_rate``.
    """
    from helpers.data import real  # lazily: TL_DATA=real serves the fetched Speech Commands instead
    if real.data_source() == "real":
        return real.negative_stream(profile, dtype, workers)
    config = _stream_config(profile or get_profile())
    with _synthesis_pool(workers) as pool:
        payload = load_or_build("speech_negative_stream", config,
                                lambda: _build_negative_stream(config, pool))
    return _as_dtype({**payload, "frame_rate": FRAME_RATE}, dtype)


def _demo_config(seconds: float, seed: int, n_wake: int) -> dict[str, Any]:
    return {"version": VERSION, "seconds": seconds, "seed": seed, "wake": n_wake,
            "test_variants": N_TEST_VARIANTS, "augment": asdict(AUGMENT)}


def _build_demo(config: dict[str, Any]) -> dict[str, Any]:
    rng = _rng(config["seed"], "demo")
    texts = _stream_texts(40, rng, WORDS_A[:100], confusable_share=0.1)
    per_second = 0.4  # about 0.4 utterances per second fit: spread the wake words over the clip
    spacing = config["seconds"] * per_second / (config["wake"] + 0.5)
    for k in reversed(range(config["wake"])):  # from the back: earlier indices stay valid
        texts.insert(int(1 + k * spacing + rng.integers(2)), WAKE_PHRASE)
    jobs = make_jobs(texts, voice_split(config["test_variants"]).speakers("test"), rng)
    piece = StreamPiece(tuple(jobs), config["seconds"], _key(config["seed"], "demo-render"))
    audio, starts = render_stream_piece(piece)  # in this process: one short piece
    said = texts[:len(starts)]
    onsets = [start for start, text in zip(starts, said) if text == WAKE_PHRASE]
    return {"audio": torch.from_numpy(audio), "onsets_s": onsets, "texts": said, "starts_s": starts}


def demo_stream(seconds: float = 45.0, seed: int = 0, n_wake: int = 4) -> dict[str, Any]:
    """A short recording for a streaming demo: speech, noise and the wake word ``n_wake`` times.

    Returns ``audio`` float32 [samples] at ``sample_rate`` (16 kHz), ``onsets_s`` (start of
    each wake word), ``texts`` and ``starts_s`` (every utterance) and ``features`` [40, frames].
    """
    config = _demo_config(seconds, seed, n_wake)
    payload = load_or_build("speech_demo", config, lambda: _build_demo(config))
    audio = payload["audio"].float() / 32767
    return {**payload, "audio": audio, "sample_rate": SAMPLE_RATE,
            "features": logmel_stream(audio).float(), "frame_rate": FRAME_RATE}


# ----------------------------------------------------------------------------- entry points
def prepare(profile: Profile | None = None, workers: int | None = None) -> None:
    """Build every speech data set notebook 04 needs into the cache (one pool for all)."""
    global _ACTIVE_POOL
    profile = profile or get_profile()
    started = time.perf_counter()
    _ACTIVE_POOL = LazyPool(workers)
    try:
        # float16 as stored: no float32 copies of data that is only being built here
        speech_task_a(profile, dtype=torch.float16)
        wake_word_task(profile, dtype=torch.float16)
        negative_stream(profile, dtype=torch.float16)
        demo_stream()
    finally:
        _ACTIVE_POOL.close()
        _ACTIVE_POOL = None
    _log(f"all speech data ready ({profile.name}) in {time.perf_counter() - started:.0f} s")


def save_wav(path: str | Path, audio: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE
             ) -> Path:
    """Write mono ``audio`` (float in [-1, 1] or int16) as a 16-bit WAV file; returns the path."""
    import soundfile  # here, not at import: only needed to listen outside the notebook

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
