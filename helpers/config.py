"""Profiles and paths.

A *profile* fixes every size and budget of the course in one frozen dataclass, so a notebook
never hard-codes "how many images" or "how many epochs". Choose one with the environment
variable ``TL_PROFILE`` (``quick`` for CI, ``standard`` for a laptop CPU, ``full`` for a GPU).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Profile:
    """Every size and budget of the course (units in the comments)."""

    name: str
    # --- images (tasks A and B) ---
    image_size: int = 32  # pixels per side
    n_task_a: int = 90_000  # task-A training images ("a million photos" analogue)
    n_task_a_test: int = 2_000  # task-A test images
    pretrain_epochs: int = 4  # passes over task A
    # A small task A (notebook 05's 100 images; 1,000 and 10,000 in the larger profiles' gain maps) is
    # shown at least this many examples, in more epochs (experiments.pretrain_recipe, where the quick
    # budget's measurement is); standard and full keep the 40,000 their figures were measured with.
    pretrain_min_samples: int = 20_000
    n_task_b_pool: int = 4_000  # task-B training pool that subsets are drawn from
    n_task_b_test: int = 2_000  # task-B test images (fixed)
    # N_B values of the sweep. Quick stops at 1,000, where the claims' largest size is (its 2,000
    # column cost 115 s of one worker for a check the larger profiles make at 5,000 and 10,000; issue 17).
    target_sizes: tuple[int, ...] = (50, 100, 1_000)
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds of every claim
    width: int = 32  # channels of the first conv block (doubles per block)
    batch_size: int = 64  # examples per optimiser step
    near_pool: int = 12_000  # near-task pool (notebook 03: new objects drawn like task A's)
    # Its sizes: 2 and 1,000 images a class of its 12 classes (images.NEAR_CLASSES), the two its claims
    # read (standard and full add 10 a class). With the six classes of an earlier near task, the frozen
    # backbone still led at 200 a class (by 5 points, quick) and all layers pulled ahead only with
    # thousands (+2.7 at 1,000, +3.6 at 2,000 a class).
    near_target_sizes: tuple[int, ...] = (24, 12_000)
    # N_B of notebook 03's learning-rate schemes (its figures read 100; at 1,000 in the larger
    # profiles: 70 s of one worker in the quick one, for a row no claim reads; issue 17)
    lr_scheme_sizes: tuple[int, ...] = (100,)
    # --- speech (notebook 04) ---
    speech_words_a: int = 100  # words in task A's vocabulary
    speech_clips_a: int = 12_000  # task-A training clips ("10,000 hours" analogue)
    speech_positives_b: int = 100  # wake-word training clips ("one hour" analogue)
    speech_stream_hours: float = 2.0  # hours of ordinary speech (held-out voices) for FA/h: half tunes, half counts
    speech_epochs_a: int = 8  # passes over speech task A
    speech_clips_a_test: int = 2_000  # task-A test clips (held-out voice variants)
    speech_negatives_b: int = 1_500  # wake-word training negatives (1.5-s windows)
    speech_test_b: int = 1_200  # wake-word test clips (held-out voices, 3-s contexts)
    detector_epochs: int = 15  # passes over notebook 04's (and 05's) wake-word sets (wakeword.recipe_for)
    # --- your own wake word (notebook 07) ---
    custom_positives: int = 4_000  # synthetic clips of the phrase (training voices)
    custom_negatives: int = 6_000  # negative clips: confusables, words, sentence crops, noise
    custom_stream_hours: float = 1.5  # hours of ordinary speech by the training voices (negatives)
    # --- counter-example grid (notebook 05) ---
    # N_A values. Quick maps the two task As its claims read (the lecture's corner and the
    # counter-example's: all its runs but the 100-image row at N_B = 100 are the sweep's and the
    # reversed sizes'); the larger profiles fill in the sizes between (a middle row of 3,000 cost
    # 77 s of one worker in quick; issue 17).
    grid_task_a_sizes: tuple[int, ...] = (100, 90_000)
    grid_target_sizes: tuple[int, ...] = (100, 1_000)  # N_B values (claims read 100; at 1,000 the gain is gone)


PROFILES: dict[str, Profile] = {
    "quick": Profile(name="quick"),
    "standard": Profile(
        name="standard",
        near_target_sizes=(24, 120, 12_000),
        n_task_a=150_000,
        pretrain_epochs=4,
        n_task_b_pool=6_000,
        n_task_b_test=4_000,
        target_sizes=(50, 100, 300, 1_000, 5_000),
        seeds=(0, 1, 2, 3, 4),
        lr_scheme_sizes=(100, 1_000),
        speech_clips_a=30_000,
        speech_stream_hours=4.0,
        speech_epochs_a=10,
        custom_positives=8_000,
        custom_negatives=10_000,
        custom_stream_hours=3.0,
        detector_epochs=20,
        pretrain_min_samples=40_000,
        speech_clips_a_test=4_000,
        speech_negatives_b=3_000,
        speech_test_b=2_000,
        grid_task_a_sizes=(100, 1_000, 10_000, 150_000),
        grid_target_sizes=(50, 100, 1_000, 5_000),
    ),
    "full": Profile(
        name="full",
        near_target_sizes=(24, 120, 12_000),
        n_task_a=200_000,
        pretrain_epochs=6,
        n_task_b_pool=12_000,
        n_task_b_test=5_000,
        target_sizes=(50, 100, 300, 1_000, 3_000, 10_000),
        seeds=(0, 1, 2, 3, 4),
        lr_scheme_sizes=(100, 1_000),
        width=48,
        batch_size=128,
        speech_clips_a=60_000,
        speech_stream_hours=8.0,
        speech_epochs_a=15,
        custom_positives=16_000,
        custom_negatives=20_000,
        custom_stream_hours=6.0,
        detector_epochs=20,
        pretrain_min_samples=40_000,
        speech_clips_a_test=6_000,
        speech_negatives_b=6_000,
        speech_test_b=4_000,
        grid_task_a_sizes=(100, 1_000, 10_000, 200_000),
        grid_target_sizes=(50, 100, 1_000, 10_000),
    ),
}
# Without TL_PROFILE: "full" on a CUDA GPU, else "quick" — its first notebook is ready within
# minutes on a laptop CPU, where "standard" pre-trains for about 20 minutes first (issue 17).
DEFAULT_PROFILE = "quick"
GPU_PROFILE = "full"


def default_profile_name() -> str:
    """``$TL_PROFILE``, else ``full`` when PyTorch sees a CUDA GPU, else ``quick``."""
    if os.environ.get("TL_PROFILE"):
        return os.environ["TL_PROFILE"]
    import torch  # here: importing helpers.config stays light

    return GPU_PROFILE if torch.cuda.is_available() else DEFAULT_PROFILE


class ConfigError(ValueError):
    """A setting the user gave is not valid; the message says what to do."""


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name`` (default: :func:`default_profile_name`)."""
    name = name or default_profile_name()
    key = name.strip().lower()
    if key not in PROFILES:
        valid = ", ".join(PROFILES)
        raise ConfigError(f"unknown profile {name!r}: choose one of {valid} (set TL_PROFILE=...)")
    return PROFILES[key]


def replace_profile(profile: Profile, **changes: object) -> Profile:
    """A copy of ``profile`` with some fields changed; unknown field names are an error."""
    known = {f.name for f in fields(Profile)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"unknown profile field(s) {unknown}: valid fields are {sorted(known)}")
    values = {f.name: getattr(profile, f.name) for f in fields(Profile)}
    return Profile(**{**values, **changes})  # type: ignore[arg-type]


def _root(env_var: str, default: str) -> Path:
    return Path(os.environ.get(env_var) or REPO_ROOT / default).expanduser()


def data_dir() -> Path:
    """Generated and downloaded data sets (``$TL_DATA_DIR``, default ``data/``)."""
    return _root("TL_DATA_DIR", "data")


def artifacts_dir() -> Path:
    """Checkpoints and cached experiment results (``$TL_ARTIFACTS_DIR``, default ``artifacts/``)."""
    return _root("TL_ARTIFACTS_DIR", "artifacts")


def build_dir() -> Path:
    """Executed notebooks, site and results.json (``$TL_BUILD_DIR``, default ``build/``)."""
    return _root("TL_BUILD_DIR", "build")
