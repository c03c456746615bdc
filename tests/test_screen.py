"""Screening member sets on validation: the figures of one set, and the rule fixed beforehand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import TINY_SIZE, xray_like
from training.screen import apply_rule, judge_set


def _row(members: str, auc: float, zoom15: float, blur: float, darken: float = 0.10, drop: float = 0.03) -> dict:
    return {"members": members, "val_auc": auc, "zoom1.5_normals_flagged_change": zoom15,
            "blur3_normals_flagged_change": blur, "darken3_normals_flagged_change": darken,
            "shift3_max_accuracy_drop": drop}


def test_rule_needs_auc_framing_blur_darkening_and_accuracy_and_prefers_fewer_members() -> None:
    table = pd.DataFrame([
        _row("a,b", 0.9979, 0.64, 0.05),          # the reference
        _row("a,b,c", 0.9971, 0.40, 0.05),        # passes
        _row("a,c", 0.9975, 0.40, 0.04),          # passes, as good on framing, fewer members: chosen
        _row("a,d", 0.9960, 0.10, 0.00),          # AUC too low
        _row("a,e", 0.9990, 0.70, 0.00),          # framing worse
        _row("a,f", 0.9990, 0.30, 0.06),          # blur worse
        _row("a,g", 0.9990, 0.20, 0.00, darken=0.30),  # darkened normals flagged more often
        _row("a,h", 0.9990, 0.20, 0.00, drop=0.08),    # one corruption costs more accuracy
    ])
    judged = apply_rule(table)
    assert list(judged["passes"]) == [False, True, True, False, False, False, False, False]
    assert list(judged.loc[judged["chosen"], "members"]) == ["a,c"]
    nothing = apply_rule(table.iloc[[0, 3, 4, 6, 7]])
    assert not nothing["chosen"].any()
    with pytest.raises(ValueError):
        apply_rule(table.iloc[0:0])


def test_judge_set_reports_every_screening_figure() -> None:
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(2)
    model = build_model("compact_cnn", TINY_SIZE)
    images = [xray_like(TINY_SIZE, TINY_SIZE, seed=s) for s in range(12)]
    labels = np.array([0, 1] * 6)
    figures = judge_set(model, images, labels)
    assert set(figures) == {"val_auc", "threshold", "val_specificity", "zoom1.3_normals_flagged_change",
                            "zoom1.5_normals_flagged_change", "blur3_normals_flagged_change",
                            "darken3_normals_flagged_change", "shift3_mean_auc", "shift3_min_auc",
                            "shift3_max_accuracy_drop"}
    assert 0 <= figures["val_auc"] <= 1 and -1 <= figures["blur3_normals_flagged_change"] <= 1
    assert figures["shift3_min_auc"] <= figures["shift3_mean_auc"]


def _ranked(members: str, auc: float, zoom13: float = 0.03, zoom15: float = 0.08, blur: float = -0.02,
            darken: float = 0.13, drop: float = 0.02, min_auc: float = 0.99) -> dict:
    return {"members": members, "val_auc": auc, "zoom1.3_normals_flagged_change": zoom13,
            "zoom1.5_normals_flagged_change": zoom15, "blur3_normals_flagged_change": blur,
            "darken3_normals_flagged_change": darken, "shift3_max_accuracy_drop": drop,
            "shift3_min_auc": min_auc}


def test_ranking_rule_needs_a_real_auc_gain_and_holds_every_shift_figure() -> None:
    table = pd.DataFrame([
        _ranked("a,b", 0.9970),                    # the reference
        _ranked("a,c", 0.9975),                    # gain too small
        _ranked("b,c", 0.9985, zoom15=0.09),       # passes, within the framing slack
        _ranked("a,b,c", 0.9988),                  # passes; within the tie of b,c but more members
        _ranked("c,d", 0.9995, zoom13=0.06),       # 1.3x zoom beyond the slack
        _ranked("c,e", 0.9995, darken=0.16),       # darkening beyond the slack
        _ranked("c,f", 0.9995, blur=0.01),         # blur beyond the slack
        _ranked("c,g", 0.9995, drop=0.035),        # accuracy drop beyond the slack
        _ranked("c,h", 0.9995, min_auc=0.98),      # worst corruption AUC too low
    ])
    judged = apply_rule(table, "ranking")
    assert list(judged["passes"]) == [False, False, True, True, False, False, False, False, False]
    assert list(judged.loc[judged["chosen"], "members"]) == ["b,c"]
    clear_winner = apply_rule(pd.concat([table, pd.DataFrame([_ranked("a,b,d", 0.9992)])], ignore_index=True),
                              "ranking")
    assert list(clear_winner.loc[clear_winner["chosen"], "members"]) == ["a,b,d"]
    assert not apply_rule(table.iloc[[0, 1, 4]], "ranking")["chosen"].any()
    with pytest.raises(ValueError):
        apply_rule(table, "speed")


def test_parity_rule_lets_a_larger_set_through_at_the_same_auc_and_holds_every_shift_figure() -> None:
    table = pd.DataFrame([
        _ranked("a,b", 0.9970),                    # the reference
        _ranked("a,b,c", 0.9966),                  # passes: within the allowed loss
        _ranked("a,b,d", 0.9964),                  # loses too much
        _ranked("a,b,e", 0.9972, darken=0.16),     # darkening beyond the slack
        _ranked("a,b,c,d", 0.9969),                # passes; within the tie of a,b,f but more members
        _ranked("a,b,f", 0.9973),                  # passes, the highest AUC
    ])
    judged = apply_rule(table, "parity")
    assert list(judged["passes"]) == [False, True, False, False, True, True]
    assert list(judged.loc[judged["chosen"], "members"]) == ["a,b,f"]
    assert not apply_rule(table.iloc[[0, 2, 3]], "parity")["chosen"].any()
    # The same table under --aim ranking: no set gains 0.001, so none is chosen.
    assert not apply_rule(table, "ranking")["chosen"].any()
