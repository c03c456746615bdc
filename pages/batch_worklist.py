"""Batch triage: many X-rays (or ZIP archives) scored into a worklist, highest probability first."""

import dataclasses

import pandas as pd
import streamlit as st

from core.apps.dashboard import recompute_cam, triage_image
from core.errors import ImageError
from core.inputs.sources import iter_upload_sources
from ui import audit, review, routing, state, widgets
from ui.worklist import (
    REVIEW_FILTERS,
    filter_by_review,
    rank_entries,
    score_entries,
    worklist_counts,
    worklist_csv,
    worklist_frame,
)

routing.through_app()

info = state.model_info()
threshold = state.threshold(info)
calibration = state.calibration()  # a site profile's, or None for the model's shipped calibration

st.title("Batch worklist")
st.caption("Many X-rays at once, or ZIP archives of them. Every file appears on the worklist: scored, or listed "
           "with the reason it could not be. Files are held in memory for this session only.")


def _forget_when_emptied() -> None:
    # Removing every file clears the worklist; leaving the page (which also empties the box) does not.
    if not st.session_state.get("batch_upload"):
        st.session_state.pop("batch_cases", None)


uploads = st.file_uploader("X-rays or ZIP archives", type=widgets.BATCH_TYPES,
                           accept_multiple_files=True, key="batch_upload", on_change=_forget_when_emptied,
                           help=widgets.UPLOAD_HELP)
if st.session_state.get("batch_calibration", calibration) != calibration:
    # The operating point changed (a site profile loaded or dropped): old probabilities are on another scale.
    if st.session_state.pop("batch_cases", None) and not uploads:
        st.info("The operating point changed since the last worklist: upload the files again to rescore them.",
                icon=":material/info:")
    st.session_state.pop("batch_view", None)
st.session_state["batch_calibration"] = calibration
# Worklist entries per uploaded file, so adding files later scores only the new ones.
store: dict = st.session_state.setdefault("batch_cases", {})
if not uploads and not store:
    st.info("Upload images or ZIP archives to build a worklist.", icon=":material/upload:")
    st.stop()
model = state.dashboard_model()

if uploads:
    current_ids = [u.file_id for u in uploads]
    for file_id in list(store):
        if file_id not in current_ids:
            del store[file_id]
else:
    current_ids = list(store)
    st.caption("Showing this session's last worklist. Upload files to replace it.")
pending = [u for u in uploads or [] if u.file_id not in store]
if pending:
    expanded = {u.file_id: list(iter_upload_sources([(u.name, u.getvalue())])) for u in pending}
    total = sum(len(items) for items in expanded.values())
    bar = st.progress(0.0, text=f"Scoring 0 of {total} images…")
    done = 0
    for file_id, items in expanded.items():
        entries = []
        for entry in score_entries(model.bundle, items, calibration=calibration):
            entries.append(entry)
            done += 1
            bar.progress(done / total, text=f"Scoring {done} of {total} images…")
        # One audit record per image (hashes and figures only), written in one transaction per file.
        events = audit.record_scores([entry.outcome for entry in entries], threshold)
        store[file_id] = [dataclasses.replace(entry, event=event)
                          for entry, event in zip(entries, events or [None] * len(entries), strict=True)]
    bar.empty()

entries = [entry for file_id in current_ids for entry in store.get(file_id, [])]
reviews = audit.reviews()
frame = worklist_frame(entries, threshold, reviews)
counts = worklist_counts(frame)

c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Files", counts["total"])
c2.metric("Flagged for review", counts["flagged"])
c3.metric("Not flagged", counts["clear"])
c4.metric("Could not be scored", counts["failed"])
c5.metric("Reviewed", int((frame["review_decision"] != "").sum()),
          help="Cases with a reviewer's decision in this session")
st.caption(f"Decisions at threshold {threshold:.3f} (the threshold in force; see the sidebar).")

if counts["failed"]:
    st.warning(f"{counts['failed']} file(s) could not be scored. They stay at the end of the worklist with the "
               "reason; review those images yourself.", icon=":material/warning:")
    st.dataframe(frame.loc[frame["error"] != "", ["file", "error"]], hide_index=True, key="batch_failed",
                 column_config={"file": "File", "error": "Reason"})


FLAGGED_STYLE = "background-color: #fdecea; color: #8e1b10; font-weight: 600"
CLEAR_STYLE = "background-color: #e9f6ec; color: #1d5e2c"
NOT_SCORED_STYLE = "background-color: #fff4e0; color: #7a4b00"


def _row_style(row) -> list[str]:
    # Styled by status and decision, never by matching the displayed words.
    flagged = FLAGGED_STYLE if row["flagged"] else CLEAR_STYLE
    style = flagged if row["status"] == "scored" else NOT_SCORED_STYLE
    return [style if column == "decision" else "" for column in row.index]


def _select_from_table() -> None:
    rows = st.session_state["batch_table"].selection.rows
    if rows:
        st.session_state["batch_case"] = int(frame.iloc[rows[0]]["rank"])


st.subheader("Worklist")
st.caption("Click a row, or pick a case below, to see the image and where the model looked.")
warned = int(frame["quality_warning"].sum())
if warned and st.toggle(f"Only images with a quality warning ({warned})", key="batch_quality_only",
                        help="Accepted but degraded images (very noisy, heavily compressed, low resolution, strong "
                             "perspective corrected): their result needs a careful read."):
    frame = frame[frame["quality_warning"]].reset_index(drop=True)
reviewed = int((frame["review_decision"] != "").sum())
show = st.segmented_control("Review status", REVIEW_FILTERS, default="All", key="batch_review_filter",
                            help=f"{reviewed} of {len(frame)} cases reviewed in this session.")
frame = filter_by_review(frame, show or "All")
shown = frame.drop(columns=["reason_code", "quality_warning", "review_decision", "reviewer", "review_reason"])
st.dataframe(
    shown.style.apply(_row_style, axis=1),
    hide_index=True,
    key="batch_table",
    on_select=_select_from_table,
    selection_mode="single-row",
    row_height=72,
    height="auto" if len(shown) <= 7 else 640,
    column_config={
        "rank": st.column_config.NumberColumn("#", width="small"),
        "thumbnail": st.column_config.ImageColumn("X-ray", width="small"),
        "file": st.column_config.TextColumn("File", width="medium"),
        "probability": st.column_config.ProgressColumn("P(pneumonia)", min_value=0.0, max_value=1.0, format="%.3f"),
        "decision": st.column_config.TextColumn("Decision", width="medium"),
        "error": st.column_config.TextColumn("Reason not scored"),
        "note": st.column_config.TextColumn("Note", help="What was done to the image, and quality warnings"),
        "review": st.column_config.TextColumn("Review", help="The reviewer's decision in this session"),
        "flagged": None,
        "status": None,
    },
)
st.download_button("Download worklist (CSV)", worklist_csv(frame, threshold), file_name="pneumonia_worklist.csv",
                   mime="text/csv", icon=":material/download:")

st.subheader("Review a case")
labels = {
    int(row.rank): f"#{row.rank} · {row.file} · "
                   + ("not scored" if pd.isna(row.probability) else widgets.probability_text(row.probability))
    for row in frame.itertuples(index=False)
}
if not labels:
    st.info("No case matches this review filter.", icon=":material/filter_alt_off:")
    st.stop()
if st.session_state.get("batch_case") not in labels:
    st.session_state["batch_case"] = next(iter(labels))
rank = st.selectbox("Case", list(labels), format_func=labels.__getitem__, key="batch_case")
ranked = rank_entries(entries)  # the frame's ranks come from the same ordering
case = ranked[rank - 1].outcome


def _next_unreviewed() -> None:
    # After a decision, move to the next case nobody has reviewed yet in this session.
    done = audit.reviews()
    order = list(range(rank, len(ranked))) + list(range(rank - 1))
    for index in order:
        event = ranked[index].event
        if event is not None and event.event_id not in done and index + 1 in labels:
            st.session_state["batch_case"] = index + 1
            return


def _review_panel() -> None:
    st.markdown("**Your decision**")
    review.panel(ranked[rank - 1].event, threshold, key="batch_review", after=_next_unreviewed)


if not case.ok:
    st.warning(f"Not scored: {case.error}. Review this image yourself.", icon=":material/warning:")
    _review_panel()
    st.stop()

widgets.decision_banner(case.probability, threshold)
method, target, opacity = widgets.attention_controls("batch")
view_key = (id(case), case.name)
view = st.session_state.get("batch_view")
try:
    if view is None or view["key"] != view_key:
        view = {"key": view_key, "result": triage_image(model, case.data, method=method, target=target,
                                                           calibration=calibration), "cams": {}}
        view["cams"][(method, target)] = view["result"].cam
        st.session_state["batch_view"] = view
    elif (method, target) not in view["cams"]:
        view["cams"][(method, target)] = recompute_cam(model, view["result"], method, target).cam
except ImageError as exc:
    st.error(f"This image cannot be shown: {exc}.", icon=":material/error:")
    st.stop()
widgets.image_pair(view["result"].display, view["cams"][(method, target)], opacity, method, target)
_review_panel()
