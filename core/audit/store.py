"""The append-only, hash-chained audit log in SQLite (WAL mode, standard library only).

Each record stores the SHA-256 of the previous record's hash and its own fields, so
editing, inserting or deleting a record anywhere breaks the chain and :meth:`AuditLog.verify`
says where. Appends take SQLite's write lock (``BEGIN IMMEDIATE``) before reading the last
hash, so concurrent sessions and processes serialise instead of forking the chain, and a
busy timeout makes them wait rather than lose a write. Triggers refuse UPDATE always and
DELETE outside :meth:`AuditLog.purge` (a guard against accidents; the chain is what detects
tampering).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from core.audit.events import GENESIS, AuditError, Event, Kind, purge_event

MIN_RETENTION_DAYS = 183  # six months: the EU AI Act's minimum for high-risk systems' logs (Art. 19/26)
BUSY_TIMEOUT_S = 60.0
_COLUMNS = Event.columns()
_REAL = {"threshold", "probability"}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    {", ".join(f"{c} {'REAL' if c in _REAL else 'TEXT'}" for c in _COLUMNS)},
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events(event_id);
CREATE INDEX IF NOT EXISTS events_time ON events(time_utc);
CREATE TABLE IF NOT EXISTS control (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO control VALUES ('purging', '0');
INSERT OR IGNORE INTO control VALUES ('anchor', '{GENESIS}');
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
WHEN (SELECT value FROM control WHERE key = 'purging') != '1'
BEGIN SELECT RAISE(ABORT, 'audit records are deleted only by a logged purge'); END;
"""


def record_hash(prev_hash: str, payload: dict) -> str:
    """SHA-256 of the previous hash and the record's fields (canonical JSON)."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Verification:
    """The result of checking a log's hash chain."""

    ok: bool
    records: int
    message: str
    first_bad_seq: int | None = None


def _payload(row: sqlite3.Row) -> dict:
    return {c: row[c] for c in _COLUMNS}


class AuditLog:
    """An audit log file. Every call opens its own connection, so one object serves every
    thread of a server and several processes can share the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            # An idle connection held for the object's life: when the last connection to a WAL
            # database closes, SQLite checkpoints and syncs the file, ~10 ms per record if every
            # append were the last. With this one open, appends cost a commit only (~1 ms) and
            # checkpoints happen automatically as the WAL grows. It never writes.
            self._keeper = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            self._keeper.execute("SELECT COUNT(*) FROM control").fetchone()
        except sqlite3.Error as exc:
            raise AuditError(f"the audit log cannot be opened at its configured path ({exc})") from exc
        except OSError as exc:
            raise AuditError(f"the audit log's folder cannot be created ({exc.strerror})") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            # WAL with synchronous=NORMAL: a commit is durable against a crash of the app,
            # and costs no fsync per record (the WAL is synced at checkpoints).
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    def append(self, events: Iterable[Event]) -> list[str]:
        """Chain and write ``events`` in one transaction; return their hashes. All or nothing."""
        events = list(events)
        if not events:
            return []
        for event in events:
            if not isinstance(event, Event) or event.kind not in set(Kind):
                raise AuditError("only audit events can be appended")
        placeholders = ", ".join("?" * (len(_COLUMNS) + 2))
        sql = f"INSERT INTO events ({', '.join(_COLUMNS)}, prev_hash, hash) VALUES ({placeholders})"
        hashes = []
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # the write lock, before reading the chain's end
            try:
                row = conn.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
                prev = row["hash"] if row else conn.execute(
                    "SELECT value FROM control WHERE key = 'anchor'").fetchone()["value"]
                rows = []
                for event in events:
                    payload = event.payload()
                    digest = record_hash(prev, payload)
                    rows.append([payload[c] for c in _COLUMNS] + [prev, digest])
                    hashes.append(digest)
                    prev = digest
                conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return hashes

    def verify(self) -> Verification:
        """Recompute the chain from its anchor; report the first record that does not match."""
        with self._connect() as conn:
            conn.execute("BEGIN")  # one consistent snapshot while concurrent writers go on
            anchor = conn.execute("SELECT value FROM control WHERE key = 'anchor'").fetchone()["value"]
            prev, count, last_purge_anchor = anchor, 0, GENESIS
            for row in conn.execute("SELECT * FROM events ORDER BY seq"):
                count += 1
                if row["prev_hash"] != prev or record_hash(prev, _payload(row)) != row["hash"]:
                    conn.execute("ROLLBACK")
                    return Verification(False, count, f"the chain breaks at record {row['seq']}: it was changed, "
                                                       "or a record before it was removed or inserted",
                                        first_bad_seq=row["seq"])
                if row["kind"] == Kind.PURGE:
                    last_purge_anchor = json.loads(row["details"])["anchor"]
                prev = row["hash"]
            conn.execute("ROLLBACK")
        # Deleting the oldest records and moving the anchor is only legitimate when a logged purge says so.
        if anchor != last_purge_anchor:
            return Verification(False, count, "the log's start was cut without a logged purge")
        return Verification(True, count, f"{count} records, chain intact")

    def purge(self, retention_days: int, now: datetime | None = None) -> int:
        """Delete records older than ``retention_days`` (≥ 183) and log the purge; return how many went."""
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise AuditError("retention_days must be a whole number of days")
        if retention_days < MIN_RETENTION_DAYS:
            raise AuditError(f"records are kept at least {MIN_RETENTION_DAYS} days (six months); "
                             f"got {retention_days}")
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                old = conn.execute("SELECT seq, hash FROM events WHERE time_utc < ? ORDER BY seq DESC LIMIT 1",
                                   (cutoff,)).fetchone()
                deleted, anchor = 0, conn.execute("SELECT value FROM control WHERE key = 'anchor'").fetchone()[0]
                if old is not None:
                    # Everything up to the newest old record goes, so the remaining chain has one start.
                    conn.execute("UPDATE control SET value = '1' WHERE key = 'purging'")
                    deleted = conn.execute("DELETE FROM events WHERE seq <= ?", (old["seq"],)).rowcount
                    conn.execute("UPDATE control SET value = '0' WHERE key = 'purging'")
                    anchor = old["hash"]
                    conn.execute("UPDATE control SET value = ? WHERE key = 'anchor'", (anchor,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.append([purge_event(cutoff, deleted, anchor, retention_days)])
        return deleted

    def events(self, start: str | None = None, end: str | None = None, columns: tuple[str, ...] | None = None,
               after_seq: int = 0, upto_seq: int | None = None) -> pd.DataFrame:
        """Records with ``start <= time_utc < end`` (ISO dates or times) and ``after_seq < seq <= upto_seq``,
        in order; every bound may be left out. The sequence bounds let a reader that has read the
        log up to a record read only what was appended since.
        """
        wanted = ("seq",) + (columns or _COLUMNS + ("prev_hash", "hash"))
        unknown = set(wanted) - set(("seq",) + _COLUMNS + ("prev_hash", "hash"))
        if unknown:
            raise AuditError(f"unknown audit columns: {sorted(unknown)}")
        where, args = ["seq > ?"], [int(after_seq)]
        for clause, value in (("time_utc >= ?", start), ("time_utc < ?", end),
                              ("seq <= ?", None if upto_seq is None else int(upto_seq))):
            if value not in (None, ""):
                where.append(clause)
                args.append(value)
        sql = f"SELECT {', '.join(wanted)} FROM events WHERE {' AND '.join(where)} ORDER BY seq"
        with self._connect() as conn:
            conn.row_factory = None  # plain tuples: pandas converts sqlite3.Row objects a third slower
            return pd.read_sql_query(sql, conn, params=args)

    def stamp(self) -> tuple[int, int]:
        """(record count, last sequence number): changes whenever the log does (for caching)."""
        with self._connect() as conn:
            row = conn.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0]), int(row[1])
