"""Offline speech data, generated with eSpeak NG: a word recognizer (task A) and a wake word (task B).

Everything is synthesised locally with eSpeak NG (:mod:`helpers.data.espeak`), augmented
(:mod:`helpers.data.augment`: rate, pitch, loudness, position, reverb, background noise at a
chosen SNR), turned into log-mel features (:mod:`helpers.data.audio`) and cached with
:func:`helpers.data.cache.load_or_build`. Each block of clips is said by a new eSpeak engine
(:func:`helpers.data.espeak.synthesize_fresh`), so a data set is the same in every build and for
any number of worker processes; the cache then spares building it twice.

Voices are split by eSpeak *variant* (a speaker: pitch, formants, breathiness): test clips come
from variants never heard in training, in every accent. This module only generates: the real
Speech Commands data live in :mod:`helpers.data.real`, and which of the two a run uses
(``TL_DATA``) is decided by :mod:`helpers.data.sources`.

Main entry points (each returns tensors ready for training)::

    speech_task_a(profile)           # dict(X_train, y_train, X_test, y_test, words, ...)
    wake_word_task(profile)          # dict(X_train, y_train, X_test, y_test, kind_test, ...)
    negative_stream(profile)         # dict(features [40, T], hours, frame_rate)
    demo_stream(seconds=45, seed=0)  # dict(audio, sample_rate, onsets_s, features, ...)
    prepare(profile)                 # builds all of the above into the cache
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from helpers.config import Profile, get_profile
from helpers.data import espeak
from helpers.data.audio import (
    CONTEXT_B_S,
    FRAME_RATE,
    HOP,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_A_S,
    WINDOW_B_S,
    as_dtype,
    frames_for,
    lay_out,
    logmel,
    logmel_stream,
    normalise_loudness,
    place,
    resample,
    split_counts,
    to_int16,
    trim_silence,
)

# Re-exported (redundant aliases): notebooks and scripts reach the audio front end through speech too.
from helpers.data.audio import N_FFT as N_FFT
from helpers.data.audio import load_wav as load_wav
from helpers.data.audio import n_frames as n_frames
from helpers.data.audio import save_wav as save_wav
from helpers.data.augment import AUGMENT, Augment, add_background, maybe_reverb
from helpers.data.cache import load_or_build
from helpers.data.espeak import R, SynthesisPool, T, Utterance

VERSION = 3  # bump when the generator changes: every cached speech set is rebuilt
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


# ----------------------------------------------------------------------------- rendering
def prepare_clips(raw: Sequence[np.ndarray | None], rng: np.random.Generator,
                  augment: Augment = AUGMENT) -> list[torch.Tensor]:
    """Trim, normalise loudness and resample to 16 kHz; None (a noise-only clip) -> empty."""
    levels = rng.uniform(*augment.level_dbfs, size=len(raw))
    out = []
    for clip, level in zip(raw, levels):
        audio = np.zeros(0, np.float32) if clip is None else clip.astype(np.float32) / 32768.0
        audio = normalise_loudness(trim_silence(audio), float(level)).astype(np.float32)
        out.append(resample(audio, espeak.SAMPLE_RATE) if audio.size else torch.zeros(0))
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
    speech = maybe_reverb(speech, rng, augment, generator)
    donors = speech if donor_mask is None else speech[torch.as_tensor(np.asarray(donor_mask, bool))]
    audio = add_background(speech, donors if len(donors) else speech, rng, augment, generator)
    return audio, offsets / SAMPLE_RATE


def _place_mixed(clips: list[torch.Tensor], length: int, rng: np.random.Generator,
                 crop: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """:func:`place` for the rows ``crop`` marks (cut at random) and the others (centred if long)."""
    windows = torch.zeros(len(clips), length)
    offsets = np.zeros(len(clips), np.int64)
    for flag in (False, True):
        rows = np.flatnonzero(crop == flag)
        if len(rows):
            placed, offsets[rows] = place([clips[i] for i in rows], length, rng, flag)
            windows[torch.as_tensor(rows)] = placed
    return windows, offsets


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
    raw = espeak.synthesize_fresh(block.jobs)  # a new engine: the same audio in every build
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
    """A random generator for (seed, purpose), see :func:`_key`."""
    return np.random.default_rng(_key(seed, purpose))


def _log(message: str) -> None:
    print(f"[speech] {message}", flush=True)


# ----------------------------------------------------------------------------- task A
def vocabulary(n_words: int) -> list[str]:
    """The first ``n_words`` words of task A's vocabulary."""
    if not 2 <= n_words <= len(WORDS_A):
        raise ValueError(f"speech_words_a must be in 2..{len(WORDS_A)}, got {n_words}")
    return list(WORDS_A[:n_words])


def task_a_config(profile: Profile) -> dict[str, Any]:
    """The cache config of task A: everything that changes its data."""
    return {"version": VERSION, "words": profile.speech_words_a, "train": profile.speech_clips_a,
            "test": profile.speech_clips_a_test, "seconds": WINDOW_A_S, "n_mels": N_MELS,
            "hop": HOP, "test_variants": N_TEST_VARIANTS, "augment": asdict(AUGMENT), "seed": 0}


def _balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, every class (almost) equally often, in random order."""
    return rng.permutation(np.arange(n) % n_classes)


def _build_task_a(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    """Synthesise task A's training and test clips (disjoint voices) and a few examples."""
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
    audio, _ = render(espeak.synthesize_fresh(jobs), seconds, rng)
    return {"audio": to_int16(audio), "labels": [label for _, label in labelled]}


def speech_task_a(profile: Profile | None = None, dtype: torch.dtype = torch.float32,
                  workers: int | None = None) -> dict[str, Any]:
    """Task A, the word recognizer: built once (cached), then loaded.

    Returns ``X_train`` [n, 1, 40, 98] log-mel (1-s clips), ``y_train`` word indices,
    ``X_test``/``y_test`` (held-out voice variants), ``words`` (the vocabulary) and
    ``examples`` (``audio`` int16 [k, 16000], ``labels``) to listen to.
    """
    config = task_a_config(profile or get_profile())
    with _synthesis_pool(workers) as pool:
        payload = load_or_build("speech_task_a", config, lambda: _build_task_a(config, pool))
    return as_dtype(payload, dtype)


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
    """Synthesis jobs (None: noise only) and their kinds, ``counts[kind]`` of each, shuffled."""
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


def wake_train_config(profile: Profile, n_positives: int, seed: int,
                       n_speakers: int = N_POSITIVE_SPEAKERS) -> dict[str, Any]:
    """The cache config of the wake-word training set."""
    return {"version": VERSION, "positives": n_positives, "negatives": profile.speech_negatives_b,
            "words": profile.speech_words_a, "seconds": WINDOW_B_S, "n_mels": N_MELS, "hop": HOP,
            "test_variants": N_TEST_VARIANTS, "augment": asdict(AUGMENT), "seed": seed,
            "mix": NEGATIVE_MIX, "speakers": n_speakers}


def _build_wake_train(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    """Synthesise the wake-word training set: the positives from a few chosen voices."""
    split, rng = voice_split(config["test_variants"]), _rng(config["seed"], "B-train")
    chosen = positive_speakers(split, config["seed"], config["speakers"])
    others = [s for s in split.speakers("train") if s not in chosen]
    counts = {"positive": config["positives"], **split_counts(config["negatives"], NEGATIVE_MIX)}
    speakers = {"positive": chosen, "same_voice": chosen, "other": others}
    jobs, kinds = _kind_jobs(counts, speakers, rng, vocabulary(config["words"]), CONFUSABLES_TRAIN)
    _log(f"wake word: {len(jobs):,} training clips ({config['positives']} positives)")
    kinds_arr = np.asarray(kinds)
    X = synthesize_features(jobs, config["seconds"], pool, _key(config["seed"], "B-train-render"),
                            allow_crop=kinds_arr == "speech_crop", donor_mask=kinds_arr != "positive")
    return {"X_train": X, "y_train": torch.as_tensor(kinds_arr == "positive", dtype=torch.int64),
            "kind_train": kinds, "positive_speakers": [f"{v}+{w}" for v, w in chosen]}


def wake_test_config(profile: Profile) -> dict[str, Any]:
    """The cache config of the wake-word test set (the same for every seed)."""
    return {"version": VERSION, "clips": profile.speech_test_b, "words": profile.speech_words_a,
            "seconds": CONTEXT_B_S, "n_mels": N_MELS, "hop": HOP, "test_variants": N_TEST_VARIANTS,
            "augment": asdict(AUGMENT), "mix": TEST_MIX, "seed": 0}


def _build_wake_test(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    """Synthesise the wake-word test set on held-out voices, with examples to listen to."""
    split, rng = voice_split(config["test_variants"]), _rng(config["seed"], "B-test")
    counts = split_counts(config["clips"], TEST_MIX)
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
    and the clips): ``X_train`` [n, 1, 40, 148] (1.5-s windows), ``y_train`` (1 = wake word),
    ``kind_train`` (positive, word, oov, confusable, same_voice, speech_crop, noise). Test, on
    held-out voice variants and the same for every seed: ``X_test`` [m, 1, 40, 298] (3-s
    contexts; score each by its best 1.5-s window, see helpers.detection.best_window_scores),
    ``y_test``, ``kind_test`` (with confusable_test: phrases never seen in training). Also
    ``window_frames`` and ``examples``.
    """
    profile = profile or get_profile()
    n_positives = profile.speech_positives_b if n_positives is None else n_positives
    train_config = wake_train_config(profile, n_positives, seed, n_speakers)
    test_config = wake_test_config(profile)
    with _synthesis_pool(workers) as pool:
        train = load_or_build("speech_wake_train", train_config,
                              lambda: _build_wake_train(train_config, pool))
        test = load_or_build("speech_wake_test", test_config,
                             lambda: _build_wake_test(test_config, pool))
    return as_dtype({**train, **test, "window_frames": frames_for(WINDOW_B_S),
                     "wake_phrase": WAKE_PHRASE}, dtype)


# ----------------------------------------------------------------------------- streams
STREAM_CHUNK_S = 60  # the stream is built minute by minute: bounded memory, one room each


FIELD_CONFUSABLE_SHARE = 0.0  # the stream is ordinary speech: confusables are measured apart


def _stream_texts(n: int, rng: np.random.Generator, words: Sequence[str],
                  confusable_share: float = FIELD_CONFUSABLE_SHARE) -> list[str]:
    """Utterances of ordinary continuous speech (task-A and other words, 1-5 at a time).

    ``confusable_share`` of them hold a phrase that sounds like the wake phrase. The field counts
    false accepts per hour on ordinary speech and tests confusables separately, so the negative
    stream has none (an earlier version planted them in 15 % of its utterances, ~360 an hour:
    then a threshold for 1 false accept an hour had to sit above the very hardest of them).
    """
    texts = _sentences(n, rng, [*words, *OOV_WORDS], words=(1, 5))
    confusables = [*CONFUSABLES_TRAIN, *CONFUSABLES_TEST]
    for i in np.flatnonzero(rng.random(n) < confusable_share):
        texts[i] = f"{texts[i]} {rng.choice(confusables)}" if rng.random() < 0.5 \
            else str(rng.choice(confusables))
    return texts


@dataclass(frozen=True)
class StreamPiece:
    """A unit of work for one worker: ``seconds`` of continuous speech from these jobs."""

    jobs: tuple[Utterance, ...]
    seconds: float
    seed: tuple[int, ...]


def render_stream_piece(piece: StreamPiece) -> tuple[np.ndarray, list[float]]:
    """Continuous speech in one room with one background (runs in a worker process).

    Returns int16 audio at 16 kHz and the start (s) of each utterance that fitted (the first
    ones of ``piece.jobs``; all are synthesised, by a new engine, so that the audio is the same in
    every build).
    """
    rng = np.random.default_rng(piece.seed)
    clips = (prepare_clips([audio], rng)[0] for audio in espeak.synthesize_fresh(piece.jobs))
    track, starts = lay_out(clips, round(piece.seconds * SAMPLE_RATE), rng)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    speech = maybe_reverb(track[None], rng, AUGMENT, generator)
    audio = add_background(speech, speech, rng, AUGMENT, generator)[0]
    return to_int16(audio).numpy(), [start / SAMPLE_RATE for start in starts]


def stream_config(profile: Profile, split: str = "test", hours: float | None = None) -> dict[str, Any]:
    """The cache config of a negative stream: ``split``'s voices, ``hours`` long (default: the profile's)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    hours = profile.speech_stream_hours if hours is None else hours
    if hours <= 0:
        raise ValueError(f"a negative stream needs hours > 0, got {hours}")
    return {"version": VERSION, "hours": hours, "words": profile.speech_words_a,
            "chunk_s": STREAM_CHUNK_S, "n_mels": N_MELS, "hop": HOP, "augment": asdict(AUGMENT),
            "test_variants": N_TEST_VARIANTS, "confusables": FIELD_CONFUSABLE_SHARE, "split": split,
            "seed": 0 if split == "test" else 1}


def _build_negative_stream(config: dict[str, Any], pool: LazyPool) -> dict[str, Any]:
    """Render the stream minute by minute on the pool, then its log-mel features."""
    started = time.perf_counter()
    speakers = voice_split(config["test_variants"]).speakers(config["split"])
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
                    workers: int | None = None, split: str = "test", hours: float | None = None
                    ) -> dict[str, Any]:
    """Continuous ordinary speech and noise with no wake word, for false accepts per hour.

    ``split="test"``: held-out voices, for measuring (the profile's ``speech_stream_hours``);
    ``"train"``: training voices, hard negatives for training a detector (notebook 07). Every
    minute has its own room and background noise. Returns ``features`` [40, frames] (100 frames
    per second: a window of the wake-word model is ``features[:, t:t + window_frames]``),
    ``hours`` and ``frame_rate``.
    """
    config = stream_config(profile or get_profile(), split, hours)
    with _synthesis_pool(workers) as pool:
        payload = load_or_build("speech_negative_stream", config,
                                lambda: _build_negative_stream(config, pool))
    return as_dtype({**payload, "frame_rate": FRAME_RATE}, dtype)


def _demo_config(seconds: float, seed: int, n_wake: int, phrase: str = WAKE_PHRASE) -> dict[str, Any]:
    """The cache config of the demo recording."""
    config = {"version": VERSION, "seconds": seconds, "seed": seed, "wake": n_wake,
              "test_variants": N_TEST_VARIANTS, "augment": asdict(AUGMENT)}
    return config if phrase == WAKE_PHRASE else {**config, "phrase": phrase}


def _build_demo(config: dict[str, Any]) -> dict[str, Any]:
    """Render the demo recording in this process: speech with the wake word spread over it."""
    rng = _rng(config["seed"], "demo")
    texts = _stream_texts(40, rng, WORDS_A[:100], confusable_share=0.1)
    per_second = 0.4  # about 0.4 utterances per second fit: spread the wake words over the clip
    spacing = config["seconds"] * per_second / (config["wake"] + 0.5)
    phrase = config.get("phrase", WAKE_PHRASE)
    for k in reversed(range(config["wake"])):  # from the back: earlier indices stay valid
        texts.insert(int(1 + k * spacing + rng.integers(2)), phrase)
    jobs = make_jobs(texts, voice_split(config["test_variants"]).speakers("test"), rng)
    piece = StreamPiece(tuple(jobs), config["seconds"], _key(config["seed"], "demo-render"))
    audio, starts = render_stream_piece(piece)  # in this process: one short piece
    said = texts[:len(starts)]
    onsets = [start for start, text in zip(starts, said) if text == phrase]
    return {"audio": torch.from_numpy(audio), "onsets_s": onsets, "texts": said, "starts_s": starts}


def demo_stream(seconds: float = 45.0, seed: int = 0, n_wake: int = 4, phrase: str = WAKE_PHRASE) -> dict[str, Any]:
    """A short recording for a streaming demo: speech, noise and ``phrase`` said ``n_wake`` times.

    Returns ``audio`` float32 [samples] at ``sample_rate`` (16 kHz), ``onsets_s`` (start of
    each wake word), ``texts`` and ``starts_s`` (every utterance) and ``features`` [40, frames].
    """
    config = _demo_config(seconds, seed, n_wake, phrase)
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
