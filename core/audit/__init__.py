"""The audit trail: every scored image and every review, hash-chained, without patient data.

- :mod:`core.audit.events`: what a record holds (hashes and figures only);
- :mod:`core.audit.store`: the append-only SQLite log, its chain check and retention purge;
- :mod:`core.audit.config`: where the log lives and how long it keeps records;
- :mod:`core.audit.export`: CSV for a date range, FHIR R4 reports of reviewed cases;
- :mod:`core.audit.monitoring`: weekly figures and score drift for the monitoring page;
- ``python -m core.audit``: verify, export, FHIR, purge from the command line.
"""

from core.audit.config import app_version, db_path, retention_days
from core.audit.events import (
    AuditError,
    Context,
    Event,
    Kind,
    ReviewDecision,
    check_reviewer,
    final_call,
    review_event,
    score_event,
)
from core.audit.store import MIN_RETENTION_DAYS, AuditLog, Verification

__all__ = ["MIN_RETENTION_DAYS", "AuditError", "AuditLog", "Context", "Event", "Kind", "ReviewDecision",
           "Verification", "app_version", "check_reviewer", "db_path", "final_call", "retention_days",
           "review_event", "score_event"]
