"""Train the shipped ensemble: diverse members one after another, then one saved model.

    python -m training.ensemble --data ../shared/data/chest_xray --out models/

Members differ in seed, input scale, border trimming and architecture family; each is
trained with the acquisition-robust augmentation recipe on the same patient-level split.
Members already on disk (``<out>/members/<member>.keras``) are kept, so an interrupted run
resumes where it stopped. The members are then combined into ``<out>/<name>.keras``
(average of logits), the usual evaluation writes its metadata, and phone photos of the
validation films are scored at the shipped threshold (``training.photo_check``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

DEFAULT_NAME = "pneumonia_ensemble"
MEMBERS_DIR = "members"


@dataclass(frozen=True)
class Member:
    """One ensemble member: what it is and how it is trained."""

    name: str
    architecture: str
    seed: int
    scale: float = 1.0  # the member looks at the image resized to this fraction of the input side
    trim: float = 0.0  # border fraction cropped inside the member before that
    epochs: int | None = None  # this member's epoch budget, capped by the command's --epochs
    recipe: str | None = None  # augmentation recipe, the command's --recipe when None
    val_zooms: tuple[float, ...] = ()  # centre zooms added to validation for checkpoint choice
    standardize: bool = False  # each film to zero mean, unit spread inside the member (exposure)
    ema: bool = False  # train on a moving average of the weights (training.train.fit)

    def inner_size(self, size: int) -> int | None:
        """The side the member resizes to for an input of ``size`` pixels (None: no resize)."""
        return None if self.scale == 1.0 else int(round(size * self.scale))


def _standardized(name: str, architecture: str, seed: int, recipe: str, side: int = 176,
                  ema: bool = False) -> Member:
    """A member as the shipped ones are set up: the 6%-trimmed film at ``side`` px, standardized
    inside the model, 10 epochs, checkpoints chosen on validation films at their own framing and
    zoomed 1.3x and 1.5x."""
    return Member(name, architecture, seed=seed, scale=side / 224, trim=0.06, epochs=10, recipe=recipe,
                  val_zooms=(1.3, 1.5), standardize=True, ema=ema)


# Names say what they are at the shipped 224-px input. Two families, each looking at a 6%-trimmed
# film at 176 px, each standardizing the film inside the model (zero mean, unit spread: exposure
# cannot move its score), both trained against the shortcuts the error analysis found: crops down
# to 30% of the area (framing), half the normal films softened (softness) and half the normal
# films zoomed in before the crop (tight framing stops meaning disease), against uneven light on
# half the films of both classes (a broad glare blob and a linear fall-off), and with a quarter of
# the training films shown as the model input that scoring makes of a phone photo of each (photo).
# Their checkpoints are chosen on validation films at their own framing and zoomed 1.3x and 1.5x.
# The pair replaced the same two members without the photo ingredient on conditions written
# before its gate was refitted: it ranks films and photos better, and with the gate's texture
# block and plain-gradient check it accepts fewer non-X-ray images (README, *Members that did not
# ship*).
MEMBERS = (
    _standardized("resnet176_framing_soft_zoom_light_photo_std", "resnet_slim", 44,
                  "robust_framing_soft_zoom_light_photo"),
    _standardized("compact176_framing_soft_zoom_light_photo_std", "compact_cnn", 99,
                  "robust_framing_soft_zoom_light_photo"),
)
# Candidates. Train one with ``--members NAME --members-only``; combine any set with
# ``--members A,B,C`` (``--reuse models/pneumonia_ensemble.keras`` takes shipped members from it).
CANDIDATES = (
    # Shipped beside the standardized member until the separable-convolution member replaced it:
    # the same residual network without standardizing, so darkened films of healthy children
    # were flagged more often (12 more in 100 at severity 3 on our test split).
    Member("resnet176_framing_soft", "resnet_slim", seed=44, scale=176 / 224, trim=0.06, epochs=10,
           recipe="robust_framing_soft", val_zooms=(1.3, 1.5)),
    # The separable-convolution family at 224 px with the robust recipe: shipped beside the
    # framing-and-softness member until the standardized member replaced it. Alone it flags the
    # most zoomed normals (1.5x: +70 points on validation), and it is the slowest to score.
    Member("compact224", "compact_cnn", seed=11),
    # Shipped beside compact224 until the framing-and-softness member replaced it (seven epochs:
    # the budget left on 2 CPU cores once the first member had trained).
    Member("resnet176", "resnet_slim", seed=33, scale=176 / 224, trim=0.03, epochs=7),
    # With compact224 and resnet176 it flags far fewer zoomed normals, but that ensemble's gate
    # accepted 10 of 184 non-X-ray images (above the 5% limit); that build's figures are in
    # models/pneumonia_ensemble.json at commit 09b4be6.
    Member("compact192_trim", "compact_cnn", seed=22, scale=192 / 224, trim=0.06,
           recipe="robust_framing", val_zooms=(1.3, 1.5)),
    # The residual family with the framing recipe alone (not trained yet).
    Member("resnet176_framing", "resnet_slim", seed=44, scale=176 / 224, trim=0.06, epochs=10,
           recipe="robust_framing", val_zooms=(1.3, 1.5)),
    # The framing-and-softness member again under another seed, the cheap family for a set
    # without the compact CNN (faster to score). Residual sets without the standardized member
    # flagged few zoomed normals but fell below the screen's AUC bar (models/member_screen.csv).
    Member("resnet176_framing_soft_b", "resnet_slim", seed=55, scale=176 / 224, trim=0.06, epochs=10,
           recipe="robust_framing_soft", val_zooms=(1.3, 1.5)),
    # And half the normal films zoomed in before the crop, so tight framing stops meaning disease.
    # Beside compact224 and the framing-and-softness member it flagged fewer normals under a 1.5x
    # zoom and passed the first screen, but darkened films of healthy children were flagged far
    # more often; it was not shipped.
    Member("resnet176_framing_soft_zoom", "resnet_slim", seed=66, scale=176 / 224, trim=0.06, epochs=10,
           recipe="robust_framing_soft_zoom", val_zooms=(1.3, 1.5)),
    # The standardized member under other seeds and twice the epochs: at ten epochs its
    # validation AUC was still rising and its training accuracy was 0.93 (under-fitted under the
    # strong recipe), so a longer run is the cheapest way to more ranking power at the same cost
    # per image. Judged by the screen's ranking rule (--aim ranking), no set with them added
    # enough AUC on validation (best +0.0007; models/member_screen_ranking.csv); not shipped.
    Member("resnet176_framing_soft_std_long", "resnet_slim", seed=55, scale=176 / 224, trim=0.06,
           epochs=20, recipe="robust_framing_soft", val_zooms=(1.3, 1.5), standardize=True),
    Member("resnet176_framing_soft_std_long_b", "resnet_slim", seed=66, scale=176 / 224, trim=0.06,
           epochs=20, recipe="robust_framing_soft", val_zooms=(1.3, 1.5), standardize=True),
    # The standardized member at the trimmed film's own 198 px instead of 176 (no resize inside):
    # more detail for faint consolidation, at 1.27x the cost per image. Judged on pairs by the
    # ranking rule: beside the standardized member +0.0003 validation AUC and a 4.2-point
    # severity-3 accuracy drop against 2.2 (models/member_screen_resolution.csv); not shipped.
    Member("resnet198_framing_soft_std", "resnet_slim", seed=77, trim=0.06, epochs=10,
           recipe="robust_framing_soft", val_zooms=(1.3, 1.5), standardize=True),
    # The other family (separable convolutions) under the shipped members' recipe: trimmed, at
    # 176 px, framing and softness, standardized. Beside the standardized member compact224 added
    # the most validation AUC of any set (0.9984 against 0.9969) but flagged zoomed normals, having
    # trained without the framing recipe; this one keeps the family and takes the recipe. It costs
    # 1.25x the residual member per image under LiteRT, so it is judged in pairs. Beside the
    # standardized member +0.0014 validation AUC, but +7.2 points of normals flagged under the
    # 1.3x zoom (the pair: +2.9); no set passed the ranking rule (models/member_screen_family.csv).
    _standardized("compact176_framing_soft_std", "compact_cnn", 88, "robust_framing_soft"),
    # Shipped as a pair until the light pair above replaced it (photos of validation films: 71.0%
    # specificity); same seeds and budgets, without uneven light.
    _standardized("resnet176_framing_soft_std", "resnet_slim", 44, "robust_framing_soft"),
    _standardized("compact176_framing_soft_zoom_std", "compact_cnn", 99, "robust_framing_soft_zoom"),
    # The residual member with uneven light but without the zoom step. Beside the separable light
    # member it ranked photos of validation films best (AUC 0.990) but kept only 76.8% specificity
    # there (80% was asked), and a 1.5x zoom flagged 14.6 more normals in 100 (at most 10 asked).
    # Mixed with the old shipped separable member it flagged +10.9 points of zoomed (1.5x)
    # validation normals, where the separable light member beside the old residual one held
    # (+2.9): the zoom step is what the residual family lacked (models/members/*light*).
    _standardized("resnet176_framing_soft_light_std", "resnet_slim", 44, "robust_framing_soft_light"),
    # The shipped members with the light as phone photos still carry it: a broader, brighter glare
    # and a lens's vignette (training/augment.py, robust_framing_soft_zoom_vignette). On photos of
    # validation films, beside the shipped separable member: AUC 0.988 but specificity 78.3%; the
    # two together: 85.5% specificity at 95.8% recall (97% was asked). Neither set shipped
    # (models/members/*vignette*).
    _standardized("resnet176_framing_soft_zoom_vignette_std", "resnet_slim", 44, "robust_framing_soft_zoom_vignette"),
    _standardized("compact176_framing_soft_zoom_vignette_std", "compact_cnn", 99, "robust_framing_soft_zoom_vignette"),
    # Three members at 144 px instead of two at 176: about the same cost per image, a third
    # independently trained network in the average. The three ranked films and test photos better
    # than the shipped pair (our test split AUC 0.991, photos of test films 80.0% specificity),
    # but at their threshold (0.584) recall on our test split was 95.5% against 97.3% (96.8% was
    # asked); not shipped (models/members/resnet144_*+compact144_*). The first of them, chosen by
    # --aim parity as a third member beside the shipped pair, again ranked as well (AUC 0.989) but
    # kept 96.3% recall (models/members/*+resnet144_framing_soft_zoom_light_photo_std.json).
    _standardized("resnet144_framing_soft_zoom_light_photo_std", "resnet_slim", 44,
                  "robust_framing_soft_zoom_light_photo", side=144),
    _standardized("compact144_framing_soft_zoom_light_photo_std", "compact_cnn", 99,
                  "robust_framing_soft_zoom_light_photo", side=144),
    _standardized("resnet144_framing_soft_zoom_light_photo_std_b", "resnet_slim", 55,
                  "robust_framing_soft_zoom_light_photo", side=144),
    # The shipped members under another seed, for a third member at the shipped members' own size.
    # The screen (--aim parity) chose the residual one beside the pair: AUC 0.990 on our test
    # split, but 95.8% recall there and 96.8% on photos of the test films (96.8% and 97.3% were
    # asked); not shipped (models/members/*+resnet176_framing_soft_zoom_light_photo_std_b.json).
    _standardized("compact176_framing_soft_zoom_light_photo_std_b", "compact_cnn", 55,
                  "robust_framing_soft_zoom_light_photo"),
    _standardized("resnet176_framing_soft_zoom_light_photo_std_b", "resnet_slim", 55,
                  "robust_framing_soft_zoom_light_photo"),
    # The shipped members, and the residual one under seed 55, trained on a moving average of their
    # weights: a checkpoint picked on validation from noisy per-epoch weights flatters validation,
    # which may be why three-member sets kept less recall on our test split than on validation.
    # Each ranked validation films better than its twin on a steadier curve, but as a pair or a
    # three they flagged one more normal under a 1.5x zoom and failed the parity screen
    # (models/member_screen_ema.csv); not judged on the test split, not shipped. Beside the
    # shipped pair, the averaged separable member passes that screen
    # (models/member_screen_ema_pair_plus.csv); judged on test as a three with the shipped pair, it
    # kept 96.3% recall at its own threshold where 96.8% was asked, and was not shipped.
    _standardized("resnet176_framing_soft_zoom_light_photo_std_ema", "resnet_slim", 44,
                  "robust_framing_soft_zoom_light_photo", ema=True),
    _standardized("compact176_framing_soft_zoom_light_photo_std_ema", "compact_cnn", 99,
                  "robust_framing_soft_zoom_light_photo", ema=True),
    _standardized("resnet176_framing_soft_zoom_light_photo_std_ema_b", "resnet_slim", 55,
                  "robust_framing_soft_zoom_light_photo", ema=True),
    # The residual member under the shipped recipe at the trimmed film's own 198 px (no resize
    # inside): the one input size the shipped members do not cover, for a third member that sees
    # finer detail than the two it would join. Alone it ranked validation films better than the
    # 176-px residual member (best validation AUC 0.9933 against 0.9894; 1,096 s), and beside the
    # pair it cut the largest severity-3 accuracy drop to a third, but it flagged 6 of the 138 validation
    # normals more under a 1.5x zoom where the pair flags 2 fewer, so the set failed the parity
    # screen (models/member_screen_resolution_photo.csv); with the averaged separable member added
    # too, the four still flagged 3 zoomed normals more (models/member_screen_resolution_photo_b.csv).
    # Neither set was judged on the test split.
    _standardized("resnet198_framing_soft_zoom_light_photo_std", "resnet_slim", 77,
                  "robust_framing_soft_zoom_light_photo", side=224),
    # The same on a moving average of its weights, as the averaged separable member that held the
    # zoomed normals beside the pair. Beside the pair it passed the parity screen
    # (models/member_screen_resolution_photo_ema.csv) and, judged on test, met the first five ship
    # conditions, but at its full 198 px it made batch scoring 9.5x a naive loop where 10x is
    # asked; not shipped (models/members/*+resnet198_framing_soft_zoom_light_photo_std_ema.json).
    _standardized("resnet198_framing_soft_zoom_light_photo_std_ema", "resnet_slim", 77,
                  "robust_framing_soft_zoom_light_photo", side=224, ema=True),
    # The averaged residual member under seed 77 at the pair's own 176 px: the averaged 198-px
    # member's seed at the cost per image of the shipped residual member (not screened yet).
    _standardized("resnet176_framing_soft_zoom_light_photo_std_ema_c", "resnet_slim", 77,
                  "robust_framing_soft_zoom_light_photo", ema=True),
    # Shipped as a pair until the photo pair above replaced it: the same members without the photo
    # ingredient (on photos of validation films 79.7% specificity against 85.5%).
    _standardized("resnet176_framing_soft_zoom_light_std", "resnet_slim", 44, "robust_framing_soft_zoom_light"),
    _standardized("compact176_framing_soft_zoom_light_std", "compact_cnn", 99, "robust_framing_soft_zoom_light"),
)


def pick_members(names: str | None) -> tuple[Member, ...]:
    """The shipped members, or the named ones (comma-separated) from the shipped and candidates."""
    if not names:
        return MEMBERS
    known = {m.name: m for m in (*MEMBERS, *CANDIDATES)}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise ValueError(f"unknown members {unknown}; known: {', '.join(known)}")
    return tuple(known[n] for n in wanted)


def restore_members(source: Path, folder: Path, names: list[str]) -> list[str]:
    """Save the named members that the saved ensemble ``source`` holds as member files in ``folder``.

    Member files are not shipped (only the combined model is), so a fresh checkout has none;
    a member whose training summary is in ``folder`` and whose branch is inside ``source`` is
    taken from there instead of being trained again. Returns the names restored.
    """
    import keras

    from core.model.ensemble import member_views

    wanted = [n for n in names if not (folder / f"{n}.keras").exists() and (folder / f"{n}_training.json").exists()]
    if not wanted:
        return []
    model = keras.saving.load_model(source, compile=False, safe_mode=True)
    restored = []
    for view in member_views(model):
        if view.name in wanted:
            view.model.save(folder / f"{view.name}.keras")
            restored.append(view.name)
    return restored


def train_members(data: Path, out: Path, manifest: pd.DataFrame, *, epochs: int, patience: int,
                  batch_size: int, size: int, members: tuple[Member, ...] = MEMBERS,
                  recipe: str = "robust", reuse: Path | None = None) -> list[Path]:
    """Train every member that is not on disk yet; return the members' model paths.

    With ``reuse`` (a saved ensemble) members it holds are restored from it first.
    """
    from training.augment import RECIPES
    from training.train import fit

    folder = out / MEMBERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if reuse is not None:
        for name in restore_members(reuse, folder, [m.name for m in members]):
            print(f"[ensemble] {name}: restored from {reuse}", file=sys.stderr, flush=True)
    paths = []
    for member in members:
        path = folder / f"{member.name}.keras"
        paths.append(path)
        if path.exists() and (folder / f"{member.name}_training.json").exists():
            print(f"[ensemble] {member.name}: already trained, kept", file=sys.stderr, flush=True)
            continue
        print(f"[ensemble] training {member.name}", file=sys.stderr, flush=True)
        summary = fit(member.architecture, manifest, data, path, size=size, epochs=min(member.epochs or epochs, epochs),
                      batch_size=batch_size,
                      seed=member.seed, patience=patience, history_csv=folder / f"{member.name}_history.csv",
                      recipe=RECIPES[member.recipe or recipe], inner_size=member.inner_size(size), trim=member.trim,
                      val_zooms=member.val_zooms, standardize=member.standardize, ema=member.ema)
        summary.update({"member": asdict(member), "image_size": size})
        (folder / f"{member.name}_training.json").write_text(json.dumps(summary, indent=2) + "\n")
    return paths


def combine(member_paths: list[Path], out_path: Path) -> Path:
    """Build the single saved ensemble from trained member files (no optimiser state is kept).

    Each member's batch norms are folded into its convolutions first (:mod:`training.fold`):
    the same function, scored faster.
    """
    import keras

    from core.model.ensemble import build_ensemble
    from training.fold import fold_batch_norm

    members = {path.stem: fold_batch_norm(keras.saving.load_model(path, compile=False, safe_mode=True))
               for path in member_paths}
    model = build_ensemble(members, name=out_path.stem)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(out_path)
    return out_path


def member_figures(member_paths: list[Path], data: Path, manifest: pd.DataFrame, threshold: float) -> list[dict]:
    """Each member's own validation and test figures, at 0.5 and at the ensemble's threshold."""
    import keras

    from core.evaluation.metrics import classification_summary
    from training.evaluate import score_frame

    figures = []
    for path in member_paths:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        summary_file = path.with_name(f"{path.stem}_training.json")
        training = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        row: dict = {"name": path.stem, **training.get("member", {}), "parameters": int(model.count_params()),
                     "best_epoch": training.get("best_epoch"), "epochs_run": training.get("epochs_run"),
                     "training_seconds": training.get("training_seconds")}
        for split in ("val", "test"):
            frame = manifest[manifest["split"] == split]
            frame = frame.assign(file=[str(data / f) for f in frame["file"]])
            labels = (frame["label"] == "PNEUMONIA").astype(int).to_numpy()
            probabilities = score_frame(model, frame)
            metrics = classification_summary(labels, probabilities, threshold)
            row[split] = {k: round(float(metrics[k]), 4) for k in ("auc", "accuracy", "recall", "specificity")}
        figures.append(row)
    return figures


def reproduce_command(args: argparse.Namespace, members: tuple[Member, ...]) -> str:
    """The command that trains this ensemble from nothing (``--reuse`` only saves time, so it is left out)."""
    parts = ["python -m training.ensemble --data <dataset root> --out models/"]
    if args.name != DEFAULT_NAME:
        parts.append(f"--name {args.name}")
    if args.members:
        parts.append(f"--members {','.join(m.name for m in members)}")
    if args.per_member_gate:
        parts.append("--per-member-gate")
    return " ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from training.arguments import run_parser

    parser = run_parser(__doc__, DEFAULT_NAME)
    parser.add_argument("--seed", type=int, default=1337, help="seed of the patient-level split")
    parser.add_argument("--recipe", default="robust")
    parser.add_argument("--members", default=None,
                        help="comma-separated member names (default: the shipped members)")
    parser.add_argument("--members-only", action="store_true", help="train the members, do not combine them")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="a saved ensemble whose members are restored instead of retrained "
                             "(their training summaries must be in <out>/members/)")
    parser.add_argument("--per-member-gate", action="store_true",
                        help="fit the gate with one feature-space distance per member (training.fit_gate --per-member)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from training.train import MANIFEST_NAME, prepare_run

    try:
        members = pick_members(args.members)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = prepare_run(args.data, args.out, args.seed, args.limit_per_class)
    if manifest is None:
        return 2
    paths = train_members(args.data, args.out, manifest, epochs=args.epochs, patience=args.patience,
                          batch_size=args.batch_size, size=args.image_size, members=members, recipe=args.recipe,
                          reuse=args.reuse)
    if args.members_only:
        return 0
    from training.evaluate import evaluate

    model_path = combine(paths, args.out / f"{args.name}.keras")
    summaries = [json.loads(p.with_name(f"{p.stem}_training.json").read_text()) for p in paths]
    training = {
        "architecture": "ensemble (mean of member logits)",
        "members": [s["member"] for s in summaries],
        "parameters": sum(int(s["parameters"]) for s in summaries),
        "training_seconds": round(sum(float(s["training_seconds"]) for s in summaries), 1),
        "epochs_run": [s["epochs_run"] for s in summaries],
        "best_epoch": [s["best_epoch"] for s in summaries],
        "batch_size": args.batch_size, "learning_rate": summaries[0]["learning_rate"], "seed": args.seed,
        "weights": None, "class_weights": summaries[0]["class_weights"], "image_size": args.image_size,
        "augmentation": summaries[0]["augmentation"],
        "command": reproduce_command(args, members),
    }
    (args.out / f"{args.name}_training.json").write_text(json.dumps(training, indent=2) + "\n")
    meta = evaluate(model_path, args.data, args.out / MANIFEST_NAME, per_member_gate=args.per_member_gate)
    figures = member_figures(paths, args.data, manifest, meta.threshold.value)
    meta = meta.replace(members=figures)
    meta.write(model_path)
    from training.photo_check import check_split

    try:
        # Phone photos of the validation films at the shipped threshold: the model card's field table.
        check_split(model_path, args.data, manifest, record_figures=True)
    except ValueError as exc:
        print(f"photo check skipped: {exc}", file=sys.stderr)
    from training.augment import main as preview

    # The first member's recipe (the shipped members share one); the model card shows this grid.
    preview(["--data", str(args.data), "--output", str(args.out / f"{args.name}_augmentation.png"), "--size", "128",
             "--recipe", members[0].recipe or args.recipe])
    print(json.dumps({"threshold": meta.threshold.value, "test": meta.metrics["test"], "members": figures},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
