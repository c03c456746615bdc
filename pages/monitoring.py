"""Monitoring: weekly volumes, referrals, refusals, reviewer agreement and score drift, from the audit log."""

from datetime import UTC, datetime
from functools import partial

import streamlit as st

from core.audit.export import export_csv, export_fhir
from ui import monitoring as view
from ui import routing, state
from ui.audit import audit_log

routing.through_app()

VERIFICATION_KEY = "monitoring_verification"  # (log path, checked at, Verification) of the last check

info = state.model_info()
st.title("Monitoring")
st.caption(view.INTRO)

log = audit_log()
if log is None:
    st.stop()
stamp = log.stamp()  # (records, last sequence number): the cache key of everything read below
if stamp[0] == 0:
    st.info(view.EMPTY.format(path=log.path), icon=":material/hourglass_empty:")
    st.stop()

validation, validation_key, validation_missing = view.validation_scores(info)
weeks = st.selectbox("Period", list(view.PERIODS), format_func=view.PERIODS.get,
                     index=list(view.PERIODS).index(view.DEFAULT_PERIOD), key="monitoring_period")
with st.spinner("Reading the audit log…"):
    summary = view.summary(log, stamp, weeks, validation, validation_key)
table = summary.table


def _figures() -> None:
    for column, (label, value, below, explanation) in zip(st.columns(4), view.headline(summary.totals),
                                                          strict=True):
        column.metric(label, value, below, delta_color="off", delta_arrow="off", help=explanation, border=True)

    level, text = view.drift_text(summary)
    if level in ("moved", "moved a lot"):
        st.warning(text, icon=":material/warning:")
    elif level == "stable":
        st.success(text, icon=":material/check_circle:")
    else:
        st.info(text, icon=":material/info:")

    left, right = st.columns(2)
    left.plotly_chart(view.volume_figure(table), key="monitoring_volume", config=view.CONFIG)
    right.plotly_chart(view.shares_figure(table), key="monitoring_shares", config=view.CONFIG)
    left, right = st.columns(2)
    if summary.totals.reviews:
        left.plotly_chart(view.agreement_figure(table), key="monitoring_agreement", config=view.CONFIG)
    else:
        left.caption("No reviews with a call were recorded in this period, so there is no agreement to show.")
    if validation is None:
        right.caption(f"Score drift cannot be measured: {validation_missing}.")
    else:
        right.plotly_chart(view.psi_figure(table), key="monitoring_psi", config=view.CONFIG)
        st.plotly_chart(view.histogram_figure(summary.recent, validation), key="monitoring_histogram",
                        config=view.CONFIG)
    st.caption(f"PSI (population stability index) compares the week's scores with the validation scores: below "
               f"{view.PSI_MODERATE:.2f} they look alike, above {view.PSI_MAJOR:.2f} they have moved a lot. Weeks "
               f"with fewer than {view.MIN_SCORES_FOR_DRIFT} scored images have no PSI. Agreement counts the reviews "
               "that kept the model's decision, out of those with a call.")
    if summary.profiled > 0:
        st.info(f"{view.pct(summary.profiled, 0)} of this period's scored images were recorded under a site "
                f"profile. {view.RECALIBRATION_NOTE}", icon=":material/location_on:")
    else:
        st.caption(view.RECALIBRATION_NOTE)


def _audit_log_section() -> None:
    st.subheader("The audit log")
    today = datetime.now(UTC).date()
    first = table["week"].min().date() if len(table) else today
    span = st.date_input("Records from and to (UTC dates, both included)", value=(min(first, today), today),
                         max_value=today, key="monitoring_export_range")
    left, right = st.columns(2)
    if isinstance(span, tuple | list) and len(span) == 2:
        start, end = span
        left.download_button("Download the records (CSV)", data=partial(export_csv, log, start, end),
                             file_name=f"audit_{start}_{end}.csv", mime="text/csv", key="monitoring_csv",
                             icon=":material/download:",
                             help="Every record in the range, with its hashes: no file names, no images.")
        right.download_button("Download the reviewed cases (FHIR R4 Bundle)",
                              data=partial(export_fhir, log, start, end), file_name=f"reviews_{start}_{end}.json",
                              mime="application/fhir+json", key="monitoring_fhir", icon=":material/download:",
                              help="One DiagnosticReport and its Observation per review in the range.")
    else:
        left.caption("Choose the last day of the range too.")

    if st.button("Verify the chain", key="monitoring_verify", icon=":material/verified:",
                 help="Recompute every record's hash: any record changed, removed or inserted breaks the chain."):
        with st.spinner("Checking every record…"):
            st.session_state[VERIFICATION_KEY] = (str(log.path), datetime.now(UTC), log.verify())
    checked = st.session_state.get(VERIFICATION_KEY)
    if checked is not None and checked[0] == str(log.path):
        _, at, result = checked
        when = f"(checked {at:%d %b %Y %H:%M} UTC)"
        if result.ok:
            st.success(f"**Chain intact:** {result.message} {when}.", icon=":material/verified:")
        else:
            st.error(f"**The chain is broken:** {result.message} ({result.records:,} records read) {when}. "
                     "Keep a copy of the file and report it.", icon=":material/gpp_bad:")


if table.empty:
    st.info(f"No images were scored or reviewed in this period ({view.PERIODS[weeks].lower()}).",
            icon=":material/hourglass_empty:")
else:
    _figures()
_audit_log_section()
