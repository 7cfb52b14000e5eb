"""Where the course's data come from: the one place that reads ``TL_DATA``.

``TL_DATA=synthetic`` (the default, offline) generates every data set here; ``TL_DATA=real``
serves fetched real data sets converted to the same layout (helpers.data.real). Every data set is
described by a :class:`DataSpec` — its name, its source and the config that builds it — whose
:meth:`DataSpec.key` is part of the cache key of everything trained on it, so the two sources (or
two configs) can never share a cached network or result. Loaded data carry that key as ``"key"``.

    task_a_images(profile)   task_b_images(profile)   image_classes("A" | "B", profile)
    speech_task_a(profile)   wake_word_task(profile)  negative_stream(profile)   demo_stream()
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from helpers.config import ConfigError, Profile, get_profile

DATA_SOURCES = ("synthetic", "real")


def data_source() -> str:
    """``$TL_DATA``: ``synthetic`` (the default, offline) or ``real`` (fetched data sets)."""
    value = os.environ.get("TL_DATA") or "synthetic"
    if value.strip().lower() not in DATA_SOURCES:
        raise ConfigError(f"unknown data source TL_DATA={value!r}: choose one of {', '.join(DATA_SOURCES)}")
    return value.strip().lower()


@dataclass(frozen=True)
class DataSpec:
    """One data set: what it is (``name``), where it comes from (``source``) and the config its
    builder is keyed by (JSON-able). ``load()`` builds or loads it; ``key()`` names it in caches."""

    name: str
    source: str
    config: Mapping[str, Any]
    loader: Callable[[], dict[str, Any]]

    def key(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "config": dict(self.config)}

    def load(self) -> dict[str, Any]:
        return {**self.loader(), "key": self.key()}


def _spec(name: str, synthetic: Callable[[], tuple[dict, Callable]], real: Callable[[], tuple[dict, Callable]]
          ) -> DataSpec:
    source = data_source()
    config, loader = (real if source == "real" else synthetic)()
    return DataSpec(name, source, config, loader)


# ----------------------------------------------------------------------------- images
IMAGE_TASK_A_SEED, IMAGE_TASK_B_SEED, IMAGE_NEAR_SEED = 1, 2, 3  # generator seeds of the image tasks


def task_a_images_spec(profile: Profile, n_train: int | None = None) -> DataSpec:
    """Task A images: ``n_train`` generated images (default the profile's), or CIFAR-10 (real)."""
    from helpers.data import images, real

    n_train = n_train or profile.n_task_a

    def synthetic() -> tuple[dict, Callable]:
        config = images.task_config("A", n_train, IMAGE_TASK_A_SEED, profile.n_task_a_test, profile.image_size)
        return config, lambda: {**images.task_data(config), "classes": images.TASK_A_CLASSES}

    def from_real() -> tuple[dict, Callable]:
        return {**real.image_config("cifar10", profile), "n_train": n_train}, lambda: _first(real.image_task_a(profile),
                                                                                             n_train)

    return _spec("task_a_images", synthetic, from_real)


def task_b_images_spec(profile: Profile) -> DataSpec:
    """Task B images: the pool N_B is drawn from and a fixed test set (PneumoniaMNIST when real)."""
    from helpers.data import images, real

    def synthetic() -> tuple[dict, Callable]:
        config = images.task_config("B", profile.n_task_b_pool, IMAGE_TASK_B_SEED, profile.n_task_b_test,
                                    profile.image_size)
        return config, lambda: {**images.task_data(config), "classes": images.TASK_B_CLASSES}

    def from_real() -> tuple[dict, Callable]:
        return real.image_config("pneumoniamnist", profile), lambda: real.image_task_b(profile)

    return _spec("task_b_images", synthetic, from_real)


def near_task_images_spec(profile: Profile) -> DataSpec:
    """The near task: objects task A never showed, drawn like task A's (always generated: it is
    defined by the generator, real data sets have no such task). Pool and test set."""
    from helpers.data import images

    def generated() -> tuple[dict, Callable]:
        config = images.task_config("near", profile.near_pool, IMAGE_NEAR_SEED, profile.n_task_b_test,
                                    profile.image_size)
        return config, lambda: {**images.task_data(config), "classes": images.NEAR_CLASSES}

    return DataSpec("near_task_images", "synthetic", *generated())


# The real-photo check task: a pool of patches a photo to draw N from, a fixed test set a photo.
PHOTO_POOL, PHOTO_TEST, PHOTO_SEED = 50, 50, 0


def photo_patches_spec(profile: Profile) -> DataSpec:
    """Real photographs as a target task (helpers.data.photos): 32x32 patches of the 20 photos the
    scikit-image wheel ships, the class is the photo; training patches from each photo's left half,
    test patches from its right half. Always these photos (read offline from the installed wheel),
    in every profile and whatever ``TL_DATA`` says: they are the check that task A's features help
    on images its generator did not draw."""
    from helpers.data import photos

    config = photos.photo_patches_config(PHOTO_POOL, PHOTO_TEST, PHOTO_SEED)
    return DataSpec("photo_patches", "scikit-image", config,
                    lambda: photos.photo_patches(PHOTO_POOL, PHOTO_TEST, PHOTO_SEED))


def photo_crops_spec(profile: Profile, n_train: int | None = None) -> DataSpec:
    """A task A of photographs (helpers.data.photos.photo_crops): ``n_train`` random crops of 500
    regions of three photos that scikit-learn and matplotlib ship (default: as many images as task
    A). Always these photos, whatever ``TL_DATA`` says: notebook 03 compares this pre-training with
    the drawn task A's on the real-photo check."""
    from helpers.data import photos

    config = photos.photo_crops_config(n_train or profile.n_task_a, profile.n_task_a_test, IMAGE_TASK_A_SEED,
                                       profile.image_size)
    return DataSpec("photo_crops", "scikit-learn and matplotlib", config,
                    lambda: photos.photo_crops(config["n_train"], config["n_test"], config["seed"], config["size"]))


def _first(data: dict[str, Any], n_train: int) -> dict[str, Any]:
    """``data`` with only its first ``n_train`` training images (a real set has as many as it has)."""
    if n_train > len(data["y"]):
        raise ValueError(f"real task A has {len(data['y'])} training images, fewer than {n_train}: "
                         "ask for fewer (n_task_a in the profile)")
    return {**data, "X": data["X"][:n_train], "y": data["y"][:n_train]}


def task_a_images(profile: Profile | None = None, n_train: int | None = None) -> dict[str, Any]:
    """Task A: ``X`` uint8 [n, 1, S, S], ``y``, ``X_test``, ``y_test``, ``classes``, ``key``."""
    return task_a_images_spec(profile or get_profile(), n_train).load()


def task_b_images(profile: Profile | None = None) -> dict[str, Any]:
    """Task B: ``X`` uint8 [n, 1, S, S] (the pool), ``y``, ``X_test``, ``y_test``, ``classes``, ``key``."""
    return task_b_images_spec(profile or get_profile()).load()


def image_classes(task: str, profile: Profile | None = None) -> tuple[str, ...]:
    """The class names of image task ``"A"`` or ``"B"`` for the current source."""
    from helpers.data import images, real

    if task not in ("A", "B"):
        raise ValueError(f"unknown image task {task!r}: use 'A' or 'B'")
    if data_source() == "synthetic":
        return images.TASK_A_CLASSES if task == "A" else images.TASK_B_CLASSES
    profile = profile or get_profile()
    return tuple((real.image_task_a(profile) if task == "A" else real.image_task_b(profile))["classes"])


# ----------------------------------------------------------------------------- speech
def as_dtype(payload: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """``payload`` with its floating-point tensors in ``dtype`` (helpers.data.audio.as_dtype)."""
    from helpers.data import audio  # here: the image notebooks need no torchaudio

    return audio.as_dtype(payload, dtype)


def speech_task_a_spec(profile: Profile) -> DataSpec:
    """The word recognizer's clips: eSpeak words, or Speech Commands (real)."""
    from helpers.data import real, speech

    def synthetic() -> tuple[dict, Callable]:
        return speech.task_a_config(profile), lambda: speech.speech_task_a(profile, dtype=torch.float16)

    def from_real() -> tuple[dict, Callable]:
        return real.speech_task_a_config(profile), lambda: real.speech_task_a(profile, dtype=torch.float16)

    return _spec("speech_task_a", synthetic, from_real)


def wake_train_spec(profile: Profile, n_positives: int | None = None, seed: int = 0,
                    n_speakers: int | None = None) -> DataSpec:
    """The wake-word training windows (``seed`` picks the positive speakers and the clips)."""
    from helpers.data import real, speech

    n_positives = profile.speech_positives_b if n_positives is None else n_positives
    n_speakers = n_speakers or speech.N_POSITIVE_SPEAKERS

    def synthetic() -> tuple[dict, Callable]:
        config = speech.wake_train_config(profile, n_positives, seed, n_speakers)
        return config, lambda: speech.wake_word_task(profile, n_positives, seed, n_speakers=n_speakers)

    def from_real() -> tuple[dict, Callable]:  # real data: the speakers are whoever said the word
        return real.wake_train_config(profile, n_positives, seed), lambda: real.wake_word_task(profile, n_positives, seed)

    return _spec("wake_word_train", synthetic, from_real)


def wake_test_spec(profile: Profile) -> DataSpec:
    """The wake-word test clips (held-out voices), the same for every seed."""
    from helpers.data import real, speech

    def synthetic() -> tuple[dict, Callable]:
        return speech.wake_test_config(profile), lambda: speech.wake_word_task(profile)

    def from_real() -> tuple[dict, Callable]:
        return real.wake_test_config(profile), lambda: real.wake_word_task(profile)

    return _spec("wake_word_test", synthetic, from_real)


def negative_stream_spec(profile: Profile) -> DataSpec:
    """Hours of speech and noise with no wake word, for false accepts per hour."""
    from helpers.data import real, speech

    def synthetic() -> tuple[dict, Callable]:
        return speech.stream_config(profile), lambda: speech.negative_stream(profile)

    def from_real() -> tuple[dict, Callable]:
        return real.negative_stream_config(profile), lambda: real.negative_stream(profile)

    return _spec("negative_stream", synthetic, from_real)


def speech_task_a(profile: Profile | None = None, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Task A, the word recognizer: ``X_train`` [n, 1, 40, 98] log-mel (1-s clips), ``y_train``,
    ``X_test``/``y_test`` (held-out voices), ``words`` (the vocabulary), ``examples``, ``key``."""
    return as_dtype(speech_task_a_spec(profile or get_profile()).load(), dtype)


def wake_word_task(profile: Profile | None = None, n_positives: int | None = None, seed: int = 0,
                   dtype: torch.dtype = torch.float32, n_speakers: int | None = None) -> dict[str, Any]:
    """Task B, the wake-word detector: a small training set (``seed`` picks it; ``n_speakers``
    voices say the positives) and a fixed test set; see helpers.data.speech.wake_word_task for the
    keys (``X_train``, ``y_train``, ``kind_train``, ``X_test``, ``y_test``, ``kind_test``, ...)."""
    profile = profile or get_profile()
    train = wake_train_spec(profile, n_positives, seed, n_speakers)
    payload = {**train.loader(), "key": {"train": train.key(), "test": wake_test_spec(profile).key()}}
    return as_dtype(payload, dtype)


def negative_stream(profile: Profile | None = None, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Continuous speech and noise with no wake word: ``features`` [40, frames], ``hours``,
    ``frame_rate``, ``key``."""
    return as_dtype(negative_stream_spec(profile or get_profile()).load(), dtype)


def demo_stream(seconds: float = 45.0, seed: int = 0, n_wake: int = 4) -> dict[str, Any]:
    """A short generated recording with the wake word ``n_wake`` times (always eSpeak: a demo)."""
    from helpers.data import speech

    return speech.demo_stream(seconds, seed, n_wake)


def prepare_speech(profile: Profile) -> None:
    """Build every speech data set notebook 04 reads from the current source (a prepare step)."""
    from helpers.data import real, speech

    if data_source() == "synthetic":
        speech.prepare(profile)  # one synthesis pool for every set
        return
    real.speech_task_a(profile), real.wake_word_task(profile), real.negative_stream(profile)
    speech.demo_stream()  # the live demo is always generated: it needs the wake word at known times
