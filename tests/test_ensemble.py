"""The ensemble saved as one model: combination, loading, gate features and attention maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.explain import ModelExplainer
from core.gate.checks import MAX_RAMP_SHARE
from core.model import load_bundle
from core.model.ensemble import build_ensemble, is_ensemble, member_views
from core.scoring import iter_outcomes, predict_arrays
from core.scoring.predict import feature_model
from helpers import TINY_SIZE, encode, synthetic_names, write_dataset, write_metadata, xray_like


def _members():
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(1)
    plain = build_model("compact_cnn", TINY_SIZE)
    trimmed = build_model("resnet_slim", TINY_SIZE, inner_size=48, trim=0.125)
    return {"a": plain, "b": trimmed}


@pytest.fixture(scope="module")
def ensemble_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    members = _members()
    model = build_ensemble(members, name="tiny_ensemble")
    path = tmp_path_factory.mktemp("ensemble") / "tiny_ensemble.keras"
    model.save(path)
    write_metadata(path, TINY_SIZE)
    return path


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def test_output_is_the_sigmoid_of_the_mean_member_logit() -> None:
    members = _members()
    model = build_ensemble(members)
    images = np.stack([xray_like(TINY_SIZE, TINY_SIZE, s) for s in range(6)])
    each = np.stack([predict_arrays(m, images) for m in members.values()])
    expected = 1 / (1 + np.exp(-_logit(each).mean(axis=0)))
    np.testing.assert_allclose(predict_arrays(model, images), expected, atol=1e-4)
    assert is_ensemble(model) and not is_ensemble(members["a"])


def test_members_must_agree_and_be_several() -> None:
    members = _members()
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble({"a": members["a"]})
    from training.models import build_model

    with pytest.raises(ValueError, match="input shape"):
        build_ensemble({"a": members["a"], "c": build_model("compact_cnn", 48)})


def test_saved_ensemble_loads_in_safe_mode_and_scores(ensemble_path: Path) -> None:
    bundle = load_bundle(ensemble_path)
    images = [(f"{i}.png", encode(Image.fromarray(xray_like(90, 80, i)), "PNG")) for i in range(3)]
    outcomes = list(iter_outcomes(bundle, images))
    assert all(o.ok for o in outcomes)
    # The gate reads both members' pooled features side by side.
    width = int(feature_model(bundle.model).outputs[0].shape[-1])
    views = member_views(bundle.model)
    assert width == sum(int(v.model.get_layer("last_conv").output.shape[-1]) for v in views)


def test_member_views_reproduce_the_members(ensemble_path: Path) -> None:
    import keras

    members = _members()
    model = keras.saving.load_model(ensemble_path, compile=False, safe_mode=True)
    views = {v.name: v for v in member_views(model)}
    assert set(views) == {"a", "b"} and views["a"].trim_pixels == 0 and views["b"].trim_pixels == 8
    images = np.stack([xray_like(TINY_SIZE, TINY_SIZE, s) for s in range(4)])
    for name, member in members.items():
        np.testing.assert_allclose(predict_arrays(views[name].model, images), predict_arrays(member, images),
                                   atol=1e-5)


def test_members_are_restored_from_a_saved_ensemble(ensemble_path: Path, tmp_path: Path) -> None:
    import keras

    from training.ensemble import restore_members

    folder = tmp_path / "members"
    folder.mkdir()
    (folder / "b_training.json").write_text("{}")
    # Only members with a training summary and no file yet; "nobody" is not in the ensemble.
    assert restore_members(ensemble_path, folder, ["a", "b", "nobody"]) == ["b"]
    assert sorted(p.name for p in folder.glob("*.keras")) == ["b.keras"]
    restored = keras.saving.load_model(folder / "b.keras", compile=False, safe_mode=True)
    images = np.stack([xray_like(TINY_SIZE, TINY_SIZE, s) for s in range(4)])
    np.testing.assert_allclose(predict_arrays(restored, images), predict_arrays(_members()["b"], images), atol=1e-5)
    assert restore_members(ensemble_path, folder, ["b"]) == []  # already there: kept


def test_ensemble_maps_average_members_and_respect_trimming(ensemble_path: Path) -> None:
    model = load_bundle(ensemble_path).model
    explainer = ModelExplainer(model)
    image = xray_like(TINY_SIZE, TINY_SIZE, 5)
    assert explainer.is_ensemble and list(explainer.members) == ["a", "b"]
    for method in ("Grad-CAM", "Grad-CAM++", "LayerCAM"):
        cam = explainer.cam(image, method)
        assert cam.shape == (TINY_SIZE, TINY_SIZE) and cam.min() >= 0 and cam.max() <= 1
    trimmed = explainer.cam(image, member="b")
    assert not trimmed[:8].any() and not trimmed[:, -8:].any()  # the trimmed border was never looked at
    layer = explainer.member("b").layers[0]
    assert explainer.cam(image, member="b", layer=layer).shape == (TINY_SIZE, TINY_SIZE)
    with pytest.raises(ValueError):
        explainer.cam(image, layer=layer)  # a layer needs a member
    with pytest.raises(ValueError):
        explainer.member("nobody")


def test_ensemble_command_trains_members_and_ships_one_model(tmp_path: Path) -> None:
    """Smoke run of ``python -m training.ensemble``: 1 epoch per member on a tiny synthetic set."""
    from training import ensemble, evaluate, fit_gate

    data = write_dataset(tmp_path / "chest_xray", synthetic_names(12, 6, 6, images_per_patient=2), size=48)
    out = tmp_path / "models"
    real_bootstrap = evaluate.bootstrap_ci

    def small_nonxray_set() -> list[tuple[str, bytes]]:
        page = Image.new("L", (90, 120), 250)
        return [("synthetic:page1", encode(page, "PNG"))]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate, "bootstrap_ci", lambda *a, **k: real_bootstrap(*a, **{**k, "n_resamples": 20}))
        mp.setattr(fit_gate, "build_nonxray_set", small_nonxray_set)
        code = ensemble.main(["--data", str(data), "--out", str(out), "--name", "smoke_ensemble",
                              "--image-size", "48", "--epochs", "1", "--batch-size", "8", "--per-member-gate"])
    assert code == 0
    assert sorted(p.name for p in (out / "members").glob("*.keras")) == sorted(
        f"{m.name}.keras" for m in ensemble.MEMBERS)
    bundle = load_bundle(out / "smoke_ensemble.keras")
    assert is_ensemble(bundle.model) and bundle.gate is not None
    # One feature-space distance per member, then the image's layout and texture.
    assert len(bundle.ood.widths) == len(ensemble.MEMBERS) + 2
    assert (bundle.ood.layout_side, bundle.ood.texture_side) == (fit_gate.LAYOUT_SIDE, fit_gate.TEXTURE_SIDE)
    assert bundle.gate["max_ramp_share"] == MAX_RAMP_SHARE
    meta = json.loads((out / "smoke_ensemble.json").read_text())
    assert [m["name"] for m in meta["members"]] == [m.name for m in ensemble.MEMBERS]
    assert all({"val", "test"} <= set(m) for m in meta["members"])
    assert meta["training"]["augmentation"]["name"] == (ensemble.MEMBERS[0].recipe or "robust")
    assert meta["training"]["command"].endswith("--name smoke_ensemble --per-member-gate")
    # The build photographs the validation films and records the figures at the shipped threshold.
    photos = meta["metrics"]["phone_photos"]
    assert photos["split"] == "val" and photos["threshold"] == round(meta["threshold"]["value"], 6)
    assert set(photos) >= {"films", "photos"}
    # A rerun keeps the members already trained.
    before = {p.name: p.stat().st_mtime for p in (out / "members").glob("*.keras")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fit_gate, "build_nonxray_set", small_nonxray_set)
        mp.setattr(evaluate, "bootstrap_ci", lambda *a, **k: real_bootstrap(*a, **{**k, "n_resamples": 20}))
        assert ensemble.main(["--data", str(data), "--out", str(out), "--name", "smoke_ensemble",
                              "--image-size", "48", "--epochs", "1", "--batch-size", "8", "--members-only"]) == 0
    assert {p.name: p.stat().st_mtime for p in (out / "members").glob("*.keras")} == before


def test_members_are_picked_by_name_from_shipped_and_candidates() -> None:
    from training import ensemble

    assert ensemble.pick_members(None) == ensemble.MEMBERS
    candidate = ensemble.CANDIDATES[-1]
    picked = ensemble.pick_members(f"{ensemble.MEMBERS[0].name}, {candidate.name}")
    assert picked == (ensemble.MEMBERS[0], candidate)
    with pytest.raises(ValueError, match="unknown members"):
        ensemble.pick_members("compact224,nobody")
    with pytest.raises(ValueError):
        ensemble.pick_members(" , ")
    assert ensemble.main(["--data", "unused", "--members", "nobody"]) == 2
