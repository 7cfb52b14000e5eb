"""Notebook 06's path: ResNet-18 weights fetched from a loopback server, the recipe, save/load, the CLI."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from loopback import serving
from PIL import Image

from helpers import backbones, models, transfer

TINY = transfer.FolderRecipe(head_epochs=2, tune_epochs=2, scratch_epochs=2, batch_size=8)


@pytest.fixture(autouse=True)
def _folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path / "artifacts"))


@pytest.fixture(scope="module")
def checkpoint() -> tuple[str, bytes]:
    """A ResNet-18 state dict made here, named as torchvision names its files (hash prefix)."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(resnet18(weights=None).state_dict(), buffer)
    data = buffer.getvalue()
    return f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth", data


def _weights_left() -> list[Path]:
    return sorted(backbones.weights_dir().glob("*")) if backbones.weights_dir().exists() else []


def test_weights_download_is_checked_then_surgery_and_one_training_step(checkpoint: tuple[str, bytes]) -> None:
    name, data = checkpoint
    with serving({name: data}) as server:
        url = f"http://127.0.0.1:{server.server_port}/{name}"
        with pytest.raises(backbones.WeightsMissing, match="fetch_real.py weights"):
            backbones.resnet18(url)
        path = backbones.fetch_weights(url, progress=False)
        assert path.read_bytes() == data and _weights_left() == [path]
        assert backbones.fetch_weights(url, progress=False) == path and len(server.downloads) == 1  # once
    backbone = backbones.resnet18(url)
    assert backbone.source_classes == 1000 and backbone.preprocess.crop_size == 224
    assert [type(b).__name__ for b in backbone.model.blocks] == ["Sequential"] * 4  # layer1..layer4
    model = transfer.new_model(backbone, 3, seed=0)
    assert model.head.out_features == 3 and backbone.model.head.out_features == 1000  # the copy was cut
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = torch.randint(0, 256, (4, 3, 256, 256), dtype=torch.uint8)
    inputs = backbone.preprocess.training(X, torch.Generator().manual_seed(0))
    assert inputs.shape == (4, 3, 224, 224)
    optimizer = torch.optim.SGD(models.parameter_groups(model, 0.1, 0.01), lr=0.1)
    model.train()
    torch.nn.functional.cross_entropy(model(inputs), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "head.weight" in changed and any(k.startswith("features.0.") for k in changed)


def test_a_download_with_the_wrong_hash_leaves_nothing(checkpoint: tuple[str, bytes]) -> None:
    _, data = checkpoint
    with serving({"resnet18-00000000.pth": data}) as server:
        with pytest.raises(backbones.WeightsError, match="does not match its hash"):
            backbones.fetch_weights(f"http://127.0.0.1:{server.server_port}/resnet18-00000000.pth", progress=False)
    assert _weights_left() == []


def test_an_interrupted_download_leaves_nothing(checkpoint: tuple[str, bytes]) -> None:
    name, data = checkpoint
    with serving({name: data}) as server:
        server.mode = "truncated"
        with pytest.raises(backbones.WeightsError):
            backbones.fetch_weights(f"http://127.0.0.1:{server.server_port}/{name}", progress=False)
    assert _weights_left() == []


def test_no_network_says_so_and_names_the_offline_way() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(backbones.WeightsError, match="cannot download .*backbone='course'"):
        backbones.fetch_weights(f"http://127.0.0.1:{port}/resnet18-f37072fd.pth", progress=False)
    assert _weights_left() == []
    with pytest.raises(backbones.WeightsError, match="must carry its hash"):
        backbones.fetch_weights(f"http://127.0.0.1:{port}/resnet18.pth", progress=False)


def _tiny_backbone() -> backbones.Backbone:
    torch.manual_seed(0)
    net = models.ImageCNN(5, width=8)
    return backbones.Backbone("course", backbones.Classifier(net.features, net.head),
                              backbones.Preprocess(32, 32, 1, None, None), "a tiny random CNN", 5,
                              {"kind": "course", "width": 8})


def _folder(root: Path, per_class: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for name in ("bright", "dark", "striped"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            array = rng.integers(0, 80, (40, 40)) + (150 if name == "bright" else 0)
            if name == "striped":
                array[::4] = 255
            Image.fromarray(array.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_recipe_save_reload_gives_the_same_predictions(tmp_path: Path) -> None:
    backbone = _tiny_backbone()
    folder = transfer.load_folder(_folder(tmp_path / "images"), backbone, progress=False)
    result = transfer.fine_tune(backbone, folder, seed=0, recipe=TINY, device=torch.device("cpu"))
    assert 0.0 <= result.test_accuracy <= 1.0 and result.stage in ("all layers", "head only")
    assert len(result.history["head_val"]) == 2 and len(result.history["tune_val"]) == 2
    base = transfer.scratch(backbone, folder, seed=0, recipe=TINY, device=torch.device("cpu"))
    assert base.arm.startswith("scratch")
    path = transfer.save_model(tmp_path / "out" / "model.pt", result.model, backbone, folder["classes"], note="x")
    saved = transfer.load_model(path)
    assert saved.classes == folder["classes"] and saved.extra == {"note": "x"}
    X = folder["X"][folder["test"]]
    # the trained copy is channels_last, the reloaded one is not: the same numbers to float rounding
    torch.testing.assert_close(transfer.probabilities(result.model, backbone.preprocess, X),
                               transfer.probabilities(saved.model, saved.preprocess, X), rtol=0, atol=1e-6)
    ranked = transfer.predict_file(saved, tmp_path / "images" / "dark" / "0.png")
    assert [c for c, _ in ranked] != [] and abs(sum(p for _, p in ranked) - 1) < 1e-5
    assert ranked == sorted(ranked, key=lambda pair: -pair[1])


def test_model_files_and_image_files_that_are_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train one first"):
        transfer.load_model(tmp_path / "nothing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a model saved by helpers.transfer"):
        transfer.load_model(tmp_path / "other.pt")
    (tmp_path / "broken.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match="cannot read"):
        transfer.read_image(tmp_path / "broken.png", backbones.Preprocess(32, 32, 1, None, None))


def test_a_folder_read_for_another_backbone_is_refused(tmp_path: Path) -> None:
    backbone = _tiny_backbone()
    from helpers.data import folders

    folder = folders.load_image_folder(_folder(tmp_path / "images"), size=48, channels=3, progress=False)
    with pytest.raises(ValueError, match="read it with load_folder"):
        transfer.fine_tune(backbone, folder, recipe=TINY)


def test_command_line_trains_saves_and_reports_bad_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(backbones, "course", lambda profile, device=None: _tiny_backbone())
    monkeypatch.setattr(transfer, "recipe_for", lambda backbone: dataclasses.replace(TINY))
    out = tmp_path / "model.pt"
    assert transfer.main(["images", str(_folder(tmp_path / "images")), "--backbone", "course", "--out", str(out),
                          "--profile", "quick"]) == 0
    printed = capsys.readouterr().out
    assert "fine-tuned course: validation" in printed and "saved" in printed
    assert transfer.load_model(out).classes == ("bright", "dark", "striped")
    assert transfer.main(["images", str(tmp_path / "missing"), "--backbone", "course", "--profile", "quick"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        transfer.main(["images", str(tmp_path), "--backbone", "vgg"])
