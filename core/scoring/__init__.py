"""Scoring: the model on prepared images, the gated batch loop, and the one outcome type."""

from core.scoring.outcome import NORMAL, PNEUMONIA, Outcome, Status, decide, pixel_hash, rank
from core.scoring.predict import predict_arrays, predict_with_features, score_prepared
from core.scoring.stream import iter_outcomes, predict_one, score_one

__all__ = ["NORMAL", "PNEUMONIA", "Outcome", "Status", "decide", "iter_outcomes", "predict_arrays",
           "pixel_hash", "predict_one", "predict_with_features", "rank", "score_one", "score_prepared"]
