"""Fit the "cannot assess" gate on the training split and measure it.

    python -m training.fit_gate --model models/pneumonia_ensemble.keras --data ../shared/data/chest_xray

A gate that refuses only what it should is fitted on real X-rays as they arrive: every
training and validation image is used clean, once more degraded (one random condition
of the MedMNIST-C corruption suite at a random severity, or an under/over-exposed or noisy
field version), once reframed (a random centre zoom and shift, as another site frames
its films) and once strongly exposed (brightness, contrast or gamma up or down at severity
3-5: a brightened film loses the grain of its highlights, which the texture block reads).
Thresholds: each image statistic's limit is its 0.1% / 99.9% quantile on those training
images; the feature-space model is fitted on them too, and its limit is the 99.9% quantile
of Mahalanobis distances on the (clean, degraded, reframed, exposed) validation split. The
feature-space model has three blocks: the members' features, the image's own layout on a
16 x 16 grid (``core.gate.ood.layout_features``) and its texture on an 8 x 8 grid
(``core.gate.ood.texture_features``), each scaled by its own validation quantile, so the gate
does not hang on what the members happen to have learnt. Two limits are not fitted: colour
(the capture step tells a tinted film from a colour picture) and the plain-gradient share
(``core.gate.checks.MAX_RAMP_SHARE``).

Then it measures the share refused of real test X-rays (clean, and with gaussian noise
σ = 0.06), the field-capture set (synthetic phone photos of test films and of the
full-resolution samples, with AUC against the same films clean), and the share of non-X-ray
images (``training.nonxray``) accepted, and stores thresholds and figures in the metadata.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from core.gate import fit_ood, image_statistics
from core.gate.checks import MAX_RAMP_SHARE, RAMP_SIDE
from core.gate.ood import join_image_blocks
from core.inputs.read import read_bytes
from core.model import ModelBundle, load_metadata, sha256_file
from core.model.metadata import GateMetadata
from core.preprocessing import prepare_image
from core.scoring import iter_outcomes, predict_with_features
from training.arguments import model_parser
from training.nonxray import build_nonxray_set

STAT_QUANTILE = 0.001
OOD_QUANTILE = 0.999
NOISE_SIGMA = 0.06  # the noise level the gate must tolerate (gaussian, fraction of the range)
LAYOUT_SIDE = 16  # the layout block's grid; 0 leaves it out
TEXTURE_SIDE = 8  # the texture block's grid; 0 leaves it out
EXPOSURES = ("brightness_up", "brightness_down", "contrast_up", "contrast_down", "gamma_up", "gamma_down")
EXPOSURE_SEVERITIES = (3, 4, 5)
# Reframed copies: tightly framed films (the lungs fill the frame) come from other sites, and a
# gate fitted on one site's wide framing alone would refuse them.
REFRAME_ZOOM = (1.0, 1.6)
REFRAME_SHIFT = 0.08  # largest shift of the crop's centre, as a share of the side


def load_images(sources: list, size: int) -> list[np.ndarray]:
    """Prepared ``(size, size)`` model inputs, decoded on two threads."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda source: prepare_image(read_bytes(source), size), sources))


def degrade_all(images: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """One degraded copy of each image: a random corruption-suite condition or field degradation."""
    from core.evaluation.corruptions import CORRUPTIONS, corrupt
    from training.field_capture import DEGRADE_KINDS, degrade

    rng = np.random.default_rng(seed)
    kinds = [*CORRUPTIONS, *DEGRADE_KINDS]
    out = []
    for index, image in enumerate(images):
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind in CORRUPTIONS:
            out.append(corrupt(image, kind, int(rng.integers(1, 6)), seed=seed * 100_003 + index))
        else:
            out.append(degrade(image, kind, rng))
    return out


def expose_all(images: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """One strongly exposed copy of each image: a random :data:`EXPOSURES` condition at severity 3-5."""
    from core.evaluation.corruptions import corrupt

    rng = np.random.default_rng(seed)
    return [corrupt(image, EXPOSURES[int(rng.integers(len(EXPOSURES)))], int(rng.choice(EXPOSURE_SEVERITIES)),
                    seed=seed * 100_003 + index) for index, image in enumerate(images)]


def reframe_all(images: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """One reframed copy of each image: a random zoom in :data:`REFRAME_ZOOM`, shifted up to :data:`REFRAME_SHIFT`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for image in images:
        height, width = image.shape
        zoom = rng.uniform(*REFRAME_ZOOM)
        w, h = width / zoom, height / zoom
        # The shift is clipped so the crop stays inside the film: no invented border.
        x = np.clip((width - w) / 2 + rng.uniform(-1, 1) * REFRAME_SHIFT * width, 0, width - w)
        y = np.clip((height - h) / 2 + rng.uniform(-1, 1) * REFRAME_SHIFT * height, 0, height - h)
        out.append(np.array(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR,
                                                          box=(x, y, x + w, y + h))))
    return out


def extract(model, images: list[np.ndarray], batch_size: int = 64, layout_side: int = LAYOUT_SIDE,
            texture_side: int = TEXTURE_SIDE) -> dict[str, np.ndarray]:
    """Penultimate features (then the layout and texture blocks, when their sides are set) and image
    statistics for model inputs."""
    feats, stats = [], []
    for start in range(0, len(images), batch_size):
        batch = np.stack(images[start:start + batch_size])
        _, features = predict_with_features(model, batch)
        feats.append(join_image_blocks(features, batch, layout_side, texture_side))
        stats.extend(image_statistics(image) for image in batch)
    table = pd.DataFrame(stats)
    return {"features": np.concatenate(feats), **{k: table[k].to_numpy() for k in table.columns}}


def choose_thresholds(train: dict[str, np.ndarray], val_distances: np.ndarray) -> dict[str, float]:
    """Limits from the in-distribution data (see module docstring)."""
    return {
        "min_std": float(np.quantile(train["std"], STAT_QUANTILE)),
        "max_flat_fraction": float(np.quantile(train["flat_fraction"], 1 - STAT_QUANTILE)),
        "max_edge_density": float(np.quantile(train["edge_density"], 1 - STAT_QUANTILE)),
        "max_ood_distance": float(np.quantile(val_distances, OOD_QUANTILE)),
        "max_ramp_share": MAX_RAMP_SHARE,
    }


def member_widths(model) -> tuple[int, ...]:
    """Each ensemble member's feature width, in the order the gate reads them (``()`` for one network)."""
    from core.model.ensemble import feature_tensors, is_ensemble

    return tuple(int(t.shape[-1]) for t in feature_tensors(model)) if is_ensemble(model) else ()


def fit_gate(model_path: Path, data: Path, manifest_path: Path, per_member: bool = False,
             layout_side: int = LAYOUT_SIDE, texture_side: int = TEXTURE_SIDE) -> GateMetadata:
    """Fit, measure and record the gate for the model at ``model_path``.

    ``per_member``: for an ensemble, one feature-space model per member, each scaled by its own
    validation quantile, refusing when any member finds the image far (see ``core.gate.ood``).
    ``layout_side``, ``texture_side``: the grids of the layout and texture blocks; 0 leaves one out.
    """
    import keras

    model_path = Path(model_path)
    meta = load_metadata(model_path)
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    size = int(model.input_shape[1])
    manifest = pd.read_csv(manifest_path)
    frames = {s: manifest[manifest["split"] == s] for s in ("train", "val", "test")}
    paths = {s: [str(data / f) for f in frame["file"]] for s, frame in frames.items()}

    clean = {split: load_images(paths[split], size) for split in ("train", "val")}
    train_images = (clean["train"] + degrade_all(clean["train"], seed=1) + reframe_all(clean["train"], seed=4)
                    + expose_all(clean["train"], seed=6))
    val_images = (clean["val"] + degrade_all(clean["val"], seed=2) + reframe_all(clean["val"], seed=5)
                  + expose_all(clean["val"], seed=7))
    sides = {"layout_side": layout_side, "texture_side": texture_side}
    train = extract(model, train_images, **sides)
    labels = np.tile((frames["train"]["label"] == "PNEUMONIA").to_numpy(), 4)
    image_blocks = tuple(side ** 2 for side in (layout_side, texture_side) if side)
    members = (member_widths(model) if per_member else ()) or (train["features"].shape[1] - sum(image_blocks),)
    blocks = (*members, *image_blocks) if len(members) + len(image_blocks) > 1 else ()
    ood = fit_ood(train["features"], labels, blocks=blocks, **sides)
    val = extract(model, val_images, **sides)
    if len(ood.widths) > 1:
        ood = ood.with_scales(val["features"], OOD_QUANTILE)
    thresholds = choose_thresholds(train, ood.distance(val["features"]))

    ood_file = model_path.with_name(f"{model_path.stem}_ood.npz")
    ood.save(ood_file)
    gate_meta = GateMetadata(
        thresholds={k: round(v, 6) for k, v in thresholds.items()},
        ood_file=ood_file.name,
        ood_sha256=sha256_file(ood_file),
        method=("image statistics (chroma, contrast, flat areas, edge density) with limits at the "
                   f"{STAT_QUANTILE:.1%}/{1 - STAT_QUANTILE:.1%} quantiles of training X-rays; Mahalanobis "
                   "distance to the nearest class mean of penultimate-layer features (Ledoit-Wolf shared "
                   f"covariance fitted on the training split), limit at the {OOD_QUANTILE:.1%} quantile of "
                   "validation distances"
                   + (f"; one distance per ensemble member ({len(members)})" if len(members) > 1 else "")
                   + (f"; a layout block (mean gray level on a {layout_side}x{layout_side} grid of the model input)"
                      if layout_side else "")
                   + (f"; a texture block (log mean gray-level step between neighbouring pixels on a "
                      f"{texture_side}x{texture_side} grid)" if texture_side else "")
                   + (f"; each block's distance divided by its own {OOD_QUANTILE:.1%} validation quantile, "
                      "the largest counts" if len(ood.widths) > 1 else "")
                   + "; fitted on each image clean, once degraded, once reframed (zoom "
                   f"{REFRAME_ZOOM[0]}-{REFRAME_ZOOM[1]}x, shift up to {REFRAME_SHIFT:.0%}) and once strongly "
                   "exposed (brightness, contrast or gamma at severity 3-5)"
                   + f"; a plain gradient (more than {MAX_RAMP_SHARE:.0%} of a {RAMP_SIDE}-px copy's variance "
                   "explained by one plane) is refused at a fixed limit"),
    )
    gated = ModelBundle(model=model, metadata=meta.replace(gate=gate_meta), path=model_path, ood=ood)

    test_results = list(iter_outcomes(gated, zip(paths["test"], paths["test"], strict=True)))
    refused = [r for r in test_results if not r.ok]
    noisy = noisy_refused(gated, paths["test"], size)
    field = measure_field(gated, frames["test"], data)
    gate_meta.measured.update({
        "xray_refused_test": round(len(refused) / len(test_results), 4),
        "xray_refused_test_count": f"{len(refused)} of {len(test_results)}",
        "xray_refused_by_reason": pd.Series([r.code for r in refused], dtype=str).value_counts().to_dict(),
        "noisy_xray_refused_test": round(noisy, 4),
        "noisy_xray_set": f"test X-rays with gaussian noise sigma {NOISE_SIGMA} (of the range) at {size} px",
        "field": field,
        **measure_nonxray(gated, model_path),
    })
    meta.replace(gate=gate_meta).write(model_path)
    return gate_meta


def measure_nonxray(bundle: ModelBundle, model_path: Path) -> dict:
    """Share of the non-X-ray set the gate accepts; the per-image report goes beside the model."""
    results = list(iter_outcomes(bundle, build_nonxray_set()))
    accepted = [r for r in results if r.ok]
    report = pd.DataFrame({
        "image": [r.name for r in results],
        "category": [r.name.split(":")[0] if not r.name.startswith("synthetic") else
                     "synthetic:" + r.name.split(":")[1].rstrip("0123456789") for r in results],
        "accepted": [r.ok for r in results],
        "reason": [r.error or "" for r in results],
    })
    report.to_csv(model_path.with_name(f"{model_path.stem}_gate_nonxray.csv"), index=False)
    return {
        "nonxray_accepted": round(len(accepted) / len(results), 4),
        "nonxray_accepted_count": f"{len(accepted)} of {len(results)}",
        "nonxray_set": "sample images shipped with scikit-image and matplotlib (with crops and grayscale "
                       "copies), synthetic documents, screenshots, colour and gray noise, gradients, "
                       "near-uniform images; see training/nonxray.py",
        "nonxray_accepted_by_category": report.groupby("category")["accepted"].mean().round(3).to_dict(),
        "nonxray_refused_by_reason": pd.Series([r.code for r in results if not r.ok],
                                               dtype=str).value_counts().to_dict(),
    }


def remeasure_field(model_path: Path, data: Path, manifest_path: Path) -> GateMetadata:
    """Re-measure the field-capture set and the non-X-ray set with the gate as fitted (no refit).

    For a change to the capture step, which touches colour uploads only: the gate's limits are
    fitted on grayscale radiographs, which capture leaves untouched, so they stay valid.
    """
    from core.model import load_bundle

    model_path = Path(model_path)
    bundle = load_bundle(model_path)
    if bundle.metadata.gate is None:
        raise ValueError(f"{model_path.name} has no fitted gate; run without --field-only first")
    test = pd.read_csv(manifest_path)
    gate_meta = bundle.metadata.gate
    gate_meta.measured.update({"field": measure_field(bundle, test[test["split"] == "test"], data),
                               **measure_nonxray(bundle, model_path)})
    bundle.metadata.write(model_path)
    return gate_meta


def noisy_refused(bundle: ModelBundle, paths: list[str], size: int, sigma: float = NOISE_SIGMA) -> float:
    """Share of test X-rays the gate refuses once gaussian noise of ``sigma`` is added, uploaded as PNG."""
    from training.field_capture import encode_array

    rng = np.random.default_rng(7)
    items = []
    for index, image in enumerate(load_images(paths, size)):
        noisy = np.clip(image + rng.normal(0, sigma * 255, image.shape), 0, 255).astype(np.uint8)
        items.append((str(index), encode_array(noisy, "PNG")))
    results = list(iter_outcomes(bundle, items))
    return sum(not r.ok for r in results) / len(results)


def field_set(test: pd.DataFrame, data: Path, seed: int = 3) -> list[tuple[str, bytes, bytes, int]]:
    """(kind, field bytes, clean bytes, label) for each test film and full-resolution sample.

    Phone photos of every test film (enlarged to film size first) and of the 16 samples,
    plus a noisy, an underexposed and an overexposed version of each sample.
    """
    from PIL import Image

    from training.field_capture import DEFAULT_SAMPLES, degrade, encode_array, make_phone_photo, photograph_film

    rng = np.random.default_rng(seed)
    rows = []
    for file, label in zip(test["file"], test["label"], strict=True):
        with Image.open(data / file) as image:
            gray = np.asarray(image.convert("L"))
        big, photo = photograph_film(gray, rng)
        rows.append(("phone photo", photo.jpeg, encode_array(big, "JPEG", quality=92), int(label == "PNEUMONIA")))
    for path in sorted(DEFAULT_SAMPLES.glob("*/*.jpeg")):
        gray = np.asarray(Image.open(path).convert("L"))
        clean = path.read_bytes()
        label = int(path.parent.name == "PNEUMONIA")
        rows.append(("phone photo", make_phone_photo(gray, rng).jpeg, clean, label))
        for kind in ("noisy", "underexposed", "overexposed"):
            rows.append((kind, encode_array(degrade(gray, kind, rng), "JPEG", quality=90), clean, label))
    return rows


def measure_field(bundle: ModelBundle, test: pd.DataFrame, data: Path) -> dict:
    """Acceptance of the field-capture set, and AUC on it against the same films clean."""
    from sklearn.metrics import roc_auc_score

    rows = field_set(test, data)
    field = list(iter_outcomes(bundle, ((str(i), r[1]) for i, r in enumerate(rows))))
    clean = list(iter_outcomes(bundle, ((str(i), r[2]) for i, r in enumerate(rows))))
    labels = np.array([r[3] for r in rows])
    accepted = np.array([o.ok for o in field])
    both = accepted & np.array([o.ok for o in clean])
    out = {"images": len(rows), "accepted": round(float(accepted.mean()), 4),
           "accepted_by_kind": pd.Series(accepted).groupby([r[0] for r in rows]).mean().round(4).to_dict(),
           "refused_by_reason": pd.Series([o.code for o in field if not o.ok], dtype=str).value_counts().to_dict(),
           "noted": round(float(np.mean([bool(o.note) for o in field if o.ok])), 4) if accepted.any() else 0.0,
           "set": "phone photos (tint, margin on a dark or busy background, skew up to 15 degrees, glare, "
                  "vignetting, JPEG 40-80) of our test films enlarged 4x and of the 16 full-resolution samples, "
                  "plus noisy, under- and over-exposed samples; training/field_capture.py"}
    if both.sum() and len(np.unique(labels[both])) == 2:
        p_field = np.array([o.probability for o in field])[both]
        p_clean = np.array([o.probability for o in clean])[both]
        out["auc_field"] = round(float(roc_auc_score(labels[both], p_field)), 4)
        out["auc_clean"] = round(float(roc_auc_score(labels[both], p_clean)), 4)
        # The operating point, not only the ranking: a photo that reads as hazier than the film
        # would refer healthy children even with the AUC intact.
        y, threshold = labels[both], bundle.threshold
        for name, p in (("field", p_field), ("clean", p_clean)):
            out[f"specificity_{name}"] = round(float(np.mean(p[y == 0] < threshold)), 4)
            out[f"recall_{name}"] = round(float(np.mean(p[y == 1] >= threshold)), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = model_parser(__doc__)
    parser.add_argument("--per-member", action="store_true",
                        help="ensembles: one feature-space distance per member, refuse when any is far")
    parser.add_argument("--layout-side", type=int, default=LAYOUT_SIDE,
                        help=f"grid of the gate's layout block (default {LAYOUT_SIDE}; 0 leaves it out)")
    parser.add_argument("--texture-side", type=int, default=TEXTURE_SIDE,
                        help=f"grid of the gate's texture block (default {TEXTURE_SIDE}; 0 leaves it out)")
    parser.add_argument("--field-only", action="store_true",
                        help="re-measure the field-capture and non-X-ray sets with the fitted gate (no refit)")
    args = parser.parse_args(argv)
    manifest = args.manifest or args.model.parent / "split_manifest.csv"
    try:
        if args.field_only:
            gate = remeasure_field(args.model, args.data, manifest)
        else:
            gate = fit_gate(args.model, args.data, manifest, per_member=args.per_member,
                            layout_side=args.layout_side, texture_side=args.texture_side)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"thresholds": gate.thresholds, **gate.measured}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
