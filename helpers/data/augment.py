"""Augmentation of generated speech: background noise at a set SNR, babble and room reverb.

:class:`Augment` holds the random conditions of a rendered clip (eSpeak's rate and pitch, the
speech level, the SNR, how often and how much reverb). The noise kinds are white, pink and brown
noise, mains hum and babble (other clips of the same split, so no test voice leaks into training).
Everything draws its randomness from the generators it is given: same seeds, same audio.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from helpers.data.audio import SAMPLE_RATE, crops, power, set_level

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


# ----------------------------------------------------------------------------- noise
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
            noise[rows] = crops(source, len(rows), length, rng)
    return noise


def add_background(speech: torch.Tensor, donors: torch.Tensor, rng: np.random.Generator,
                   augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Each row of ``speech`` over a random noise kind at a random SNR (a level when silent).

    ``donors`` are the babble talkers. Rows are scaled down where they would clip.
    """
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


# ----------------------------------------------------------------------------- reverb
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
    # Not torchaudio.functional.fftconvolve: same numbers to float32 rounding but 1.6-2.7x slower
    # (measured), as it transforms each row's room again at n + m - 1 points, not each room once.
    length = batch.shape[-1]
    size = fft_size(length + impulses.shape[-1])
    rooms = torch.fft.rfft(impulses, size)
    rooms = rooms[which] if which is not None else rooms
    wet = torch.fft.irfft(torch.fft.rfft(batch, size) * rooms, size)[..., :length]
    return wet * (power(batch) / power(wet).clamp_min(1e-20)).sqrt().to(wet.dtype).unsqueeze(-1)


def maybe_reverb(speech: torch.Tensor, rng: np.random.Generator, augment: Augment,
                 generator: torch.Generator, n_rooms: int = 8) -> torch.Tensor:
    """Reverb on a random share of the rows, each in one of ``n_rooms`` random rooms."""
    rows = torch.as_tensor(np.flatnonzero(rng.random(len(speech)) < augment.reverb_prob))
    if len(rows):
        impulses = room_impulses(rng.uniform(*augment.rt60_s, size=n_rooms), generator)
        which = torch.as_tensor(rng.integers(n_rooms, size=len(rows)))
        speech = speech.clone()
        speech[rows] = reverb(speech[rows], impulses, which)
    return speech
