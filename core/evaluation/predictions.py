"""Reading the prediction files written beside a model by evaluation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_test_predictions(path: str | Path) -> pd.DataFrame:
    """The test-split predictions with a 0/1 ``y`` column; raises ``ValueError`` if unusable."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"test predictions not found: {path.name} should sit beside the model") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"test predictions {path.name} are unreadable ({type(exc).__name__})") from None
    missing = [c for c in ("label", "probability") if c not in frame.columns]
    if missing:
        raise ValueError(f"test predictions {path.name} lack the column(s) {', '.join(missing)}")
    labels = frame["label"].astype(str).str.upper()
    if not labels.isin(("NORMAL", "PNEUMONIA")).all():
        raise ValueError(f"test predictions {path.name} hold labels other than NORMAL and PNEUMONIA")
    probability = pd.to_numeric(frame["probability"], errors="coerce")
    if probability.isna().any() or (probability < 0).any() or (probability > 1).any():
        raise ValueError(f"test predictions {path.name} hold probabilities outside [0, 1]")
    if frame.empty:
        raise ValueError(f"test predictions {path.name} are empty")
    out = frame.copy()
    out["probability"] = probability.astype(float)
    out["y"] = (labels == "PNEUMONIA").astype(int)
    return out
