"""A small in-process binding of the eSpeak NG speech synthesiser (ctypes).

The shared library and its voice data come from the PyPI wheel ``espeakng-loader``, so nothing
is installed system-wide. The library is loaded lazily, once per process, on the first call of
:func:`synthesize`; importing this module loads nothing (and imports no torch, so worker
processes of a synthesis pool start fast).

eSpeak NG is not thread-safe: calls are serialised by a lock, and bulk synthesis should use one
*process* per core (see :class:`SynthesisPool`).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

SAMPLE_RATE = 22_050  # Hz, what eSpeak NG produces
T = TypeVar("T")
R = TypeVar("R")

# Constants of speak_lib.h (ESPEAK_API_REVISION 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # samples go to our callback; espeak_Synth returns when done
_INITIALIZE_DONT_EXIT = 0x8000  # without it a missing data folder makes the library call exit()
_PARAM = {"rate": 1, "pitch": 3, "range": 4}  # espeakRATE, espeakPITCH, espeakRANGE
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK = 0

# Limits documented by eSpeak NG: words per minute, and 0-100 for pitch and its range.
RATE_LIMITS = (80, 450)
PITCH_LIMITS = (0, 100)

# English voices (accents) of the data folder; "en-Shaw" reads the Shavian alphabet, not ours.
_EXCLUDED_VOICES = {"en-shaw"}

_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)


class EspeakError(RuntimeError):
    """eSpeak NG is missing, cannot start, or was asked for something it does not have."""


@dataclass(frozen=True)
class Utterance:
    """One synthesis job: what to say and how (rate in words/minute, pitch and range 0-100)."""

    text: str
    voice: str = "en-us"
    variant: str | None = None
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50


def _default_paths() -> tuple[Path, Path]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise EspeakError("the speech data needs the `espeakng-loader` package: "
                          "pip install espeakng-loader (it ships eSpeak NG and its voices)") from exc
    return Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())


def check_paths(library: Path, data: Path) -> None:
    """Raise EspeakError (saying what to do) unless the library and its data folder exist."""
    if not Path(library).is_file():
        raise EspeakError(f"eSpeak NG library not found at {library}: "
                          "reinstall it with pip install --force-reinstall espeakng-loader")
    if not (Path(data) / "phontab").is_file():
        raise EspeakError(f"eSpeak NG voice data not found in {data} (no 'phontab' there): "
                          "reinstall it with pip install --force-reinstall espeakng-loader")


class Engine:
    """The initialised library of this process. Use :func:`get_engine`, not the constructor."""

    def __init__(self, library: Path, data: Path) -> None:
        check_paths(library, data)  # checked first: the C side would exit() on a bad folder
        self.data = Path(data)
        self._lib = ctypes.CDLL(str(library))
        _LOADED.add(Path(library).resolve())
        self._declare()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(),
                                           _INITIALIZE_DONT_EXIT)
        if rate != SAMPLE_RATE:
            raise EspeakError(f"eSpeak NG failed to start with data {data} (returned {rate})")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK_TYPE(self._collect)  # kept alive: C holds only a pointer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()
        # eSpeak NG seeds its noise generator from the clock at start-up: seed it, so that a fresh
        # engine says the same job the same way in every process and every build.
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):
            self._lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            self._lib.espeak_ng_SetRandSeed(RAND_SEED)

    def _declare(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK_TYPE]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]

    def _collect(self, wav: ctypes._Pointer, n_samples: int, _events: int) -> int:
        if wav and n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = go on synthesising

    def _set_voice(self, voice: str, variant: str | None) -> None:
        if variant is not None and not (self.data / "voices" / "!v" / variant).is_file():
            # eSpeak silently ignores an unknown variant; a typo must not go unnoticed.
            raise EspeakError(f"eSpeak NG has no voice variant {variant!r}: see list_variants()")
        name = voice if variant is None else f"{voice}+{variant}"
        if self._lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
            raise EspeakError(f"eSpeak NG has no voice {name!r}: "
                              "see list_voices() and list_variants() for the valid names")

    def _set_parameter(self, name: str, value: int) -> None:
        if self._lib.espeak_SetParameter(_PARAM[name], int(value), 0) != _EE_OK:
            raise EspeakError(f"eSpeak NG rejected {name}={value}")

    def synthesize(self, job: Utterance) -> np.ndarray:
        """The waveform of ``job`` as float32 in [-1, 1] at 22,050 Hz."""
        _check_ranges(job)
        text = job.text.encode()
        with self._lock:
            self._set_voice(job.voice, job.variant)  # a voice resets rate and pitch: set it first
            for name, value in (("rate", job.rate), ("pitch", job.pitch), ("range", job.pitch_range)):
                self._set_parameter(name, value)
            self._chunks = []
            status = self._lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                            None, None)
            chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise EspeakError(f"eSpeak NG failed to say {job.text!r} (status {status})")
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return audio.astype(np.float32) / 32768.0


def _check_ranges(job: Utterance) -> None:
    if not RATE_LIMITS[0] <= job.rate <= RATE_LIMITS[1]:
        raise EspeakError(f"rate {job.rate} is outside eSpeak's {RATE_LIMITS} words per minute")
    for name in ("pitch", "pitch_range"):
        value = getattr(job, name)
        if not PITCH_LIMITS[0] <= value <= PITCH_LIMITS[1]:
            raise EspeakError(f"{name} {value} is outside eSpeak's range {PITCH_LIMITS}")


_ENGINE: Engine | None = None
_LOADED: set[Path] = set()  # library files loaded (and so possibly used) in this process
RAND_SEED = 0  # the seed of eSpeak NG's noise generator in every engine


def get_engine() -> Engine:
    """This process's engine, initialised on first use (once: eSpeak keeps global state)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine(*_default_paths())
    return _ENGINE


def data_path() -> Path:
    """The eSpeak NG data folder of the installed wheel (no library is loaded)."""
    return _default_paths()[1]


def list_voices() -> list[str]:
    """English voice (accent) names usable as ``voice``, e.g. ``'en-us'``, ``'en-gb-scotland'``."""
    folder = data_path() / "lang" / "gmw"
    names = {p.name.lower() for p in folder.glob("en*") if p.is_file()}
    return sorted(names - _EXCLUDED_VOICES)


def list_variants() -> list[str]:
    """Voice variant names usable as ``variant`` (e.g. ``'f3'``, ``'m1'``, ``'klatt'``)."""
    folder = data_path() / "voices" / "!v"
    # Names with spaces cannot be passed as "voice+variant": leave them out.
    return sorted(p.name for p in folder.iterdir() if p.is_file() and " " not in p.name)


def synthesize(text: str, voice: str = "en-us", variant: str | None = None, rate: int = 175,
               pitch: int = 50, pitch_range: int = 50) -> np.ndarray:
    """Say ``text``; float32 waveform in [-1, 1] at :data:`SAMPLE_RATE` (22,050 Hz).

    ``rate`` is in words per minute (80-450), ``pitch`` and ``pitch_range`` are 0-100. The
    output has exact-zero silence at both ends, and it varies slightly call to call (the
    engine's state runs on): data sets use :func:`synthesize_fresh`, which does not.
    """
    return get_engine().synthesize(Utterance(text, voice, variant, rate, pitch, pitch_range))


def synthesize_int16(job: Utterance) -> np.ndarray:
    """:func:`synthesize` as int16 (what a worker sends back: half the bytes of float32)."""
    return _to_int16(get_engine().synthesize(job))


def synthesize_fresh(jobs: Sequence[Utterance | None]) -> list[np.ndarray | None]:
    """int16 waveforms of ``jobs`` (None stays None), as a newly started engine says them.

    eSpeak NG is not a pure function: its pitch "flutter" and other internal state run on from
    one utterance to the next within a process (measured: 32 of 104 clips change when the same
    clips are said in the opposite order), and it seeds its noise from the clock. So every batch
    of the course's data is said by a *new* engine in a child process forked for it: the result
    depends only on the jobs, not on what this process said before, the number of workers or the
    build. Where ``os.fork`` does not exist the jobs are said here (not bit-reproducible).
    """
    if not hasattr(os, "fork"):
        warnings.warn("no os.fork here: speech is synthesised in this process and differs slightly "
                      "from run to run", RuntimeWarning, stacklevel=2)
        return [None if job is None else synthesize_int16(job) for job in jobs]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a new engine, the jobs, the result down the pipe, exit
        status = 0
        try:
            os.close(read_end)
            engine = _new_engine()
            result: object = [None if job is None else _to_int16(engine.synthesize(job)) for job in jobs]
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
            result, status = EspeakError(f"synthesis failed in a child process: {exc!r}"), 1
        try:
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(result, pipe, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        try:
            result = pickle.load(pipe)
        except EOFError:
            result = EspeakError("a speech synthesis child process died without an answer")
    os.waitpid(pid, 0)
    if isinstance(result, BaseException):
        raise result
    return result


def _new_engine() -> Engine:
    """A newly initialised engine (in a forked child): this process's library when it was never
    started here, else a private copy of it (a library loaded twice from one path shares state)."""
    library, data = _default_paths()
    if library.resolve() in _LOADED:
        copy = Path(tempfile.mkdtemp(prefix="espeak-")) / library.name
        shutil.copyfile(library, copy)
        try:
            return Engine(copy, data)
        finally:  # loaded: the file is no longer needed
            shutil.rmtree(copy.parent, ignore_errors=True)
    return Engine(library, data)


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def _one_thread_per_worker(parent_pid: int | None = None) -> None:
    # Set before a task imports torch: N workers x N threads each would oversubscribe the cores.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if parent_pid is not None:
        _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int) -> None:
    """Linux: end this worker when its parent dies, even by SIGKILL (no orphaned workers)."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the executor's own shutdown (the context manager) ends the workers
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # PR_SET_PDEATHSIG: SIGTERM when the parent exits. Strictly, when the parent *thread* that
        # started this worker exits: the pool is used from the thread that made it (see map).
        libc.prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def default_workers() -> int:
    """Processes for bulk synthesis: one per core (``$TL_THREADS`` caps it), at most 8."""
    cores = os.cpu_count() or 1
    wanted = int(os.environ.get("TL_THREADS") or cores)
    return max(1, min(cores, wanted, 8))


MAP_CHUNK = 64  # jobs per new engine in SynthesisPool.map


class SynthesisPool:
    """One eSpeak process per core; ``map(jobs)`` returns int16 waveforms at 22,050 Hz in order.

    ``workers=1`` runs in this process (no start-up cost; used by the tests). Use it as a
    context manager so the worker processes end with the block.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 1:
            # 'spawn' is safe with torch's threads already running in the parent (fork is not);
            # an executor, unlike multiprocessing.Pool, fails instead of hanging when a worker dies.
            self._pool = ProcessPoolExecutor(self.workers, multiprocessing.get_context("spawn"),
                                             initializer=_one_thread_per_worker, initargs=(os.getpid(),))

    def map(self, jobs: Sequence[Utterance]) -> list[np.ndarray]:
        """Synthesise every job; int16 waveforms at 22,050 Hz, in order. Chunks of MAP_CHUNK jobs,
        each said by a new engine (:func:`synthesize_fresh`): the same result for any number of workers."""
        chunks = [tuple(jobs[i:i + MAP_CHUNK]) for i in range(0, len(jobs), MAP_CHUNK)]
        return [audio for chunk in self.apply(synthesize_fresh, chunks) for audio in chunk]

    def apply(self, function: Callable[[T], R], items: Sequence[T], chunksize: int = 1) -> list[R]:
        """``[function(item) for item in items]``, spread over the workers (in order).

        ``function`` must be a module-level function (workers import it by name); it may call
        :func:`synthesize`, since each worker has its own engine.
        """
        if self._pool is None:
            return [function(item) for item in items]
        try:
            return list(self._pool.map(function, items, chunksize=chunksize))
        except BrokenProcessPool as exc:
            raise EspeakError(
                "a speech worker process died. In a script, put the code under "
                "`if __name__ == '__main__':` (worker processes import the script), or pass "
                "workers=1 to build in this process") from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> SynthesisPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
