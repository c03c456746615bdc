"""The monitoring page's data (cached per state of the log), figures and wording.

The figures come from :mod:`core.audit.monitoring`. The log's records are kept in memory
per state of the log (its record count and last sequence number, :meth:`AuditLog.stamp`):
reruns and changes of period do not read the database again, and after new records only
those are read (see :func:`events`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.audit import AuditLog
from core.audit.monitoring import (
    MIN_SCORES_FOR_DRIFT,
    PSI_BINS,
    PSI_MAJOR,
    PSI_MODERATE,
    Drift,
    Totals,
    drift,
    load_events,
    recent_scores,
    score_shares,
    totals,
    weekly,
)
from core.model import sibling_path
from ui.state import ModelInfo

RECENT_WEEKS = 4
PERIODS = {0: "Everything recorded", 52: "Last 52 weeks", 26: "Last 26 weeks", 13: "Last 13 weeks",
           4: "Last 4 weeks"}
DEFAULT_PERIOD = 0
CONFIG = {"displaylogo": False}
COLOURS = {"scored": "#2471a3", "refused": "#e67e22", "unreadable": "#95a5a6", "referred": "#c0392b",
           "agreement": "#1e8449", "psi": "#7d3c98", "recent": "#c0392b", "validation": "#7f8c8d"}
BAND = "rgba(30,132,73,0.18)"
LAYOUT = {"template": "plotly_white", "height": 330, "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
          "legend": {"orientation": "h", "y": -0.18}, "hovermode": "x unified"}
INTRO = ("How the tool is doing where it is used, week by week (weeks start on Monday, UTC), from the audit "
         "log: how many images were scored, how many were referred or refused, how often reviewers agreed "
         "with the model, and whether the scores still look like those on the validation images.")
EMPTY = ("Nothing recorded yet: this page fills in as images are scored on the triage pages and reviewed. "
         "Records go to the audit log at `{path}`.")
RECALIBRATION_NOTE = ("Scores are compared with the model's validation scores under its shipped calibration. "
                      "When a site profile recalibrates probabilities, the scores recorded under it mean something "
                      "slightly different, and the comparison is approximate.")
LEVEL_TITLES = {"stable": "Scores are stable", "moved": "Scores have moved", "moved a lot": "Scores have moved a lot",
                "too few": "Too few scores to judge drift"}


@dataclass(frozen=True)
class Summary:
    """What the page shows for one period."""

    table: pd.DataFrame  # core.audit.monitoring.weekly
    totals: Totals
    recent: np.ndarray  # calibrated scores of the last RECENT_WEEKS weeks with records
    recent_from: pd.Timestamp | None  # the first of those weeks
    drift: Drift | None  # None without validation scores
    profiled: float  # share of the period's scored images recorded under a site profile (NaN if none scored)


# --- data ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Read:
    stamp: tuple[int, int]  # AuditLog.stamp() when read: (records, last sequence number)
    frame: pd.DataFrame  # never modified once stored: every session shares it


@st.cache_resource(show_spinner=False)
def _reads() -> tuple[threading.Lock, dict[str, _Read]]:
    return threading.Lock(), {}


MAX_LOGS_KEPT = 4


def events(log: AuditLog, stamp: tuple[int, int]) -> pd.DataFrame:
    """Every record of ``log`` up to ``stamp``'s last one, as :func:`load_events` gives them (less the time text).

    Kept for the server's lifetime, one frame per log, and read incrementally: when the log
    has only grown since the last read (as many records more as its last sequence number
    moved), only the new records are read; after a purge, or anything else, all of them.
    The returned frame is shared between sessions and must not be modified.
    """
    lock, reads = _reads()
    path = str(log.path)
    with lock:
        known = reads.get(path)
        if known is not None and known.stamp == stamp:
            return known.frame
        grown = known is not None and stamp[0] - known.stamp[0] == stamp[1] - known.stamp[1] > 0
        if grown:
            new = load_events(log, after_seq=known.stamp[1], upto_seq=stamp[1]).drop(columns="time_utc")
            frame = pd.concat([known.frame, new], ignore_index=True)
        else:
            frame = load_events(log, upto_seq=stamp[1]).drop(columns="time_utc")
        reads.pop(path, None)
        reads[path] = _Read(stamp, frame)
        while len(reads) > MAX_LOGS_KEPT:
            reads.pop(next(iter(reads)))
        return frame


def period_start(weeks: int, today: datetime | None = None) -> pd.Timestamp | None:
    """The Monday starting the first of the last ``weeks`` weeks (the current week included); ``None`` for all."""
    if not weeks:
        return None
    day = (today or datetime.now(UTC)).date()
    monday = day - timedelta(days=day.weekday())
    return pd.Timestamp(monday - timedelta(weeks=weeks - 1))


def with_every_week(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a row for each week between its first and last, so weeks without use show as gaps
    (zero images, no shares) instead of lines drawn straight across them."""
    if table.empty:
        return table
    weeks = pd.date_range(table["week"].min(), table["week"].max(), freq="7D")
    if len(weeks) == len(table):
        return table
    out = table.set_index("week").reindex(weeks)
    counts = ["images", "scored", "referred", "refused", "reviews", "agreements"]
    out[counts] = out[counts].fillna(0).astype(int)
    return out.rename_axis("week").reset_index()


def summarise(frame: pd.DataFrame, validation: np.ndarray | None, start: pd.Timestamp | None = None) -> Summary:
    """The period's weekly table, totals and recent drift from a frame of :func:`load_events`."""
    if start is not None:
        frame = frame[frame["week"] >= start]
    table = with_every_week(weekly(frame, validation))
    recent, recent_from = recent_scores(frame, RECENT_WEEKS)
    scored = frame[(frame["kind"] == "score") & (frame["gate_outcome"] == "scored")]
    profiled = float((scored["site_profile_id"] != "").mean()) if len(scored) else float("nan")
    return Summary(table, totals(table), recent, recent_from,
                   None if validation is None else drift(recent, validation), profiled)


@st.cache_data(show_spinner=False, max_entries=8)
def _summary(_log: AuditLog, path: str, stamp: tuple[int, int], start: str | None,
             _validation: np.ndarray | None, validation_key: tuple) -> Summary:
    return summarise(events(_log, stamp), _validation, None if start is None else pd.Timestamp(start))


def summary(log: AuditLog, stamp: tuple[int, int], weeks: int, validation: np.ndarray | None,
            validation_key: tuple) -> Summary:
    """The period's summary, cached on the log's path and ``stamp`` (:meth:`AuditLog.stamp`), the period
    and the validation file."""
    start = period_start(weeks)
    return _summary(log, str(log.path), stamp, None if start is None else start.isoformat(), validation,
                    validation_key)


@st.cache_data(show_spinner=False, max_entries=4)
def _validation(path: str, modified: float) -> np.ndarray:
    try:
        frame = pd.read_csv(path, usecols=["probability"])
    except FileNotFoundError:
        raise ValueError(f"no validation predictions found ({path.rsplit('/', 1)[-1]} should sit beside the "
                         "model)") from None
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"the validation predictions are unreadable ({type(exc).__name__})") from None
    scores = pd.to_numeric(frame["probability"], errors="coerce").to_numpy(dtype=float)
    if len(scores) < PSI_BINS or not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
        raise ValueError(f"the validation predictions need at least {PSI_BINS} probabilities, all within [0, 1]")
    return scores


def validation_scores(info: ModelInfo) -> tuple[np.ndarray | None, tuple, str | None]:
    """The calibrated validation scores shipped with the model, a key for caching, and why they are missing."""
    path = sibling_path(info.path, "_val_predictions.csv")
    try:
        modified = path.stat().st_mtime
        return _validation(str(path), modified), (str(path), modified), None
    except FileNotFoundError:
        return None, (), f"no validation predictions found ({path.name} should sit beside the model)"
    except ValueError as exc:
        return None, (), str(exc)


# --- wording -------------------------------------------------------------------------------------------------------

def pct(value: float, digits: int = 1) -> str:
    """A share as a percentage, or a dash when there is nothing to divide."""
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}%}"


def interval_text(t: Totals) -> str | None:
    """The agreement's 95% interval, e.g. "95% CI 88–94%", or ``None`` without reviews."""
    if not t.reviews:
        return None
    return f"95% CI {t.agreement_low:.0%}–{t.agreement_high:.0%}"


def headline(t: Totals) -> list[tuple[str, str, str | None, str]]:
    """(label, value, line under the value, help) for the page's headline metrics."""
    unreadable = t.images - t.scored - t.refused
    return [
        ("Images scored", f"{t.scored:,}", None,
         f"{t.images:,} images went through the tool: {t.scored:,} scored, {t.refused:,} refused by the gate, "
         f"{unreadable:,} unreadable."),
        ("Referred", pct(t.referred_share), None,
         f"{t.referred:,} of the {t.scored:,} scored images were at or above the threshold in force when they "
         "were scored."),
        ("Refused by the gate", pct(t.refused_share), None,
         f"{t.refused:,} of {t.images:,} images were not chest X-rays the tool can assess (cannot assess)."),
        ("Reviewer agreement", pct(t.agreement, 0) if t.reviews else "—", interval_text(t),
         f"{t.agreements:,} of {t.reviews:,} reviews with a call kept the model's decision (reviews marked "
         "cannot assess are left out), with the Wilson 95% confidence interval."),
    ]


def drift_text(summary: Summary) -> tuple[str, str]:
    """(level, sentence) for the drift banner over the recent weeks."""
    d = summary.drift
    if d is None:
        return "too few", "The validation scores are missing, so drift cannot be measured."
    since = f"since the week of {summary.recent_from:%d %b %Y}" if summary.recent_from is not None else ""
    n = len(summary.recent)
    if d.psi is None:
        return d.level, (f"**{LEVEL_TITLES[d.level]}.** {n:,} scored images {since}; at least "
                         f"{MIN_SCORES_FOR_DRIFT} are needed to compare them with the validation images.")
    return d.level, (f"**{LEVEL_TITLES[d.level]}** over the last {RECENT_WEEKS} weeks recorded ({n:,} scored "
                     f"images {since}; PSI {d.psi:.2f}). {d.message}")


# --- figures -------------------------------------------------------------------------------------------------------
# Built as plain specifications and validated once by go.Figure: plotly's add_*/update_* calls
# validate every property on the way and cost ~10 times as much, which the page notices.

def _weeks(table: pd.DataFrame) -> list[str]:
    return [f"{week:%Y-%m-%d}" for week in table["week"]]


def _values(column: pd.Series) -> list[float | None]:
    """A column for plotly: missing values as ``None``, which break a line instead of bridging it."""
    return [None if value is None or math.isnan(value) else float(value) for value in column.to_numpy(dtype=float)]


def _figure(title: str, data: list[dict], layout: dict | None = None, weekly_axis: bool = True) -> go.Figure:
    layout = {**LAYOUT, "title": {"text": title, "x": 0.0, "xanchor": "left"}, **(layout or {})}
    if weekly_axis:
        layout["xaxis"] = {"type": "date", "tickformat": "%d %b %Y", "hoverformat": "week of %d %b %Y",
                           **layout.get("xaxis", {})}
    return go.Figure({"data": data, "layout": layout})


def volume_figure(table: pd.DataFrame) -> go.Figure:
    """Images per week: scored, refused by the gate and unreadable, stacked."""
    weeks = _weeks(table)
    unreadable = table["images"] - table["scored"] - table["refused"]
    bars = [{"type": "bar", "x": weeks, "y": values.tolist(), "name": name, "marker": {"color": COLOURS[key]},
             "hovertemplate": f"{name} %{{y:,}}<extra></extra>"}
            for name, values, key in (("scored", table["scored"], "scored"),
                                      ("refused by the gate", table["refused"], "refused"),
                                      ("unreadable", unreadable, "unreadable"))]
    return _figure("Images per week", bars, {"barmode": "stack", "yaxis": {"title": {"text": "images"}}})


def _line(table: pd.DataFrame, share: str, part: str, whole: str, name: str, colour: str, label: str) -> dict:
    return {"type": "scatter", "x": _weeks(table), "y": _values(table[share]), "mode": "lines+markers",
            "name": name, "line": {"color": colour}, "customdata": table[[part, whole]].to_numpy().tolist(),
            "hovertemplate": f"{label} %{{y:.1%}} (%{{customdata[0]:,}} of %{{customdata[1]:,}})<extra></extra>"}


def shares_figure(table: pd.DataFrame) -> go.Figure:
    """Share of scored images referred, and share of all images refused by the gate, per week."""
    data = [_line(table, "referred_share", "referred", "scored", "referred (of scored)", COLOURS["referred"],
                  "referred"),
            _line(table, "refused_share", "refused", "images", "refused (of all images)", COLOURS["refused"],
                  "refused")]
    return _figure("Share referred and share refused", data,
                   {"yaxis": {"tickformat": ".0%", "rangemode": "tozero", "title": {"text": "share"}}})


def agreement_figure(table: pd.DataFrame) -> go.Figure:
    """Reviewer agreement with the model per week, with its Wilson 95% interval as a band."""
    weeks = _weeks(table)
    custom = [[int(a), int(n), low, high] for a, n, low, high in zip(
        table["agreements"], table["reviews"], _values(table["agreement_low"]), _values(table["agreement_high"]),
        strict=True)]
    data = [
        {"type": "scatter", "x": weeks, "y": _values(table["agreement_high"]), "mode": "lines",
         "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"},
        {"type": "scatter", "x": weeks, "y": _values(table["agreement_low"]), "mode": "lines",
         "line": {"width": 0}, "fill": "tonexty", "fillcolor": BAND, "name": "95% interval", "hoverinfo": "skip"},
        {"type": "scatter", "x": weeks, "y": _values(table["agreement"]), "mode": "lines+markers",
         "name": "agreement", "line": {"color": COLOURS["agreement"]}, "customdata": custom,
         "hovertemplate": "agreement %{y:.0%} (%{customdata[0]:,} of %{customdata[1]:,} reviews; "
                          "95% CI %{customdata[2]:.0%}–%{customdata[3]:.0%})<extra></extra>"},
    ]
    return _figure("Reviewer agreement with the model", data,
                   {"yaxis": {"tickformat": ".0%", "range": [0, 1.02], "title": {"text": "reviews agreeing"}}})


def psi_figure(table: pd.DataFrame) -> go.Figure:
    """Population stability index per week against the validation scores, with the 0.10 and 0.25 lines."""
    values = table["psi"].to_numpy(dtype=float)
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
    data = [{"type": "scatter", "x": _weeks(table), "y": _values(table["psi"]),
             "mode": "lines+markers", "name": "PSI", "line": {"color": COLOURS["psi"]}, "connectgaps": False,
             "hovertemplate": "PSI %{y:.3f}<extra></extra>"}]
    lines = [(PSI_MODERATE, "moved"), (PSI_MAJOR, "moved a lot")]
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
               "line": {"color": "#999999", "dash": "dash", "width": 1}} for y, _ in lines]
    notes = [{"xref": "paper", "x": 0, "y": y, "text": text, "showarrow": False, "xanchor": "left",
              "yanchor": "bottom", "font": {"color": "#777777", "size": 11}} for y, text in lines]
    return _figure("Score drift per week (PSI against validation)", data,
                   {"yaxis": {"range": [0, max(0.3, top * 1.15)], "title": {"text": "PSI"}}, "shapes": shapes,
                    "annotations": notes, "showlegend": False})


def histogram_figure(recent: np.ndarray, validation: np.ndarray, bins: int = 20) -> go.Figure:
    """Shares of recent scores and of validation scores in equal bins of [0, 1]."""
    shares = score_shares(recent, validation, bins)
    centres = ((shares["bin_start"] + shares["bin_end"]) / 2).tolist()
    data = [{"type": "bar", "x": centres, "y": shares[key].tolist(), "name": name, "width": 1 / bins,
             "marker": {"color": COLOURS[key]}, "opacity": 0.6, "hovertemplate": f"{key} %{{y:.1%}}<extra></extra>"}
            for key, name in (("validation", f"validation ({len(validation):,} images)"),
                              ("recent", f"last {RECENT_WEEKS} weeks recorded ({len(recent):,} images)"))]
    return _figure("Scores: recent weeks against validation", data,
                   {"barmode": "overlay", "hovermode": "x",
                    "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
                    "xaxis": {"title": {"text": "calibrated P(pneumonia)"}, "range": [0, 1]},
                    "yaxis": {"title": {"text": "share of images"}, "tickformat": ".0%"}}, weekly_axis=False)
