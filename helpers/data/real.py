"""Optional REAL data sets, converted to the layout of the generated ones (needs a network once).

* CIFAR-10 (python version) stands in for task A of the image notebooks: 32x32 photos of
  10 object classes, made grayscale (and resized to ``profile.image_size``).
* MedMNIST PneumoniaMNIST is task B: real paediatric chest X-rays, 28x28, normal or pneumonia.
* Google Speech Commands v2 gives the speech tasks: 34 words for the recognizer (task A) and
  "marvin" as the wake word (task B), with its speaker-disjoint validation/testing lists.

This module holds the registry of those downloads (:data:`SOURCES`) and the converters; the
download mechanism is :mod:`helpers.data.download`, the audio front end shared with the
generator :mod:`helpers.data.audio`. The course uses generated data unless ``TL_DATA=real``
(:mod:`helpers.data.sources`). Fetch and convert once with
``python data_scripts/fetch_real.py {images,speech,all} --profile P``. Downloads are verified
against the checksums the maintained libraries publish (torchvision, medmnist, torchaudio),
staged in a temporary folder and moved into place only when complete; conversions are cached
with :func:`helpers.data.cache.load_or_build` under ``data_dir()/real/``.
"""
from __future__ import annotations

import itertools
import math
import pickle
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.config import ConfigError, Profile, data_dir, get_profile
from helpers.data import download
from helpers.data.audio import (
    CONTEXT_B_S,
    FRAME_RATE,
    HOP,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_A_S,
    WINDOW_B_S,
    as_dtype,
    crops,
    frames_for,
    lay_out,
    logmel,
    logmel_stream,
    place,
    read_clip,
    set_level,
    split_counts,
    to_int16,
)
from helpers.data.augment import AUGMENT
from helpers.data.cache import load_or_build
from helpers.data.download import RealDataError, RealDataMissing, Source


VERSION = 1  # bump when a conversion changes: cached real data sets are then rebuilt


# ----------------------------------------------------------------------------- registry
def _speech_commands_release() -> tuple[str, str]:
    """URL and SHA-256 of Speech Commands v0.02 as torchaudio's SPEECHCOMMANDS uses them."""
    try:
        from torchaudio.datasets import speechcommands as tasc

        return next((url, digest) for url, digest in tasc._CHECKSUMS.items() if url.endswith(f"{tasc.URL}.tar.gz"))
    except (ImportError, AttributeError, StopIteration):  # torchaudio has deprecated its datasets
        return ("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58")


# torchvision's CIFAR10.url, .filename, .tgz_md5 and .base_folder (0.29; tests/test_real_data.py checks that
# they still agree). Written out: importing torchvision costs every process ~1.5 s (its models import
# torch._dynamo), and only a download needs it (issue 17).
CIFAR_URL, CIFAR_FILE = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz"
CIFAR_MD5, CIFAR_FOLDER = "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py"
_SPEECH_URL, _SPEECH_SHA256 = _speech_commands_release()
# Tests point these at a local server (monkeypatch the dict entries).
SOURCES: dict[str, Source] = {
    "cifar10": Source("cifar10", CIFAR_URL, CIFAR_FILE, CIFAR_MD5, "md5",
                      "CIFAR-10, 163 MB", "images", folder="cifar-10"),
    # medmnist 3.0.2, medmnist/info.py INFO["pneumoniamnist"]["url"] and ["MD5"] (28x28 release)
    "pneumoniamnist": Source("pneumoniamnist", "https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1",
                             "pneumoniamnist.npz", "28209eda62fecd6e6a2d98b1501bb15f", "md5",
                             "PneumoniaMNIST, 4 MB", "images"),
    "speech_commands": Source("speech_commands", _SPEECH_URL, "speech_commands_v0.02.tar.gz", _SPEECH_SHA256,
                              "sha256", "Speech Commands v2, 2.3 GB", "speech", folder="speech_commands_v0.02"),
}


def _source(name: str) -> Source:
    """The registry entry ``name``, or ConfigError listing the known ones."""
    if name not in SOURCES:
        raise ConfigError(f"unknown real data set {name!r}: choose one of {', '.join(SOURCES)}")
    return SOURCES[name]


def real_dir() -> Path:
    """Converted real data sets (the cache entries): ``data_dir()/real``."""
    return data_dir() / "real"


def raw_dir() -> Path:
    """Downloads and extracted archives: ``data_dir()/real/raw``."""
    return real_dir() / "raw"


def _log(message: str) -> None:
    print(f"[real] {message}", flush=True)


def fetch(name: str, root: Path | None = None) -> Path:
    """Download (if needed), verify and extract the real data set ``name`` (a key of SOURCES).

    Returns the extracted folder (archives) or the verified file. A verified download or a
    complete extraction already under ``root`` (default ``raw_dir()``) is not fetched again.
    """
    return download.fetch(_source(name), Path(root) if root is not None else raw_dir())


def _require(name: str, profile: Profile) -> Path:
    """The fetched data set ``name``, or RealDataMissing with the command that fetches it."""
    source = _source(name)
    ready = raw_dir() / (source.folder or source.filename)
    if not ready.exists():
        raise RealDataMissing(
            f"the real data set {source.size_note} is not under {raw_dir()}. Fetch it once with\n"
            f"    python data_scripts/fetch_real.py {source.group} --profile {profile.name}\n"
            "or unset TL_DATA to use the generated data (no network needed).")
    return ready


# ----------------------------------------------------------------------------- images
def to_grayscale(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [n, 3, H, W] -> float luma [n, 1, H, W] (ITU-R BT.601 weights)."""
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (rgb.float() * weights).sum(dim=1, keepdim=True)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float or uint8 images [n, 1, h, w] in 0..255 -> uint8 [n, 1, size, size] (bilinear)."""
    x = images.float()
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=size < x.shape[-1])
    return x.round().clamp(0, 255).to(torch.uint8)


def _read_cifar(folder: Path, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [n, 3, 32, 32] and labels of CIFAR-10 python batches (verified download)."""
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as handle:
            batch = pickle.load(handle, encoding="latin1")
        images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32))
        labels += list(batch["labels"])
    return np.concatenate(images), np.asarray(labels, np.int64)


def _images_payload(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                    config: dict[str, Any], classes: Sequence[str]) -> dict[str, Any]:
    """The generated layout: X/X_test uint8 [n, 1, S, S] (at most n / n_test), y int64, classes."""
    payload: dict[str, Any] = {"classes": tuple(classes)}
    for suffix, (images, labels), limit in (("", train, config["n"]), ("_test", test, config["n_test"])):
        x = torch.from_numpy(images[:limit])
        x = to_grayscale(x) if x.shape[1] == 3 else x
        payload[f"X{suffix}"] = resize_uint8(x, config["size"])
        payload[f"y{suffix}"] = torch.from_numpy(labels[:limit].astype(np.int64))
    return payload


def _build_image_task_a(config: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Read the fetched CIFAR-10 batches and convert them to the generated layout."""
    folder = _require("cifar10", profile) / CIFAR_FOLDER
    with open(folder / "batches.meta", "rb") as handle:
        classes = pickle.load(handle, encoding="latin1")["label_names"]
    train = _read_cifar(folder, [f"data_batch_{k}" for k in range(1, 6)])
    return _images_payload(train, _read_cifar(folder, ["test_batch"]), config, classes)


def image_config(name: str, profile: Profile) -> dict[str, Any]:
    """The cache config of a converted image data set ("cifar10" or "pneumoniamnist")."""
    n, n_test = ((profile.n_task_a, profile.n_task_a_test) if name == "cifar10"
                 else (profile.n_task_b_pool, profile.n_task_b_test))
    return {"version": VERSION, "source": name, "checksum": _source(name).checksum, "size": profile.image_size,
            "n": n, "n_test": n_test}


def image_task_a(profile: Profile | None = None) -> dict[str, Any]:
    """CIFAR-10 as task A: ``X`` uint8 [n, 1, S, S] grayscale, ``y`` int64, ``X_test``,
    ``y_test`` and ``classes`` (10 names). ``n`` is at most ``profile.n_task_a`` (50,000
    available), the test set at most ``profile.n_task_a_test`` (10,000 available)."""
    profile = profile or get_profile()
    config = image_config("cifar10", profile)
    return load_or_build("real_image_task_a", config, lambda: _build_image_task_a(config, profile), root=real_dir())


def _build_image_task_b(config: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Read the fetched PneumoniaMNIST npz and convert it to the generated layout."""
    with np.load(_require("pneumoniamnist", profile)) as npz:
        train = (npz["train_images"][:, None], npz["train_labels"].reshape(-1))
        test = (np.concatenate([npz["val_images"], npz["test_images"]])[:, None],
                np.concatenate([npz["val_labels"], npz["test_labels"]]).reshape(-1))
    return _images_payload(train, test, config, ("normal", "pneumonia"))


def image_task_b(profile: Profile | None = None) -> dict[str, Any]:
    """PneumoniaMNIST as task B (real chest X-rays): the same keys as :func:`image_task_a`.

    The official train split (4,708) is the pool, val + test (1,148) the test set, each cut to
    ``profile.n_task_b_pool`` / ``n_task_b_test``; 28x28 images are resized bilinearly to S.
    """
    profile = profile or get_profile()
    config = image_config("pneumoniamnist", profile)
    return load_or_build("real_image_task_b", config, lambda: _build_image_task_b(config, profile), root=real_dir())


# ----------------------------------------------------------------------------- speech
WAKE_WORD = "marvin"  # a Speech Commands word that task A never sees
FLOOR_DBFS = (-65.0, -45.0)  # a faint background under every clip: no digitally silent padding
NOISE_ONLY_DBFS = AUGMENT.noise_only_dbfs  # level of noise-only negatives: as in the generated data
STREAM_NOISE_DBFS = (-55.0, -35.0)  # background level of each minute of the negative stream
TRAIN_NOISE_SHARE = 0.7  # first 70 % of each background recording for training, the rest for tests
NEGATIVE_MIX = {"word": 0.5, "same_voice": 0.15, "speech_crop": 0.2, "noise": 0.15}
TEST_MIX = {"positive": 0.25, "word": 0.45, "speech_crop": 0.15, "noise": 0.15}
PROLIFIC = 3  # speakers who said the wake word this often are chosen first: few voices say the positives
STREAM_CHUNK_S = 60  # one background per minute of stream


@dataclass(frozen=True)
class Recording:
    """One Speech Commands clip: ``path`` relative to the data set folder."""

    path: str
    word: str
    speaker: str
    split: str  # "train", "validation" or "test" (from validation_list.txt / testing_list.txt)


def _read_list(folder: Path, name: str) -> set[str]:
    """The clip paths listed in ``folder/name`` (an official split list)."""
    path = folder / name
    if not path.exists():
        raise RealDataError(f"{path} is missing: the extraction is incomplete; delete {folder} and fetch again")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def speech_index(folder: Path) -> list[Recording]:
    """Every word clip of the data set with its speaker and official (speaker-disjoint) split."""
    testing, validation = _read_list(folder, "testing_list.txt"), _read_list(folder, "validation_list.txt")
    records = []
    for path in sorted(folder.glob("*/*.wav")):
        if path.parent.name.startswith("_"):  # _background_noise_
            continue
        rel = path.relative_to(folder).as_posix()
        split = "test" if rel in testing else "validation" if rel in validation else "train"
        records.append(Recording(rel, path.parent.name, path.name.split("_nohash_")[0], split))
    return records


def noise_bank(folder: Path, side: str) -> torch.Tensor:
    """The ``_background_noise_`` recordings joined: their first 70 % for ``side='train'``,
    the rest for ``'test'``, so test backgrounds are never heard in training."""
    parts = []
    for path in sorted((folder / "_background_noise_").glob("*.wav")):
        wave = read_clip(path)
        cut = int(len(wave) * TRAIN_NOISE_SHARE)
        parts.append(wave[:cut] if side == "train" else wave[cut:])
    if not parts or sum(len(p) for p in parts) == 0:
        raise RealDataError(f"no background noise under {folder / '_background_noise_'}: delete {folder} and "
                            "fetch again")
    return torch.cat(parts)


def _render_audio(folder: Path, items: Sequence[tuple[str, ...]], length: int, bank: torch.Tensor,
                  rng: np.random.Generator) -> torch.Tensor:
    """Windows [n, length]: each item's clips joined, placed (or cropped) at random, over a
    faint background; an empty item is background noise only, at a louder level."""
    clips = [torch.cat([read_clip(folder / p) for p in item]) if item else torch.zeros(0) for item in items]
    voiced, _ = place(clips, length, rng, allow_crop=True)
    silent = torch.tensor([not item for item in items], dtype=torch.bool)
    levels = torch.as_tensor(np.where(silent.numpy(), rng.uniform(*NOISE_ONLY_DBFS, size=len(items)),
                                      rng.uniform(*FLOOR_DBFS, size=len(items))))
    return voiced + set_level(crops(bank, len(items), length, rng), levels)


def _render(folder: Path, items: Sequence[tuple[str, ...]], seconds: float, bank: torch.Tensor,
            rng: np.random.Generator, block: int = 500) -> torch.Tensor:
    """Log-mel features, float16 [n, 1, 40, frames], of the windows of ``items`` (by blocks)."""
    length = round(seconds * SAMPLE_RATE)
    parts = [logmel(_render_audio(folder, items[start:start + block], length, bank, rng)).half()
             for start in range(0, len(items), block)]
    empty = torch.zeros(0, 1, N_MELS, frames_for(seconds), dtype=torch.float16)
    return torch.cat(parts) if parts else empty


def _sample(pool: Sequence[Recording], n: int, rng: np.random.Generator) -> list[Recording]:
    """``n`` recordings of ``pool`` in random order (with replacement only if it is too small)."""
    if n and not pool:
        raise RealDataError("the Speech Commands folder has too few clips: delete it and fetch again")
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=n > len(pool))] if n else []


def _words_a(records: Sequence[Recording], n_words: int) -> list[str]:
    """Task A's vocabulary: the data set's words other than the wake word, at most ``n_words``."""
    return sorted({r.word for r in records} - {WAKE_WORD})[:n_words]


def _speech_config(profile: Profile, **fields: Any) -> dict[str, Any]:
    """The cache config of a converted speech data set: the download's checksum and ``fields``."""
    return {"version": VERSION, "checksum": _source("speech_commands").checksum, "n_mels": N_MELS,
            "hop": HOP, "floor_dbfs": FLOOR_DBFS, "words": profile.speech_words_a, **fields}


def speech_task_a_config(profile: Profile) -> dict[str, Any]:
    """The cache config of the converted word-recognizer clips."""
    return _speech_config(profile, train=profile.speech_clips_a, test=profile.speech_clips_a_test,
                          seconds=WINDOW_A_S, seed=0)


def wake_train_config(profile: Profile, n_positives: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The cache config of the converted wake-word training windows."""
    n_positives = profile.speech_positives_b if n_positives is None else n_positives
    return _speech_config(profile, positives=n_positives, negatives=profile.speech_negatives_b,
                          seconds=WINDOW_B_S, seed=seed)


def wake_test_config(profile: Profile) -> dict[str, Any]:
    """The cache config of the converted wake-word test clips."""
    return _speech_config(profile, clips=profile.speech_test_b, seconds=CONTEXT_B_S, window_s=WINDOW_B_S, seed=0)


def negative_stream_config(profile: Profile) -> dict[str, Any]:
    """The cache config of the converted negative stream."""
    return _speech_config(profile, hours=profile.speech_stream_hours, chunk_s=STREAM_CHUNK_S, seed=0)


def _build_speech_task_a(config: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Render task A from the official training and testing splits."""
    started, folder = time.perf_counter(), _require("speech_commands", profile)
    records = speech_index(folder)
    words = _words_a(records, config["words"])
    index = {word: k for k, word in enumerate(words)}
    rng = np.random.default_rng(config["seed"])
    payload: dict[str, Any] = {"words": words}
    for side in ("train", "test"):
        pool = [r for r in records if r.split == side and r.word in index]
        chosen = [pool[i] for i in rng.permutation(len(pool))[:config[side]]]
        payload[f"X_{side}"] = _render(folder, [(r.path,) for r in chosen], config["seconds"],
                                       noise_bank(folder, side), rng)
        payload[f"y_{side}"] = torch.tensor([index[r.word] for r in chosen], dtype=torch.int64)
    payload["examples"] = _word_examples(folder, records, words[:6], config["seconds"], rng)
    _log(f"speech task A: {len(payload['y_train']):,} + {len(payload['y_test']):,} clips of {len(words)} words "
         f"in {time.perf_counter() - started:.0f} s")
    return payload


def _word_examples(folder: Path, records: Sequence[Recording], words: Sequence[str], seconds: float,
                   rng: np.random.Generator) -> dict[str, Any]:
    """One test clip of each of ``words`` as int16 audio, to listen to in the notebook."""
    first = {r.word: r for r in reversed(records) if r.split == "test"}
    shown = [first[word] for word in words if word in first]
    audio = _render_audio(folder, [(r.path,) for r in shown], round(seconds * SAMPLE_RATE),
                          noise_bank(folder, "test"), rng)
    return {"audio": to_int16(audio), "labels": [r.word for r in shown]}


def speech_task_a(profile: Profile | None = None, dtype: torch.dtype = torch.float32,
                  workers: int | None = None) -> dict[str, Any]:
    """Speech Commands as the word recognizer, in the layout of helpers.data.speech.speech_task_a.

    ``X_train`` [n, 1, 40, 98] log-mel of 1-s clips (official training split, at most
    ``profile.speech_clips_a``, a random subset), ``y_train``, ``X_test``/``y_test`` (testing
    list: other speakers; at most ``speech_clips_a_test``), ``words`` (the 34 words other than
    "marvin", at most ``speech_words_a``) and ``examples``. Simplifications: the validation
    list is not used; clips keep their recorded level (no loudness normalisation or extra
    augmentation), over a faint background-noise floor. ``workers`` is ignored.
    """
    profile = profile or get_profile()
    config = speech_task_a_config(profile)
    payload = load_or_build("real_speech_task_a", config, lambda: _build_speech_task_a(config, profile),
                            root=real_dir())
    return as_dtype(payload, dtype)


def _items(counts: dict[str, int], sources: dict[str, Sequence[Recording]], crop_clips: int,
           rng: np.random.Generator) -> tuple[list[tuple[str, ...]], list[str]]:
    """Items (tuples of clip paths) and kinds, shuffled: ``speech_crop`` joins ``crop_clips``
    words (a crop of continuous speech), ``noise`` has no clip."""
    items: list[tuple[str, ...]] = []
    kinds: list[str] = []
    for kind, n in counts.items():
        if kind == "noise":
            items += [()] * n
        elif kind == "speech_crop":
            items += [tuple(r.path for r in _sample(sources["word"], crop_clips, rng)) for _ in range(n)]
        else:
            items += [(r.path,) for r in _sample(sources[kind], n, rng)]
        kinds += [kind] * n
    order = rng.permutation(len(items))
    return [items[i] for i in order], [kinds[i] for i in order]


def _positive_speakers(train: Sequence[Recording], n: int, rng: np.random.Generator) -> list[str]:
    """Training speakers, in a seeded order, until they say the wake word ``n`` times; those who
    said it at least PROLIFIC times come first, so few voices say the positives (as generated)."""
    said = Counter(r.speaker for r in train if r.word == WAKE_WORD)
    chosen, total = [], 0
    for speaker in sorted(said, key=lambda s: (said[s] < PROLIFIC, rng.random())):
        if total >= n:
            break
        chosen.append(speaker)
        total += said[speaker]
    return chosen


def _build_wake_train(config: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Render the wake-word training set: "marvin" said by a few training speakers."""
    folder = _require("speech_commands", profile)
    train = [r for r in speech_index(folder) if r.split == "train"]
    rng = np.random.default_rng([config["seed"], 1])
    speakers = _positive_speakers(train, config["positives"], rng)
    positives = [r for r in train if r.word == WAKE_WORD and r.speaker in speakers][:config["positives"]]
    others = [r for r in train if r.word != WAKE_WORD]
    sources = {"positive": positives, "word": [r for r in others if r.speaker not in speakers] or others,
               "same_voice": [r for r in others if r.speaker in speakers] or others}
    counts = {"positive": len(positives), **split_counts(config["negatives"], NEGATIVE_MIX)}
    items, kinds = _items(counts, sources, 2, rng)
    X = _render(folder, items, config["seconds"], noise_bank(folder, "train"), rng)
    return {"X_train": X, "y_train": torch.tensor([k == "positive" for k in kinds], dtype=torch.int64),
            "kind_train": kinds, "positive_speakers": speakers}


def _build_wake_test(config: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Render the wake-word test set from the testing list, with one example of each kind."""
    folder = _require("speech_commands", profile)
    test = [r for r in speech_index(folder) if r.split == "test"]
    rng = np.random.default_rng([config["seed"], 2])
    sources = {"positive": [r for r in test if r.word == WAKE_WORD], "word": [r for r in test if r.word != WAKE_WORD]}
    counts = split_counts(config["clips"], TEST_MIX)
    counts["positive"] = min(counts["positive"], len(sources["positive"]))  # never repeat a test positive
    items, kinds = _items(counts, sources, 4, rng)
    bank = noise_bank(folder, "test")
    X = _render(folder, items, config["seconds"], bank, rng)
    firsts = [kinds.index(kind) for kind in dict.fromkeys(kinds)]  # one example of each kind
    length = round(config["window_s"] * SAMPLE_RATE)
    audio = _render_audio(folder, [items[i] for i in firsts], length, bank, rng)
    return {"X_test": X, "y_test": torch.tensor([k == "positive" for k in kinds], dtype=torch.int64),
            "kind_test": kinds, "examples": {"audio": to_int16(audio), "labels": [kinds[i] for i in firsts]}}


def wake_word_task(profile: Profile | None = None, n_positives: int | None = None, seed: int = 0,
                   dtype: torch.dtype = torch.float32, workers: int | None = None) -> dict[str, Any]:
    """The wake word "marvin", in the layout of helpers.data.speech.wake_word_task.

    Training (official training split): ``X_train`` [n, 1, 40, 148] 1.5-s windows, ``y_train``
    (1 = marvin), ``kind_train`` (positive, word, same_voice, speech_crop, noise) and
    ``positive_speakers`` (the few speakers, chosen by ``seed``, who say the positives). Test
    (testing list, other speakers, fixed): ``X_test`` [m, 1, 40, 298] 3-s contexts, ``y_test``,
    ``kind_test`` (positive, word, speech_crop, noise), ``examples``; also ``window_frames`` and
    ``wake_phrase``. Simplifications: no confusable phrases (the data set has none), no
    out-of-vocabulary kind (every other word is a task-A word), continuous speech is joined
    single words; counts are upper bounds (about 200 test positives exist). ``workers`` is ignored.
    """
    profile = profile or get_profile()
    train_config, test_config = wake_train_config(profile, n_positives, seed), wake_test_config(profile)
    train = load_or_build("real_speech_wake_train", train_config, lambda: _build_wake_train(train_config, profile),
                          root=real_dir())
    test = load_or_build("real_speech_wake_test", test_config, lambda: _build_wake_test(test_config, profile),
                         root=real_dir())
    return as_dtype({**train, **test, "window_frames": frames_for(WINDOW_B_S), "wake_phrase": WAKE_WORD},
                    dtype)


def _build_negative_stream(config: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Test-split words one after another, a minute at a time, then log-mel features."""
    folder = _require("speech_commands", profile)
    pool = [r for r in speech_index(folder) if r.split == "test" and r.word != WAKE_WORD]
    if not pool:
        raise RealDataError(f"no test clips under {folder}: delete it and fetch again")
    rng, bank = np.random.default_rng(config["seed"]), noise_bank(folder, "test")
    clips = (read_clip(folder / pool[i].path) for i in itertools.cycle(rng.permutation(len(pool))))
    length = config["chunk_s"] * SAMPLE_RATE
    n_chunks = math.ceil(config["hours"] * 3600 / config["chunk_s"])
    minutes = []
    for _ in range(n_chunks):
        track, _ = lay_out(clips, length, rng)
        noise = set_level(crops(bank, 1, length, rng), torch.tensor([rng.uniform(*STREAM_NOISE_DBFS)]))
        minutes.append(to_int16(track + noise[0]))
    audio = torch.cat(minutes).float() / 32767
    return {"features": logmel_stream(audio), "hours": n_chunks * config["chunk_s"] / 3600}


def negative_stream(profile: Profile | None = None, dtype: torch.dtype = torch.float32,
                    workers: int | None = None) -> dict[str, Any]:
    """Continuous speech with no wake word, in the layout of helpers.data.speech.negative_stream.

    Test-split words other than "marvin" one after another (random 0.3-2 s pauses; clips are
    reused when the stream is longer than the test split), over the test part of the
    background recordings, one per minute. Returns ``features`` [40, frames] (100 per second),
    ``hours`` (``profile.speech_stream_hours``, rounded up to whole minutes) and ``frame_rate``.
    ``workers`` is ignored.
    """
    profile = profile or get_profile()
    config = negative_stream_config(profile)
    payload = load_or_build("real_speech_negative_stream", config,
                            lambda: _build_negative_stream(config, profile), root=real_dir())
    return as_dtype({**payload, "frame_rate": FRAME_RATE}, dtype)
