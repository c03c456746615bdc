"""Where the audit log lives and how long it keeps records, from configuration.

``PNEUMONIA_AUDIT_DB`` sets the log's path and ``PNEUMONIA_AUDIT_RETENTION_DAYS`` the retention
period (the dashboard also reads ``audit_db`` and ``audit_retention_days`` from Streamlit's
secrets). The default path is outside the repository, in the user's data folder.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

from core.audit.events import AuditError
from core.audit.store import MIN_RETENTION_DAYS

DB_ENV = "PNEUMONIA_AUDIT_DB"
RETENTION_ENV = "PNEUMONIA_AUDIT_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 365


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/pneumonia-triage/audit.sqlite3`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "pneumonia-triage" / "audit.sqlite3"


def db_path(configured: str | None = None) -> Path:
    """The log's path: ``configured`` (e.g. from secrets), else the environment, else the default."""
    value = (configured or "").strip() or os.environ.get(DB_ENV, "").strip()
    return Path(value).expanduser() if value else default_db_path()


def retention_days(configured: str | int | None = None) -> int:
    """The retention period in days (default 365); raises ``AuditError`` below the 183-day minimum."""
    value = configured if configured not in (None, "") else os.environ.get(RETENTION_ENV, "").strip()
    if value in (None, ""):
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(str(value))
    except ValueError:
        raise AuditError(f"the retention period must be a whole number of days, got {value!r}") from None
    if days < MIN_RETENTION_DAYS:
        raise AuditError(f"the retention period must be at least {MIN_RETENTION_DAYS} days, got {days}")
    return days


@cache
def app_version() -> str:
    """The package version, with ``git describe`` appended when running from a checkout."""
    try:
        version = metadata.version("pneumonia-triage")
    except metadata.PackageNotFoundError:
        version = "unknown"
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True,
                                       text=True, timeout=5, check=True).stdout.strip()
            if described:
                version = f"{version}+{described}"
        except (OSError, subprocess.SubprocessError):
            pass
    return version
