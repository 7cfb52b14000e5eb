"""helpers.data.real: downloads (verified, atomic) and conversions, against a loopback server.

Small archives in the REAL formats (CIFAR-10 python batches, a MedMNIST npz, a Speech Commands
tarball) are built here and served from 127.0.0.1: no test touches the internet.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import pickle
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile
import torch
import torchvision
from loopback import LoopbackServer, serving

from helpers.config import ConfigError, get_profile, replace_profile
from helpers.data import audio, images, real, sources

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
WORDS = ("yes", "no", "up", "marvin")
SPEAKERS = {"0a1b2c3d": "train", "1b2c3d4e": "train", "2c3d4e5f": "validation", "3d4e5f60": "test"}
CLIP_S = 0.6  # seconds of each toy word clip (real ones are up to 1 s)


# ----------------------------------------------------------------------------- toy archives
def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _cifar_batch(colours: list[tuple[int, int, int]], labels: list[int]) -> bytes:
    """A CIFAR-10 python batch: rows of 3072 uint8 (R plane, G plane, B plane), one colour each."""
    data = np.stack([np.repeat(np.asarray(c, np.uint8), 32 * 32) for c in colours])
    return pickle.dumps({"batch_label": "toy", "labels": labels, "data": data, "filenames": []})


def cifar_archive() -> bytes:
    members = {f"cifar-10-batches-py/data_batch_{k}": _cifar_batch([(10 * k, 100, 200), (255, 0, 0)], [k, k + 1])
               for k in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = _cifar_batch([(0, 255, 0), (0, 0, 255), (9, 9, 9)], [0, 1, 2])
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({"label_names": CIFAR_CLASSES, "num_vis": 3072})
    return _tar_gz(members)


def pneumonia_npz() -> bytes:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8).reshape(n, 1)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _wav(seconds: float, frequency: float, seed: int) -> bytes:
    t = np.arange(round(seconds * 16_000)) / 16_000
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * frequency * t) + noise, 16_000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def speech_archive() -> bytes:
    """Speech Commands layout: <word>/<speaker>_nohash_<k>.wav, the two split lists, backgrounds."""
    members: dict[str, bytes] = {}
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    for w, word in enumerate(WORDS):
        for s, (speaker, split) in enumerate(SPEAKERS.items()):
            for k in range(2):
                name = f"{word}/{speaker}_nohash_{k}.wav"
                members[name] = _wav(CLIP_S, 300 + 150 * w, seed=100 * w + 10 * s + k)
                lists.get(split, []).append(name)
    members["validation_list.txt"] = "\n".join(lists["validation"]).encode()
    members["testing_list.txt"] = "\n".join(lists["test"]).encode()
    members["_background_noise_/white_noise.wav"] = _wav(8.0, 50, seed=7)
    members["_background_noise_/README.md"] = b"background recordings"
    return _tar_gz(members)


@pytest.fixture(scope="module")
def archives() -> dict[str, bytes]:
    """Served file name -> bytes, in the formats of the real downloads."""
    return {"cifar-10-python.tar.gz": cifar_archive(), "pneumoniamnist.npz": pneumonia_npz(),
            "speech_commands_v0.02.tar.gz": speech_archive()}


@pytest.fixture
def server(archives: dict[str, bytes]) -> Iterator[LoopbackServer]:
    with serving(archives) as httpd:
        yield httpd


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> LoopbackServer:
    """TL_DATA_DIR in tmp_path and every source pointing at the loopback server."""
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TL_DATA", raising=False)
    for name, source in real.SOURCES.items():
        data = server.files[source.filename]
        digest = hashlib.new(source.algorithm, data).hexdigest()
        monkeypatch.setitem(real.SOURCES, name, dataclasses.replace(source, url=server.url(source.filename),
                                                                    checksum=digest))
    return server


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


IMAGE_PROFILE = replace_profile(get_profile("quick"), n_task_a=7, n_task_a_test=100, n_task_b_pool=4,
                                n_task_b_test=100)
SPEECH_PROFILE = replace_profile(get_profile("quick"), speech_clips_a=10, speech_clips_a_test=5,
                                 speech_positives_b=3, speech_negatives_b=8, speech_test_b=8,
                                 speech_stream_hours=1 / 60)


# ----------------------------------------------------------------------------- settings and registry
def test_data_source_is_synthetic_by_default_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TL_DATA", raising=False)
    assert sources.data_source() == "synthetic"
    monkeypatch.setenv("TL_DATA", " Real ")
    assert sources.data_source() == "real"
    monkeypatch.setenv("TL_DATA", "kaggle")
    with pytest.raises(ConfigError, match="'kaggle'.*synthetic, real"):
        sources.data_source()
    with pytest.raises(ConfigError, match="cifar10, pneumoniamnist, speech_commands"):
        real.fetch("imagenet")


def test_registry_uses_what_the_maintained_libraries_publish() -> None:
    from torchaudio.datasets import speechcommands

    cifar = real.SOURCES["cifar10"]
    assert (cifar.url, cifar.filename, cifar.checksum) == (torchvision.datasets.CIFAR10.url,
                                                           torchvision.datasets.CIFAR10.filename,
                                                           torchvision.datasets.CIFAR10.tgz_md5)
    assert real.CIFAR_FOLDER == torchvision.datasets.CIFAR10.base_folder
    commands = real.SOURCES["speech_commands"]
    assert commands.url.endswith("/speech_commands_v0.02.tar.gz") and commands.algorithm == "sha256"
    assert speechcommands._CHECKSUMS[commands.url] == commands.checksum
    pneumonia = real.SOURCES["pneumoniamnist"]
    assert pneumonia.url.startswith("https://zenodo.org/") and len(pneumonia.checksum) == 32


# ----------------------------------------------------------------------------- downloads
def test_images_are_downloaded_once_and_converted_to_the_generated_layout(env: LoopbackServer) -> None:
    folder = real.fetch("cifar10")
    assert (folder / "cifar-10-batches-py" / "test_batch").exists()
    real.fetch("pneumoniamnist")
    downloads = len(env.downloads)
    real.fetch("cifar10"), real.fetch("pneumoniamnist")
    assert len(env.downloads) == downloads  # verified files are not fetched again

    generated, _ = images.make_task_a(2, seed=0, image_size=IMAGE_PROFILE.image_size)
    task_a = real.image_task_a(IMAGE_PROFILE)
    assert task_a["X"].shape == (7, *generated.shape[1:]) and task_a["X"].dtype == generated.dtype == torch.uint8
    assert task_a["X_test"].shape == (3, *generated.shape[1:]) and task_a["y"].dtype == torch.int64
    assert task_a["classes"] == tuple(CIFAR_CLASSES) and task_a["y"][:2].tolist() == [1, 2]
    assert task_a["X_test"][0].unique().tolist() == [round(0.587 * 255)]  # pure green -> its luma

    task_b = real.image_task_b(IMAGE_PROFILE)
    assert task_b["X"].shape == (4, 1, 32, 32) and task_b["X_test"].shape == (5, 1, 32, 32)  # 28 px -> 32
    assert task_b["X"].dtype == torch.uint8 and task_b["y"].dtype == torch.int64
    assert task_b["classes"] == ("normal", "pneumonia") and task_b["y_test"].tolist() == [0, 1, 0, 1, 0]


def test_checksum_mismatch_is_an_error_and_leaves_no_file(env: LoopbackServer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = dataclasses.replace(real.SOURCES["pneumoniamnist"], checksum="0" * 32)
    monkeypatch.setitem(real.SOURCES, "pneumoniamnist", wrong)
    actual = _md5(env.files["pneumoniamnist.npz"])
    with pytest.raises(real.RealDataError, match=f"expected md5 {'0' * 32}, got {actual}"):
        real.fetch("pneumoniamnist")
    assert _files_under(real.raw_dir()) == []


def test_interrupted_download_leaves_nothing_and_the_next_fetch_restarts(env: LoopbackServer) -> None:
    env.mode = "truncated"
    with pytest.raises(real.RealDataError, match="interrupted.*run the command again"):
        real.fetch("cifar10")
    assert _files_under(real.raw_dir()) == []
    env.mode = "good"
    assert (real.fetch("cifar10") / "cifar-10-batches-py" / "data_batch_5").exists()


def test_a_corrupt_download_on_disk_is_fetched_again(env: LoopbackServer) -> None:
    path = real.fetch("pneumoniamnist")
    path.write_bytes(b"not an npz")
    assert real.fetch("pneumoniamnist").read_bytes() == env.files["pneumoniamnist.npz"]


def test_no_network_is_a_clear_error(env: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/pneumoniamnist.npz"
    monkeypatch.setitem(real.SOURCES, "pneumoniamnist", dataclasses.replace(real.SOURCES["pneumoniamnist"], url=url))
    with pytest.raises(real.RealDataError, match=f"cannot download {url}.*TL_DATA=synthetic"):
        real.fetch("pneumoniamnist")
    assert _files_under(real.raw_dir()) == []


def test_real_data_that_was_never_fetched_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TL_DATA", "real")
    with pytest.raises(real.RealDataMissing, match="python data_scripts/fetch_real.py speech --profile quick"):
        real.wake_word_task(SPEECH_PROFILE)
    with pytest.raises(real.RealDataMissing, match="python data_scripts/fetch_real.py images --profile quick"):
        real.image_task_b(IMAGE_PROFILE)


# ----------------------------------------------------------------------------- speech
def test_speech_commands_end_to_end_in_the_generated_layout(env: LoopbackServer) -> None:
    folder = real.fetch("speech_commands")
    splits = {r.split for r in real.speech_index(folder) if r.speaker == "3d4e5f60"}
    assert splits == {"test"}

    task_a = real.speech_task_a(SPEECH_PROFILE)
    assert set(task_a) == {"X_train", "y_train", "X_test", "y_test", "words", "examples"}
    assert task_a["words"] == ["no", "up", "yes"]  # the wake word is not a task-A word
    assert real._words_a(real.speech_index(folder), 2) == ["no", "up"]  # at most profile.speech_words_a
    assert task_a["X_train"].shape == (10, 1, audio.N_MELS, audio.frames_for(1.0))
    assert task_a["X_test"].shape == (5, 1, 40, 98) and task_a["X_train"].dtype == torch.float32
    assert task_a["y_train"].dtype == torch.int64 and set(task_a["y_test"].tolist()) <= {0, 1, 2}
    assert task_a["examples"]["audio"].shape == (3, 16_000) and task_a["examples"]["audio"].dtype == torch.int16

    wake = real.wake_word_task(SPEECH_PROFILE)
    assert wake["X_train"].shape == (11, 1, 40, audio.frames_for(1.5)) and wake["y_train"].sum() == 3
    assert wake["X_test"].shape == (7, 1, 40, audio.frames_for(3.0)) and wake["y_test"].sum() == 2
    assert set(wake["kind_train"]) == {"positive", "word", "same_voice", "speech_crop", "noise"}
    assert wake["window_frames"] == 148 and wake["wake_phrase"] == "marvin"
    assert wake["examples"]["audio"].shape[1] == 24_000 and len(wake["positive_speakers"]) == 2

    stream = real.negative_stream(SPEECH_PROFILE)
    assert stream["features"].shape == (40, audio.n_frames(60 * 16_000)) and stream["hours"] == 1 / 60
    assert stream["frame_rate"] == audio.FRAME_RATE and torch.isfinite(stream["features"]).all()

    assert torch.equal(real.speech_task_a(SPEECH_PROFILE)["X_test"], task_a["X_test"])  # loaded from the cache
    assert real.negative_stream(SPEECH_PROFILE, dtype=torch.float16)["features"].dtype == torch.float16


# ----------------------------------------------------------------------------- command line
def _fetch_script() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "data_scripts" / "fetch_real.py"
    spec = importlib.util.spec_from_file_location("fetch_real", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fetch_real_command(env: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    script = _fetch_script()
    assert script.main(["images", "--profile", "quick"]) == 0
    assert "image_task_a (quick): X [10, 1, 32, 32]" in capsys.readouterr().out
    assert script.main(["images", "--profile", "huge"]) == 2
    missing = dataclasses.replace(real.SOURCES["pneumoniamnist"], url=env.url("gone.npz"), filename="gone.npz")
    monkeypatch.setitem(real.SOURCES, "pneumoniamnist", missing)
    assert script.main(["images", "--profile", "quick"]) == 1
    assert "error: cannot download" in capsys.readouterr().err


def _tiny_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Budgets of a few steps: these tests check the plumbing on real formats, not the figures (the
    profiles below set the budgets a profile holds: pretrain_min_samples, detector_epochs)."""
    from helpers import experiments, wakeword

    monkeypatch.setattr(experiments, "RECIPE", dataclasses.replace(experiments.RECIPE, min_samples=8, max_samples=8))
    monkeypatch.setattr(wakeword, "REVERSED", dataclasses.replace(wakeword.REVERSED, n_clips_a=4, n_words_a=2,
                                                                  epochs_a=1))


def test_the_image_notebooks_experiment_paths_run_on_real_data(env: LoopbackServer, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """TL_DATA=real: what notebooks 01, 02, 03 and 05 ask of the image data and experiments runs on
    CIFAR-10 / PneumoniaMNIST in their real formats (served on 127.0.0.1)."""
    from helpers import data, experiments

    cpu = torch.device("cpu")
    real.fetch("cifar10"), real.fetch("pneumoniamnist")
    monkeypatch.setenv("TL_DATA", "real")
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    _tiny_recipes(monkeypatch)
    profile = replace_profile(IMAGE_PROFILE, n_task_a=7, pretrain_epochs=1, width=4, seeds=(0,), target_sizes=(2, 4),
                              grid_task_a_sizes=(5, 7), grid_target_sizes=(2,), pretrain_min_samples=20)
    assert data.image_classes("A", profile) == tuple(CIFAR_CLASSES)  # notebook 01
    assert data.image_classes("B", profile) == ("normal", "pneumonia")  # notebook 02
    assert data.task_a_images(profile)["key"]["source"] == "real"
    model, info = experiments.pretrained_backbone(profile, device=cpu)
    assert model.head.out_features == 10 and info["n_task_a"] == 7
    rows = experiments.sweep(profile, device=cpu)  # notebook 03
    assert len(rows) == 4 * 2 and all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert experiments.transfer_gain(rows, 2).shape == (1,)
    assert experiments.frozen_in_train_mode(profile, properly=True, n_b=2, device=cpu)["batchnorm_drift"] == 0.0
    assert len(experiments.reversed_sizes(profile, n_task_a=5, n_b=4, device=cpu)) == 2  # notebook 05
    assert len(experiments.untrained_control(profile, n_b=4, device=cpu, n_task_a=5)) == 2
    assert experiments.gain_grid(profile, device=cpu)["gain"].shape == (2, 1)
    assert len(experiments.useless_task_a(profile, n_b=2, device=cpu)) == 2
    with pytest.raises(ValueError, match="fewer than 100"):  # the toy CIFAR-10 has 10 training images
        experiments.pretrained_backbone(profile, n_task_a=100, device=cpu)


def test_the_speech_notebooks_experiment_paths_run_on_real_data(env: LoopbackServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """TL_DATA=real: notebooks 04 and 05's speech paths run on Speech Commands in its real format —
    the recognizer learns the words the data set has (3 here, 34 in the real one), not the profile's 100."""
    from helpers import data, wakeword

    cpu = torch.device("cpu")
    real.fetch("speech_commands")
    monkeypatch.setenv("TL_DATA", "real")
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    _tiny_recipes(monkeypatch)
    profile = replace_profile(SPEECH_PROFILE, speech_epochs_a=1, seeds=(0,), detector_epochs=1)
    assert profile.speech_words_a == 100
    task_a, task_b = data.speech_task_a(profile), data.wake_word_task(profile)  # notebook 04
    assert task_a["words"] == ["no", "up", "yes"] and task_b["wake_phrase"] == "marvin"
    assert task_a["key"]["source"] == "real" and task_b["key"]["train"]["source"] == "real"
    recognizer, info = wakeword.pretrained_recognizer(profile, device=cpu)
    assert info["words"] == ["no", "up", "yes"] and recognizer.head.out_features == 3
    rows = wakeword.detector_variants(profile, device=cpu)
    assert {r["arm"] for r in rows} == set(wakeword.ARMS) and all(0.0 <= r["eer"] <= 1.0 for r in rows)
    assert data.negative_stream(profile)["hours"] == pytest.approx(1 / 60)
    reversed_ = wakeword.speech_reversed(profile, device=cpu)  # notebook 05
    assert len(reversed_["gain"]) == 1 and len(reversed_["recognizer"]["words"]) == 2


def test_a_synthetic_run_and_a_real_run_never_share_a_cache_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cached network and run is keyed by its data's source (a real run after a synthetic one, or
    the other way round, trains afresh instead of loading the other's network)."""
    from helpers import experiments, wakeword
    from helpers.data import cache

    profile = get_profile("quick")
    keys = {}
    for source in ("synthetic", "real"):
        monkeypatch.setenv("TL_DATA", source)
        keys[source] = [cache.entry_path("pretrained_images", experiments.pretrained_key(profile, 100, 0, "standard")),
                        cache.entry_path("speech_recognizer", wakeword.recognizer_key(profile, 500, None, 8, 0)),
                        cache.entry_path("run", experiments.run_key(profile, "scratch", 100, 0, None, "none"))]
    assert all(a != b for a, b in zip(keys["synthetic"], keys["real"]))
