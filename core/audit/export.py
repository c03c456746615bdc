"""Exports of the audit log: CSV for a date range, and reviewed cases as FHIR R4 reports.

FHIR resources are built with the ``fhir.resources`` package (its R4B models: R4B is the
R4 technical correction, and DiagnosticReport and Observation are the same as in R4.0.1),
so every exported resource is validated against the specification's model on the way out.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import date, datetime, timedelta

import pandas as pd

from core.audit.events import AuditError, Kind, final_call
from core.audit.store import AuditLog

SYSTEM = "urn:pneumonia-triage"  # the code system and identifier namespace of this tool
_CALLS = {
    "PNEUMONIA": ("pneumonia", "Pneumonia suspected: refer"),
    "NORMAL": ("no-pneumonia", "No pneumonia suspected"),
    "CANNOT_ASSESS": ("cannot-assess", "Film cannot be assessed"),
}


def date_range(start: str | date | None, end: str | date | None) -> tuple[str | None, str | None]:
    """ISO bounds for ``start <= time < end + 1 day`` (``end`` is inclusive); raises on a bad date."""
    def parse(value: str | date | None) -> date | None:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise AuditError(f"dates are written YYYY-MM-DD, got {value!r}") from None

    first, last = parse(start), parse(end)
    if first and last and last < first:
        raise AuditError("the end date is before the start date")
    return (first.isoformat() if first else None,
            (last + timedelta(days=1)).isoformat() if last else None)


def export_csv(log: AuditLog, start: str | date | None = None, end: str | date | None = None) -> bytes:
    """Every record from ``start`` to ``end`` (inclusive dates, UTC) as UTF-8 CSV, hashes included."""
    lower, upper = date_range(start, end)
    frame = log.events(lower, upper)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def _coding(code: str, display: str) -> dict:
    return {"coding": [{"system": SYSTEM, "code": code, "display": display}], "text": display}


def review_bundle(reviews: pd.DataFrame) -> dict:
    """A FHIR R4 ``Bundle`` (collection) with one DiagnosticReport and its Observation per review.

    The Observation carries the model's calibrated probability, its decision and the
    threshold; the report's conclusion is the reviewer's call. The image is identified only
    by the SHA-256 of its decoded pixels (the site links it to the patient in its own system).
    """
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    from fhir.resources.R4B.observation import Observation

    entries = []
    for row in reviews.itertuples(index=False):
        if row.kind != Kind.REVIEW:
            raise AuditError("only review records become FHIR reports")
        call = final_call(row.review_decision, row.decision or "")
        code, display = _CALLS.get(call, _CALLS["CANNOT_ASSESS"])
        issued = row.time_utc.replace("Z", "+00:00")
        observation_id = f"obs-{row.event_id}"
        # Bundle entries are named by URN UUIDs: the report's is its event id, the observation's derived from it.
        report_urn = f"urn:uuid:{uuid.UUID(hex=row.event_id)}"
        observation_urn = f"urn:uuid:{uuid.uuid5(uuid.UUID(hex=row.event_id), 'observation')}"
        components = [{"code": _coding("model-decision", "Model decision at the threshold in force"),
                       "valueString": row.decision or "not scored"},
                      {"code": _coding("threshold", "Operating threshold"), "valueQuantity": {"value": row.threshold}},
                      {"code": _coding("reviewer-decision", "Reviewer decision"), "valueString": row.review_decision}]
        observation = Observation(
            id=observation_id, status="final",
            category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                   "code": "imaging", "display": "Imaging"}]}],
            code=_coding("pneumonia-probability", "Probability of pneumonia on a chest X-ray (model)"),
            effectiveDateTime=issued, issued=issued,
            valueQuantity=({"value": round(float(row.probability), 6), "unit": "probability"}
                           if pd.notna(row.probability) else None),
            dataAbsentReason=(None if pd.notna(row.probability) else
                              {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                           "code": "error", "display": "Error"}],
                               "text": f"not scored ({row.gate_outcome})"}),
            device={"display": f"pneumonia-triage {row.app_version}, model sha256 {row.model_sha256}"},
            component=components,
        )
        report = DiagnosticReport(
            id=f"report-{row.event_id}", status="final",
            identifier=[{"system": f"{SYSTEM}:event-id", "value": row.event_id},
                        {"system": f"{SYSTEM}:pixel-sha256", "value": row.pixel_sha256 or "none"}],
            category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                                   "display": "Radiology"}]}],
            code=_coding("pneumonia-triage", "Chest X-ray pneumonia triage, computer-aided, reviewed"),
            effectiveDateTime=issued, issued=issued,
            resultsInterpreter=[{"display": f"reviewer {row.reviewer}"}],
            result=[{"reference": observation_urn}],
            conclusion=display + (f" ({row.review_reason})" if row.review_reason else ""),
            conclusionCode=[_coding(code, display)],
        )
        entries += [{"fullUrl": report_urn, "resource": report}, {"fullUrl": observation_urn, "resource": observation}]
    bundle = Bundle(type="collection", timestamp=datetime.now().astimezone().isoformat(), entry=entries)
    return json.loads(bundle.model_dump_json(exclude_none=True))


def export_fhir(log: AuditLog, start: str | date | None = None, end: str | date | None = None) -> bytes:
    """The reviews from ``start`` to ``end`` (inclusive dates, UTC) as a FHIR R4 Bundle in JSON."""
    lower, upper = date_range(start, end)
    frame = log.events(lower, upper)
    return json.dumps(review_bundle(frame[frame["kind"] == Kind.REVIEW]), indent=2).encode("utf-8")
