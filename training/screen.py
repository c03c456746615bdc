"""Screen sets of ensemble members on the validation split before building one of them.

    python -m training.screen --data ../shared/data/chest_xray \\
        --sets compact224,resnet176 compact224,resnet176,resnet176_framing_soft

The first set is the reference (the shipped members). Each set is combined in memory from the
member files in ``<members>`` and scored on validation films only (the test split is not read):
its AUC, the threshold by the clean-film rule (the highest keeping validation recall >= 0.98) and,
at that threshold, the change in normal films flagged under 1.3x and 1.5x centre zooms, under
gaussian blur and under darkening (brightness down) at severity 3, with the severity-3 mean and
worst AUC of the corruption suite and its largest accuracy drop.

A set passes when its AUC is at most 0.001 below the reference's, it flags fewer extra normals
under the 1.5x zoom, no more under blur and no more under darkening, and its largest accuracy
drop under a severity-3 corruption is no larger than the reference's. Among those that pass, the
one flagging the fewest extra normals under the 1.5x zoom is chosen (fewer members on a tie).
The rule was written before any candidate was scored, except the darkening and accuracy-drop
conditions: they were added after a set chosen without them flagged half the darkened normal
films of the test split (README, "Model and results").

With ``--aim ranking`` the framing targets are taken as met and a set must rank better instead:
its AUC at least 0.001 above the reference's; at most 2 more normals in 100 flagged than the
reference under each of the 1.3x and 1.5x zooms, blur and darkening; a severity-3 accuracy drop
at most 1 point larger and a worst severity-3 AUC at most 0.005 lower. The passing set with the
highest AUC is chosen (fewer members when within 0.0005). This rule was written before the
member it was made for (resnet176_framing_soft_std_long) trained.

With ``--aim parity`` a larger set need not rank better, only as well: its AUC at most 0.0005
below the reference's, the shift figures within the same slacks as ``--aim ranking``, and the same
choice (highest AUC; fewer members when within 0.0005). It is for adding members already trained,
for the variance an ensemble removes rather than a gain the validation split could show; it was
written before any of the sets it screened was combined.

Each row also gives its AUC gain over the reference with a 95% interval from a paired bootstrap
over validation patients (``val_auc_gain``, ``…_low``, ``…_high``). Neither rule reads it (both
were written before it was added); it says whether a gain is larger than the split's noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

AUC_MARGIN = 0.001
MIN_RECALL = 0.98
MEMBERS = Path("models/members")


def judge_set(model, images: list[np.ndarray], labels: np.ndarray, scores: np.ndarray | None = None) -> dict:
    """The screening figures of one combined model on validation images (``scores``: its own, if known)."""
    from core.evaluation.metrics import classification_summary, threshold_for_recall
    from training.robustness import network_scores, quick_shift

    scores = network_scores(model, images) if scores is None else scores
    threshold = threshold_for_recall(labels, scores, MIN_RECALL)
    clean = classification_summary(labels, scores, threshold)
    shift = quick_shift(model, images, labels, threshold, clean_scores=scores,
                        flagged_under=("gaussian_blur", "brightness_down"))
    return {"val_auc": clean["auc"], "threshold": threshold, "val_specificity": clean["specificity"],
            "zoom1.3_normals_flagged_change": shift["zoom1.3_normals_flagged_change"],
            "zoom1.5_normals_flagged_change": shift["zoom1.5_normals_flagged_change"],
            "blur3_normals_flagged_change": shift["gaussian_blur3_normals_flagged_change"],
            "darken3_normals_flagged_change": shift["brightness_down3_normals_flagged_change"],
            "shift3_mean_auc": shift["shift3_mean_auc"], "shift3_min_auc": shift["shift3_min_auc"],
            "shift3_max_accuracy_drop": shift["shift3_max_accuracy_drop"]}


AIMS = ("framing", "ranking", "parity")
RANK_GAIN = 0.001  # the AUC a set must add under --aim ranking
PARITY_LOSS = 0.0005  # the AUC a set may lose under --aim parity
RANK_SLACK = 0.02  # extra normals flagged (of all normals) a set may add under each shift
RANK_DROP_SLACK = 0.01  # accuracy drop it may add at severity 3
RANK_MIN_AUC_SLACK = 0.005  # worst severity-3 AUC it may lose
RANK_TIE = 0.0005  # AUCs this close count as a tie, settled by fewer members


def apply_rule(table: pd.DataFrame, aim: str = "framing") -> pd.DataFrame:
    """Mark which sets pass against the first row and which one is chosen (module docstring)."""
    if table.empty:
        raise ValueError("no member sets were screened")
    if aim not in AIMS:
        raise ValueError(f"unknown aim {aim!r}; known: {', '.join(AIMS)}")
    ref = table.iloc[0]
    out = table.copy()
    if aim == "framing":
        out["passes"] = _framing_passes(out, ref)
    else:
        out["passes"] = _ranking_passes(out, ref, RANK_GAIN if aim == "ranking" else -PARITY_LOSS)
    out.loc[out.index[0], "passes"] = False  # the reference is what a candidate must beat
    out["chosen"] = False
    passing = out[out["passes"]].assign(size=lambda t: t["members"].str.count(","))
    if aim != "framing":
        # The highest AUC; sets within the tie of it are settled by fewer members, then AUC.
        passing = passing[passing["val_auc"] >= passing["val_auc"].max() - RANK_TIE]
        passing = passing.assign(neg_auc=-passing["val_auc"]).sort_values(["size", "neg_auc"])
    else:
        passing = passing.sort_values(["zoom1.5_normals_flagged_change", "size"])
    if not passing.empty:
        out.loc[passing.index[0], "chosen"] = True
    return out


def _framing_passes(out: pd.DataFrame, ref: pd.Series) -> pd.Series:
    """The default rule: about the reference's AUC, fewer zoomed normals flagged, no shift worse."""
    return ((out["val_auc"] >= ref["val_auc"] - AUC_MARGIN)
            & (out["zoom1.5_normals_flagged_change"] < ref["zoom1.5_normals_flagged_change"])
            & (out["blur3_normals_flagged_change"] <= ref["blur3_normals_flagged_change"])
            & (out["darken3_normals_flagged_change"] <= ref["darken3_normals_flagged_change"])
            & (out["shift3_max_accuracy_drop"] <= ref["shift3_max_accuracy_drop"]))


def _ranking_passes(out: pd.DataFrame, ref: pd.Series, gain: float) -> pd.Series:
    """``--aim ranking`` / ``parity``: AUC at least ``gain`` above the reference's (negative: a loss
    allowed), the shift figures held within a small slack."""
    passes = out["val_auc"] >= ref["val_auc"] + gain
    for column in ("zoom1.3_normals_flagged_change", "zoom1.5_normals_flagged_change",
                   "blur3_normals_flagged_change", "darken3_normals_flagged_change"):
        passes &= out[column] <= ref[column] + RANK_SLACK
    passes &= out["shift3_max_accuracy_drop"] <= ref["shift3_max_accuracy_drop"] + RANK_DROP_SLACK
    return passes & (out["shift3_min_auc"] >= ref["shift3_min_auc"] - RANK_MIN_AUC_SLACK)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, default=Path("models/split_manifest.csv"))
    parser.add_argument("--members", type=Path, default=MEMBERS, help="folder of trained member files")
    parser.add_argument("--sets", nargs="+", required=True, help="comma-separated member names; the first is the "
                                                                 "reference")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per label (quick runs)")
    parser.add_argument("--output", type=Path, default=Path("models/member_screen.csv"))
    parser.add_argument("--aim", choices=AIMS, default="framing", help="which rule chooses (module docstring)")
    args = parser.parse_args(argv)
    if len(args.sets) < 2:
        parser.error("give the reference set and at least one candidate")
    try:
        import keras

        from core.evaluation.metrics import auc_gain_ci
        from core.model.ensemble import build_ensemble
        from training.robustness import load_split, network_scores

        names = sorted({n.strip() for s in args.sets for n in s.split(",") if n.strip()})
        missing = [n for n in names if not (args.members / f"{n}.keras").is_file()]
        if missing:
            raise FileNotFoundError(f"no member file for {', '.join(missing)} in {args.members}")
        loaded = {n: keras.saving.load_model(args.members / f"{n}.keras", compile=False, safe_mode=True)
                  for n in names}
        size = int(next(iter(loaded.values())).input_shape[1])
        val = load_split(args.data, args.manifest, "val", size, args.limit)
        images, labels = list(val["image"]), (val["label"] == "PNEUMONIA").astype(int).to_numpy()
        rows, reference = [], None
        for member_set in args.sets:
            chosen = [n.strip() for n in member_set.split(",") if n.strip()]
            model = loaded[chosen[0]] if len(chosen) == 1 else build_ensemble({n: loaded[n] for n in chosen})
            scores = network_scores(model, images)
            reference = scores if reference is None else reference
            gain = auc_gain_ci(labels, reference, scores, groups=val["patient"].to_numpy())
            rows.append({"members": ",".join(chosen), **judge_set(model, images, labels, scores),
                         **dict(zip(("val_auc_gain", "val_auc_gain_low", "val_auc_gain_high"), gain, strict=True))})
            print(f"[screen] {rows[-1]}", file=sys.stderr, flush=True)
        table = apply_rule(pd.DataFrame(rows), args.aim)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output, index=False, float_format="%.4f")
    print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
