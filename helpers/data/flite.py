"""Another speech synthesiser for testing: CMU Flite, a different synthesis method than eSpeak's.

eSpeak NG builds speech from formant and phoneme rules; Flite concatenates recorded diphones
(``kal16``) or generates speech from statistical models trained on recorded speakers (``awb``,
``rms``, ``slt``: clustergen). A wake-word detector trained only on eSpeak is tested on Flite's
voices to see whether it learned the phrase or eSpeak's way of saying it.

Flite is optional: Debian/Ubuntu's ``flite`` package (``make other-voices`` installs it when
it can; ``apt-get install flite`` by hand). Without it, :func:`available` is False and the
notebooks say so instead of measuring.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.data.audio import load_wav

SAMPLE_RATE = 16_000  # what the 16-kHz voices below produce
VOICES: tuple[str, ...] = ("kal16", "awb", "rms", "slt")  # four speakers, two synthesis methods


class FliteError(RuntimeError):
    """Flite is missing or failed to speak."""


@dataclass(frozen=True)
class FliteJob:
    """One utterance: ``stretch`` > 1 speaks slower; ``f0_hz`` sets the mean pitch (0: the voice's own)."""

    text: str
    voice: str = "slt"
    stretch: float = 1.0
    f0_hz: float = 0.0


def binary() -> str | None:
    """The path of the ``flite`` program, or None when it is not installed."""
    return shutil.which("flite")


def available() -> bool:
    """Whether Flite can be used here."""
    return binary() is not None


def missing_message() -> str:
    """What to do when Flite is not installed."""
    return ("Flite (another speech synthesiser) is not installed, so the test on another synthesiser's "
            "voices is skipped: install it with `make other-voices` (Debian/Ubuntu, as root) or "
            "`sudo apt-get install flite`, then run this again")


def synthesize(job: FliteJob) -> np.ndarray:
    """Say ``job.text`` with Flite: float32 audio at 16 kHz. Raises FliteError when Flite is missing."""
    program = binary()
    if program is None:
        raise FliteError(missing_message())
    if job.voice not in VOICES:
        raise FliteError(f"unknown Flite voice {job.voice!r}: choose one of {', '.join(VOICES)}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "say.wav"
        command = [program, "-voice", job.voice, "--setf", f"duration_stretch={job.stretch:.3f}"]
        if job.f0_hz > 0:
            command += ["--setf", f"int_f0_target_mean={job.f0_hz:.1f}"]
        done = subprocess.run([*command, "-t", job.text, "-o", str(path)], capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode != 0 or not path.exists():
            raise FliteError(f"flite failed to say {job.text!r} with voice {job.voice}: {done.stderr.strip()}")
        audio, rate = load_wav(path)
    if rate != SAMPLE_RATE:
        raise FliteError(f"flite's voice {job.voice} wrote {rate} Hz audio, expected {SAMPLE_RATE}")
    return audio.astype(np.float32)
