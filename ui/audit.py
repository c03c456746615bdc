"""The app's side of the audit trail: the log (one per server), the session's context, the reviewer.

Records are written through :mod:`core.audit`; this module only finds the configured log,
says what is in force for the session (model, threshold, site profile) and who reviews.
When the log cannot be opened the app still triages, says so, and review is switched off:
a decision that cannot be recorded is not offered.
"""

from __future__ import annotations

import streamlit as st

from core.audit import AuditError, AuditLog, Context, Event, app_version, check_reviewer, db_path, score_event
from core.scoring import Outcome
from ui import state

DB_SECRET = "audit_db"
REVIEWER_KEY = "reviewer_initials"
REVIEWS_KEY = "reviews"  # score event id -> the latest review Event recorded in this session


def _secret(name: str) -> str | None:
    try:
        value = st.secrets.get(name)
    except Exception:  # noqa: BLE001 - without a secrets file (the usual case) Streamlit raises
        return None
    return str(value) if value else None


@st.cache_resource(show_spinner=False)
def _log(path: str) -> AuditLog:
    return AuditLog(path)


def audit_log() -> AuditLog | None:
    """The server's audit log, or ``None`` (with a warning on the page) when it cannot be opened."""
    try:
        return _log(str(db_path(_secret(DB_SECRET))))
    except AuditError as exc:
        st.warning(f"Results are not being recorded: {exc}. Reviews are switched off until the audit log "
                   "is available.", icon=":material/warning:")
        return None


def context(threshold: float) -> Context:
    """What is in force now: the model's SHA-256, the app version, ``threshold`` and the site profile."""
    info = state.model_info()
    profile = state.site_profile()
    return Context(model_sha256=info.metadata.sha256, app_version=app_version(), threshold=float(threshold),
                   site_profile_id=profile.profile_id if profile is not None else "")


def record_scores(outcomes: list[Outcome], threshold: float) -> list[Event]:
    """Log one record per outcome (one transaction); return the records ([] when the log is unavailable)."""
    log = audit_log()
    if log is None or not outcomes:
        return []
    ctx = context(threshold)
    events = [score_event(outcome, ctx) for outcome in outcomes]
    try:
        log.append(events)
    except Exception as exc:  # noqa: BLE001 - the triage result stays on screen whatever the log does
        st.warning(f"These results could not be recorded in the audit log ({type(exc).__name__}).",
                   icon=":material/warning:")
        return []
    return events


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file
        return False


def signed_in_identity() -> str | None:
    """The signed-in user's e-mail (or name) when Streamlit's OpenID Connect login is in use."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or st.user.get("name") or "") or None
    except Exception:  # noqa: BLE001 - st.user is unusable without authentication configured
        return None
    return None


def reviewer(key: str) -> str | None:
    """Who reviews: the signed-in user, else the initials typed once per session (asked for here)."""
    identity = signed_in_identity()
    if identity:
        st.caption(f"Reviewing as **{identity}** (signed in).")
        return identity
    if _auth_configured():
        st.button("Sign in to review", key=f"{key}_login", on_click=st.login, icon=":material/login:")
        return None
    initials = st.session_state.get(REVIEWER_KEY)
    if initials:
        st.caption(f"Reviewing as **{initials}**.")
        return initials
    typed = st.text_input("Your initials (once per session, recorded with each review)", max_chars=8,
                          key=f"{key}_initials_input", placeholder="e.g. AK")
    if typed:
        try:
            st.session_state[REVIEWER_KEY] = check_reviewer(typed)
        except AuditError as exc:
            st.error(str(exc))
            return None
        st.rerun()
    return None


def reviews() -> dict[str, Event]:
    """This session's latest review per case (score event id → review record)."""
    return st.session_state.setdefault(REVIEWS_KEY, {})
