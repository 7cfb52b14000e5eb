"""The image experiments end to end on a tiny profile: caching, strategies, figures."""
import dataclasses

import pytest
import torch

from helpers import config, experiments


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setattr(experiments, "RECIPE", dataclasses.replace(experiments.RECIPE, min_samples=200,
                                                                   max_samples=400))
    return config.replace_profile(config.get_profile("quick"), n_task_a=400, n_task_a_test=100,
                                  pretrain_epochs=1, n_task_b_pool=200, n_task_b_test=100,
                                  target_sizes=(20, 40), seeds=(0, 1), width=8, near_pool=60,
                                  near_target_sizes=(24, 60), pretrain_min_samples=400)


def test_pretrained_backbone_is_cached(tiny, monkeypatch):
    from helpers import train
    fits = []
    real_fit = train.fit

    def counting_fit(*args, **kwargs):
        fits.append(1)
        return real_fit(*args, **kwargs)
    monkeypatch.setattr(train, "fit", counting_fit)
    model, info = experiments.pretrained_backbone(tiny, device=torch.device("cpu"))
    again, info_again = experiments.pretrained_backbone(tiny, device=torch.device("cpu"))
    assert len(fits) == 1  # trained once; the second call loaded it
    assert info == info_again and 0.0 <= info["test_accuracy"] <= 1.0
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_sweep_rows_and_figures(tiny):
    rows = experiments.sweep(tiny, device=torch.device("cpu"))
    assert len(rows) == len(experiments.STRATEGIES) * 2 * 2
    params = {r["strategy"]: r["trainable_params"] for r in rows}
    assert params["last layer"] < params["last block"] < params["all layers"] == params["scratch"]
    figures = experiments.figures(rows, tiny.target_sizes)
    assert set(figures) >= {"gain_full_vs_scratch_nb20", "last_block_minus_scratch_nb20"}
    assert experiments.transfer_gain(rows, 20).shape == (2,)


def test_small_task_a_is_pretrained_once_per_seed_and_the_big_one_once():
    assert experiments.pretraining_seed(None, 3) is None  # scratch: nothing pre-trained
    assert experiments.pretraining_seed(100, 3) == 3
    assert experiments.pretraining_seed(experiments.PER_SEED_PRETRAIN_MAX + 1, 3) == 0


def test_untrained_control_is_not_trained_and_not_scratch(tiny):
    cpu = torch.device("cpu")
    untrained, info = experiments.pretrained_backbone(tiny, n_task_a=40, seed=1, variant="untrained", device=cpu)
    assert info["train_loss"] == [] and info["epochs"] >= 1  # the budget it would have had, not spent
    trained, _ = experiments.pretrained_backbone(tiny, n_task_a=40, seed=1, device=cpu)
    torch.manual_seed(1)
    scratch = type(untrained)(len(experiments.images.TASK_A_CLASSES), width=tiny.width)
    first = "features.0.0.weight"
    assert not torch.equal(untrained.state_dict()[first], trained.state_dict()[first])
    assert not torch.equal(untrained.state_dict()[first], scratch.state_dict()[first])
    rows = experiments.untrained_control(tiny, n_b=20, device=cpu)
    assert {(r["strategy"], r["variant"]) for r in rows} == {("scratch", "none"), ("all layers", "untrained")}


def test_unknown_task_a_variant_is_an_error(tiny):
    with pytest.raises(ValueError, match="unknown task-A variant"):
        experiments.pretrained_backbone(tiny, variant="upside down")


@pytest.mark.parametrize("name", sorted(config.PROFILES))
def test_every_profile_can_draw_its_largest_target_size(name):
    profile = config.get_profile(name)
    classes = len(experiments.images.TASK_B_CLASSES)
    pool = torch.arange(profile.n_task_b_pool) % classes  # what make_task_b's balanced labels give
    largest = max(profile.target_sizes + profile.grid_target_sizes)
    assert len(experiments.stratified_subset(pool, largest, seed=0)) == largest


def test_pretraining_is_reproducible_from_its_seed(tiny, tmp_path, monkeypatch):
    first, _ = experiments.pretrained_backbone(tiny, device=torch.device("cpu"))
    torch.manual_seed(12345)  # unrelated global RNG use must not change the result
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path / "other"))
    second, _ = experiments.pretrained_backbone(tiny, device=torch.device("cpu"))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_pretraining_augments_task_a_but_fine_tuning_does_not(tiny, monkeypatch):
    from helpers import train
    calls = []
    real = train.random_shift_flip

    def counting(X, generator, **kwargs):
        calls.append((len(X), kwargs))
        return real(X, generator, **kwargs)
    monkeypatch.setattr(train, "random_shift_flip", counting)
    experiments.pretrained_backbone(tiny, device=torch.device("cpu"))
    expected = {"max_shift": experiments.PRETRAIN.max_shift, "flip": experiments.PRETRAIN.flip}
    assert calls and all(kwargs == expected for _, kwargs in calls)
    assert sum(n for n, _ in calls) == tiny.n_task_a * max(tiny.pretrain_epochs, 400 // tiny.n_task_a)
    calls.clear()
    experiments.cached_run(tiny, "scratch", 20, seed=0, device=torch.device("cpu"))
    experiments.cached_run(tiny, "all layers", 20, seed=0, device=torch.device("cpu"))  # pre-trained: cached
    assert calls == []


def test_learning_curve_measures_the_sweeps_run_along_the_way(tiny):
    cpu = torch.device("cpu")
    # prepare's order: the curves first; their runs are stored for the sweep, which loads them
    # (trained twice in one process, a run can differ in its last bits: the README notes that results
    # can depend on what a process computed before them)
    curves = experiments.learning_curves(tiny, n_b=20, device=cpu)
    rows = experiments.sweep(tiny, device=cpu)
    epochs = experiments.RECIPE.epochs_for(20)
    assert curves["scratch"].shape == curves["all layers"].shape == (len(tiny.seeds), epochs)
    final = curves["all layers"][:, -1].double()
    assert torch.allclose(final, experiments.accuracies(rows, "all layers", 20), atol=1e-6)  # the same run
    assert experiments.epochs_to_reach(torch.tensor([0.1, 0.5, 0.6]), 0.5) == 2
    assert experiments.epochs_to_reach(torch.tensor([0.1, 0.2]), 0.5) == 3  # never: past the end


def test_learning_curve_measures_a_fixed_subset_of_the_test_set(tiny, monkeypatch):
    monkeypatch.setattr(experiments, "CURVE_TEST_IMAGES", 40)  # of tiny's 100 test images
    curve = torch.tensor(experiments.learning_curve(tiny, "scratch", 20, 0, torch.device("cpu")))
    assert len(curve) == experiments.RECIPE.epochs_for(20)
    assert torch.allclose(curve * 40, (curve * 40).round(), atol=1e-4)  # accuracies on 40 images


def test_lr_schemes_reuse_the_one_rate_run_and_differ_from_it(tiny):
    cpu = torch.device("cpu")
    rows = experiments.lr_schemes(tiny, sizes=(20,), device=cpu)
    assert sorted({r["scheme"] for r in rows}) == sorted(experiments.LR_SCHEMES)
    one_rate = [r for r in rows if r["scheme"] == "one rate"]
    assert [r["accuracy"] for r in one_rate] == experiments.accuracies(
        [experiments.cached_run(tiny, "all layers", 20, s, device=cpu) for s in tiny.seeds], "all layers", 20).tolist()
    assert experiments.scheme_gain(rows, "two stages", 20).shape == (len(tiny.seeds),)
    with pytest.raises(ValueError, match="unknown learning-rate scheme"):
        experiments.fine_tune_scheme("fastest", None, None, None, None, None, 0, 8)


def test_near_task_is_new_objects_and_keyed_apart_from_the_xrays(tiny):
    from helpers.data import images
    assert not set(images.NEAR_CLASSES) & set(images.TASK_A_CLASSES)
    rows = experiments.near_sweep(tiny, device=torch.device("cpu"))
    assert len(rows) == len(experiments.NEAR_STRATEGIES) * len(tiny.near_target_sizes) * len(tiny.seeds)
    assert "scratch" not in {row["strategy"] for row in rows}
    near = experiments.run_key(tiny, "scratch", 24, 0, None, "none", target="near")
    assert near != experiments.run_key(tiny, "scratch", 24, 0, None, "none")
    with pytest.raises(ValueError, match="unknown target task"):
        experiments.run_key(tiny, "scratch", 12, 0, None, "none", target="far")


def test_photo_check_runs_on_real_photographs_keyed_apart(tiny):
    from helpers.data import photos, sources
    data = sources.photo_patches_spec(tiny).load()
    assert data["classes"] == photos.PHOTO_CLASSES and int(data["y"].max()) + 1 == len(photos.PHOTO_CLASSES)
    rows = experiments.photo_check(tiny, device=torch.device("cpu"))
    assert len(rows) == len(experiments.PHOTO_CHECK_STRATEGIES) * len(experiments.PHOTO_CHECK_SIZES) * len(tiny.seeds)
    assert {r["n_b"] for r in rows} == set(experiments.PHOTO_CHECK_SIZES)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    key = experiments.run_key(tiny, "scratch", 40, 0, None, "none", target="photos")
    assert key["data"][0]["name"] == "photo_patches"
    assert key != experiments.run_key(tiny, "scratch", 40, 0, None, "none")
    assert experiments.transfer_gain(rows, 40, "last layer").shape == (len(tiny.seeds),)


def test_shuffled_pixels_are_pretrained_without_augmentation_for_their_own_epochs(tiny, monkeypatch):
    from helpers import train
    calls = []
    real = train.fit

    def spy(*args, **kwargs):
        calls.append((kwargs.get("augment"), kwargs.get("epochs")))
        return real(*args, **kwargs)
    monkeypatch.setattr(train, "fit", spy)
    cpu = torch.device("cpu")
    _, shuffled = experiments.pretrained_backbone(tiny, n_task_a=40, variant="shuffled pixels", device=cpu)
    _, standard = experiments.pretrained_backbone(tiny, n_task_a=40, device=cpu)
    assert calls[0] == (None, experiments.SHUFFLED_PIXELS_EPOCHS) and calls[1][0] is experiments.pretrain_augment
    assert shuffled["epochs"] == experiments.SHUFFLED_PIXELS_EPOCHS != standard["epochs"]
    assert experiments.pretrained_key(tiny, 40, 0, "shuffled pixels")["epochs"] == experiments.SHUFFLED_PIXELS_EPOCHS
    assert not experiments.augments("shuffled pixels") and experiments.augments("standard")


def test_photo_crops_variant_pretrains_on_its_own_images(tiny, monkeypatch):
    from helpers.data import photos
    monkeypatch.setattr(photos, "N_CROP_CLASSES", 12)  # a tiny task A of photographs
    cpu = torch.device("cpu")
    key = experiments.pretrained_key(tiny, 48, 0, "photo crops")
    assert key["data"][0]["name"] == "photo_crops" and experiments.augments("photo crops")
    assert experiments.pretrained_key(tiny, 48, 0, "standard")["data"][0]["name"] == "task_a_images"
    model, info = experiments.pretrained_backbone(tiny, n_task_a=48, variant="photo crops", device=cpu)
    assert model.head.out_features == 12 and info["n_task_a"] == 48
    rows = experiments.run_grid(tiny, ("scratch", "all layers"), (20,), (0,), 48, "photo crops", device=cpu)
    assert {(r["strategy"], r["variant"]) for r in rows} == {("scratch", "none"), ("all layers", "photo crops")}
    assert experiments.photo_crops_size(tiny) == round(tiny.n_task_a * experiments.PHOTO_CROPS_SHARE)


def test_curves_built_first_store_the_sweeps_runs(tiny, monkeypatch):
    """The learning curve of a run and the sweep's run are one training, not two."""
    cpu = torch.device("cpu")
    curves = experiments.learning_curves(tiny, n_b=20, device=cpu)
    calls, fine_tune = [], experiments.fine_tune
    monkeypatch.setattr(experiments, "fine_tune", lambda *a, **k: calls.append(a[0]) or fine_tune(*a, **k))
    rows = experiments.run_grid(tiny, ("scratch", "all layers"), (20,), tiny.seeds, device=cpu)
    assert calls == []
    assert torch.allclose(curves["all layers"][:, -1].double(), experiments.accuracies(rows, "all layers", 20),
                          atol=1e-6)


@pytest.mark.parametrize("name", sorted(config.PROFILES))
def test_every_profile_has_the_sizes_its_claims_read(name):
    """Issue 17 trimmed the quick profile's grids to what its claims read: the claims' sizes stay."""
    profile = config.get_profile(name)
    assert {50, 100, 1_000} <= set(profile.target_sizes)  # last block at 50; the gain at 100 and 1,000
    assert {100, 1_000} <= set(profile.grid_target_sizes)  # the map's columns the claims read
    assert min(profile.grid_task_a_sizes) == 100 and max(profile.grid_task_a_sizes) == profile.n_task_a
    assert len(profile.near_target_sizes) >= 2 and max(profile.near_target_sizes) == profile.near_pool


def test_the_quick_gain_map_shares_its_runs_but_one_cell(monkeypatch, tmp_path):
    """The quick profile's gain map trains one cell of its own (the 100-image task A at N_B = 100:
    three runs of 4,000 examples); every other run is one the sweep or the reversed sizes build
    anyway (its two rows are their task As)."""
    monkeypatch.setenv("TL_ARTIFACTS_DIR", str(tmp_path))
    quick = config.get_profile("quick")
    shared = {experiments.run_path(quick, s, n, seed) for s in experiments.STRATEGIES
              for n in quick.target_sizes for seed in quick.seeds}
    shared |= {experiments.run_path(quick, s, 1_000, seed, 100) for s in ("scratch", "all layers")
               for seed in quick.seeds}
    grid = {experiments.run_path(quick, "scratch", n, seed) for n in quick.grid_target_sizes for seed in quick.seeds}
    grid |= {experiments.run_path(quick, "all layers", n, seed, n_a) for n_a in quick.grid_task_a_sizes
             for n in quick.grid_target_sizes for seed in quick.seeds}
    assert len(grid) == len(quick.seeds) * len(quick.grid_target_sizes) * (1 + len(quick.grid_task_a_sizes))
    missing = grid - shared
    assert {p.name for p in missing} == {experiments.run_path(quick, "all layers", 100, seed, 100).name
                                            for seed in quick.seeds}
