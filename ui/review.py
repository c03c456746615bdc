"""The reviewer's decision on a case: agree with the model or override it, with an optional reason.

Shared by the single-image page and the batch worklist. A decision is recorded in the
audit log the moment its button is pressed (in the button's callback, so a rerun never
records it twice) and kept in the session to show on the worklist.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.audit import AuditError, Event, ReviewDecision, review_event
from ui import audit

LABELS = {
    ReviewDecision.AGREE: "Agree with the model",
    ReviewDecision.PNEUMONIA: "Override: pneumonia",
    ReviewDecision.NORMAL: "Override: no pneumonia",
    ReviewDecision.CANNOT_ASSESS: "Cannot assess",
}
STATUS_TEXT = {
    ReviewDecision.AGREE: "agreed",
    ReviewDecision.PNEUMONIA: "overridden → pneumonia",
    ReviewDecision.NORMAL: "overridden → no pneumonia",
    ReviewDecision.CANNOT_ASSESS: "cannot assess",
}


def choices(case: Event, threshold: float) -> list[ReviewDecision]:
    """The buttons a case gets: agree, or the override to the other call, and cannot assess."""
    if case.probability is None:  # nothing to agree with: the reviewer makes the call
        return [ReviewDecision.PNEUMONIA, ReviewDecision.NORMAL, ReviewDecision.CANNOT_ASSESS]
    other = ReviewDecision.NORMAL if case.probability >= threshold else ReviewDecision.PNEUMONIA
    return [ReviewDecision.AGREE, other, ReviewDecision.CANNOT_ASSESS]


def status_text(review: Event | None) -> str:
    """How a case's review reads on the worklist ("" when not reviewed)."""
    if review is None:
        return ""
    return f"{STATUS_TEXT[ReviewDecision(review.review_decision)]} ({review.reviewer})"


def _record(case: Event, threshold: float, reviewer: str, decision: ReviewDecision, reason_key: str,
            after: Callable[[], None] | None) -> None:
    log = audit.audit_log()
    if log is None:
        return
    try:
        event = review_event(case, audit.context(threshold), reviewer, decision,
                             st.session_state.get(reason_key, ""))
        log.append([event])
    except AuditError as exc:
        st.session_state["review_error"] = str(exc)
        return
    audit.reviews()[case.event_id] = event
    st.session_state[reason_key] = ""
    st.session_state["review_flash"] = f"Recorded: {STATUS_TEXT[decision]}."
    if after is not None:
        after()


def panel(case: Event | None, threshold: float, key: str, after: Callable[[], None] | None = None) -> None:
    """The review controls for ``case`` (a score record); ``after`` runs once a decision is recorded."""
    flash, error = st.session_state.pop("review_flash", None), st.session_state.pop("review_error", None)
    if error:
        st.error(f"The review was not recorded: {error}", icon=":material/error:")
    if flash:
        st.success(flash, icon=":material/task_alt:")
    if case is None:
        st.caption("Reviews are recorded in the audit log; it is not available, so reviewing is switched off.")
        return
    who = audit.reviewer(key)
    if who is None:
        return
    current = audit.reviews().get(case.event_id)
    if current is not None:
        st.caption(f"This case: {status_text(current)}. Another decision replaces it (both stay in the log).")
    st.text_input("Reason (optional; no names or patient details)", max_chars=200, key=f"{key}_reason",
                  placeholder="e.g. consolidation right lower zone; rotated film")
    columns = st.columns(3)
    for column, decision in zip(columns, choices(case, threshold), strict=True):
        column.button(LABELS[decision], key=f"{key}_{decision.value}", width="stretch",
                      type="primary" if decision is ReviewDecision.AGREE else "secondary",
                      on_click=_record, args=(case, threshold, who, decision, f"{key}_reason", after))
