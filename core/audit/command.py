"""``python -m core.audit``: check, export and purge the audit log.

    python -m core.audit verify [--db PATH]
    python -m core.audit export --output log.csv [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--db PATH]
    python -m core.audit fhir --output reviews.json [--start ...] [--end ...] [--db PATH]
    python -m core.audit purge [--retention-days N] [--db PATH]

The log's path comes from ``--db``, else ``PNEUMONIA_AUDIT_DB``, else the default in the
user's data folder. Exit status: 0 done (and, for verify, the chain is intact), 1 the chain
is broken, 2 usage or configuration errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.audit.config import db_path, retention_days
from core.audit.events import AuditError
from core.audit.store import AuditLog

EXIT_OK, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.audit", description="The triage audit log.")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check the hash chain")
    for name, what in (("export", "records as CSV"), ("fhir", "reviewed cases as a FHIR R4 Bundle (JSON)")):
        command = sub.add_parser(name, help=f"write the {what} for a date range")
        command.add_argument("--output", "-o", required=True)
        command.add_argument("--start", default=None, help="first day, YYYY-MM-DD (UTC), inclusive")
        command.add_argument("--end", default=None, help="last day, YYYY-MM-DD (UTC), inclusive")
    purge = sub.add_parser("purge", help="delete records past the retention period (the purge is logged)")
    purge.add_argument("--retention-days", default=None,
                       help="keep this many days (default: PNEUMONIA_AUDIT_RETENTION_DAYS, else 365; minimum 183)")
    for command in (verify, *sub.choices.values()):
        if "--db" not in command._option_string_actions:
            command.add_argument("--db", default=None, help="the log's path (default: configuration)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        path = db_path(args.db)
        if args.command != "purge" and not path.exists():
            raise AuditError(f"there is no audit log at the configured path ({path})")
        log = AuditLog(path)
        if args.command == "verify":
            result = log.verify()
            print(("OK: " if result.ok else "BROKEN: ") + result.message)
            return EXIT_OK if result.ok else EXIT_BROKEN
        if args.command in ("export", "fhir"):
            from core.audit.export import export_csv, export_fhir

            data = (export_csv if args.command == "export" else export_fhir)(log, args.start, args.end)
            Path(args.output).write_bytes(data)
            print(f"wrote {args.output}")
            return EXIT_OK
        days = retention_days(args.retention_days)
        deleted = log.purge(days)
        print(f"purged {deleted} record(s) older than {days} days; the purge itself is logged")
        return EXIT_OK
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
