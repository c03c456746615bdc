"""Error analysis: which cues besides the lungs could the model be using, and does it?

    python -m training.error_analysis --model models/pneumonia_ensemble.keras --data ../shared/data/chest_xray

Three questions, answered with figures only (``<model>_error_analysis.csv``; no image is kept):

1. **Cues in the data.** Simple statistics of each prepared training film (brightness,
   contrast, dark background, the outer band against the centre, sharpness, how many rows
   are darker than the film's mean) and how well each one alone tells pneumonia from
   normal (its AUC as a score; 0.5 carries nothing, far from 0.5 is a cue a network can use
   without looking at the lungs).
2. **What the over-called normals share.** The same statistics on the validation normals
   the model scores highest (the top quarter) against the other validation normals, and the
   rank correlation of each with the model's score among normal films.
3. **Where the model looks on them.** The share of the Grad-CAM mass (the members' maps
   averaged, as on the dashboard) in the outer band of the film and in its corners, where
   no lung lies on a frontal film, for the highest- and the lowest-scoring normals.

Only the validation split and the training split are read: the test split stays for judging.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter

from core.model import sibling_path
from training.arguments import model_parser

BAND = 0.125  # the outer band: this fraction of the side on each edge
CORNER = 0.2  # corners: squares of this fraction of the side
COLUMNS = ["section", "statistic", "group", "reference", "n_group", "n_reference", "mean_group",
           "mean_reference", "auc", "spearman_with_score"]


@lru_cache(maxsize=8)
def _band_mask(size: int, fraction: float = BAND) -> np.ndarray:
    edge = max(1, int(round(size * fraction)))
    mask = np.ones((size, size), dtype=bool)
    mask[edge:-edge, edge:-edge] = False
    mask.flags.writeable = False  # cached and shared between calls
    return mask


@lru_cache(maxsize=8)
def _corner_mask(size: int, fraction: float = CORNER) -> np.ndarray:
    edge = max(1, int(round(size * fraction)))
    mask = np.zeros((size, size), dtype=bool)
    for rows in (slice(0, edge), slice(-edge, None)):
        for cols in (slice(0, edge), slice(-edge, None)):
            mask[rows, cols] = True
    mask.flags.writeable = False  # cached and shared between calls
    return mask


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """Statistics of one prepared ``(S, S)`` uint8 film that need no knowledge of the lungs."""
    if image.ndim != 2 or image.shape[0] != image.shape[1] or image.shape[0] < 16:
        raise ValueError("expected a square (S, S) image of at least 16 px")
    x = image.astype(np.float64) / 255.0
    size = x.shape[0]
    band = _band_mask(size)
    centre = slice(size // 4, size - size // 4)
    middle = slice(int(size * 0.2), size - int(size * 0.2))
    gy, gx = np.gradient(x)
    gradient = np.hypot(gx, gy)
    # Fine detail: what is left after a 3x3 box blur (noise, grain, edge enhancement by the scanner).
    blurred = uniform_filter(x, size=3, mode="nearest")
    rows = x[:, middle].mean(axis=1)
    return {
        "mean_intensity": float(x.mean()),
        "contrast_std": float(x.std()),
        "dark_background_share": float((x < 0.1).mean()),
        "outer_band_mean": float(x[band].mean()),
        "centre_mean": float(x[centre, centre].mean()),
        "centre_minus_band": float(x[centre, centre].mean() - x[band].mean()),
        "top_band_mean": float(x[: int(size * 0.15)].mean()),
        "bottom_band_mean": float(x[-int(size * 0.15):].mean()),
        "sharpness_gradient": float(gradient.mean()),
        # Outside the lungs on a frontal film: a difference here is how the film was taken, not disease.
        "sharpness_outer_band": float(gradient[band].mean()),
        "sharpness_centre": float(gradient[centre, centre].mean()),
        "fine_detail": float(np.abs(x - blurred).mean()),
        "dark_row_share": float((rows < x.mean()).mean()),
    }


def cam_shares(cam: np.ndarray) -> dict[str, float]:
    """Share of a map's mass in the outer band and in the corners (a uniform map gives their area)."""
    cam = np.clip(np.asarray(cam, dtype=np.float64), 0, None)
    total = cam.sum()
    if cam.ndim != 2 or cam.shape[0] != cam.shape[1] or total <= 0:
        return {"cam_outer_band_share": float("nan"), "cam_corner_share": float("nan")}
    return {"cam_outer_band_share": float(cam[_band_mask(cam.shape[0])].sum() / total),
            "cam_corner_share": float(cam[_corner_mask(cam.shape[0])].sum() / total)}


def separation_auc(group: np.ndarray, reference: np.ndarray) -> float:
    """P(a group value > a reference value): the statistic's AUC as a score for the group."""
    from sklearn.metrics import roc_auc_score

    values = np.concatenate([group, reference])
    ok = np.isfinite(values)
    labels = np.concatenate([np.ones(len(group)), np.zeros(len(reference))])
    if len(np.unique(labels[ok])) < 2:
        return float("nan")
    return float(roc_auc_score(labels[ok], values[ok]))


def compare_groups(section: str, stats: pd.DataFrame, is_group: np.ndarray, group: str, reference: str,
                   score: np.ndarray | None = None) -> list[dict]:
    """One row per statistic column: both groups' means, its AUC for the group, Spearman with ``score``."""
    from scipy.stats import spearmanr

    rows = []
    for column in stats.columns:
        values = stats[column].to_numpy(dtype=np.float64)
        a, b = values[is_group], values[~is_group]
        rho = float("nan")
        if score is not None and np.isfinite(values).sum() > 2:
            ok = np.isfinite(values)
            rho = float(spearmanr(values[ok], score[ok]).statistic)
        rows.append({"section": section, "statistic": column, "group": group, "reference": reference,
                     "n_group": int(len(a)), "n_reference": int(len(b)), "mean_group": float(np.nanmean(a)),
                     "mean_reference": float(np.nanmean(b)), "auc": separation_auc(a, b), "spearman_with_score": rho})
    return rows


def analyse(images: dict[str, list[np.ndarray]], labels: dict[str, np.ndarray], val_scores: np.ndarray,
            cam: Callable[[np.ndarray], np.ndarray], cam_images: int = 20) -> pd.DataFrame:
    """The three sections of the analysis from prepared ``train``/``val`` images and the validation scores.

    ``labels`` are 1 for pneumonia; ``val_scores`` the model's probabilities on the validation
    images; ``cam(image)`` the model's map for one image.
    """
    if len(val_scores) != len(images["val"]):
        raise ValueError("need one validation score per validation image")
    rows = []
    train = pd.DataFrame([image_statistics(i) for i in images["train"]])
    rows += compare_groups("cues in the training split", train, labels["train"] == 1, "pneumonia", "normal")

    normal = labels["val"] == 0
    scores = np.asarray(val_scores, dtype=np.float64)[normal]
    val = pd.DataFrame([image_statistics(i) for i, n in zip(images["val"], normal, strict=True) if n])
    hardest = scores >= np.quantile(scores, 0.75)
    rows += compare_groups("over-called validation normals", val, hardest, "normals, top quarter by score",
                           "other normals", score=scores)

    order = np.argsort(scores)
    count = min(cam_images, len(order) // 2)
    picked = np.concatenate([order[-count:], order[:count]])
    normal_images = [i for i, n in zip(images["val"], normal, strict=True) if n]
    maps = pd.DataFrame([cam_shares(cam(normal_images[k])) for k in picked])
    top = np.zeros(len(picked), dtype=bool)
    top[:count] = True
    rows += compare_groups("where the model looks on validation normals", maps, top,
                           f"normals, {count} highest scores", f"normals, {count} lowest scores",
                           score=scores[picked])
    size = images["val"][0].shape[0]
    for name, mask in (("cam_outer_band_share", _band_mask(size)), ("cam_corner_share", _corner_mask(size))):
        rows.append({"section": "where the model looks on validation normals", "statistic": f"{name} (area)",
                     "group": "a uniform map", "reference": "", "n_group": 0, "n_reference": 0,
                     "mean_group": float(mask.mean()), "mean_reference": float("nan"), "auc": float("nan"),
                     "spearman_with_score": float("nan")})
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    parser = model_parser(__doc__)
    parser.add_argument("--train-limit", type=int, default=None,
                        help="at most this many training films per label (quick runs)")
    parser.add_argument("--cam-images", type=int, default=20, help="normals explained at each end of the scores")
    parser.add_argument("--output", type=Path, default=None, help="default: <model>_error_analysis.csv beside it")
    args = parser.parse_args(argv)
    manifest = args.manifest or args.model.parent / "split_manifest.csv"
    try:
        from core.explain import ModelExplainer
        from core.model import load_bundle
        from training.robustness import load_split, score_condition

        bundle = load_bundle(args.model)
        size = bundle.input_size
        frames = {"train": load_split(args.data, manifest, "train", size, args.train_limit),
                  "val": load_split(args.data, manifest, "val", size)}
        images = {k: list(f["image"]) for k, f in frames.items()}
        labels = {k: (f["label"] == "PNEUMONIA").to_numpy(dtype=int) for k, f in frames.items()}
        scores, _ = score_condition(bundle, images["val"])
        explainer = ModelExplainer(bundle.model)
        table = analyse(images, labels, scores, explainer.cam, cam_images=args.cam_images)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output = args.output or sibling_path(args.model, "_error_analysis.csv")
    table.to_csv(output, index=False, float_format="%.4f")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
