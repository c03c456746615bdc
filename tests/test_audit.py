"""The audit log: chained records, tamper detection, concurrent writers, purge, exports, the command."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.audit import (
    AuditError,
    AuditLog,
    Context,
    Event,
    Kind,
    ReviewDecision,
    check_reviewer,
    final_call,
    review_event,
    score_event,
)
from core.audit.command import main as audit_main
from core.audit.config import db_path, retention_days
from core.audit.export import export_csv, export_fhir
from core.scoring.outcome import pixel_hash, refused, scored, unreadable

SHA = "ab" * 32


def context(threshold: float = 0.5) -> Context:
    return Context(model_sha256=SHA, app_version="test", threshold=threshold, site_profile_id="")


def gray(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (16, 12), dtype=np.uint8)


def some_events(n: int = 3) -> list[Event]:
    return [score_event(scored(f"file{i}.jpeg", 0.2 + 0.3 * i, gray=gray(i)), context()) for i in range(n)]


def tamper(path: Path, sql: str) -> None:
    """Change the file the way someone with write access could: drop the guards first."""
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_records_are_chained_and_verify(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    cases = some_events(3)
    hashes = log.append(cases)
    log.append([review_event(cases[2], context(), "AK", ReviewDecision.AGREE, "clear consolidation")])
    frame = log.events()
    assert list(frame["kind"]) == ["score", "score", "score", "review"]
    assert list(frame["hash"][:3]) == hashes
    assert list(frame["prev_hash"][1:]) == list(frame["hash"][:-1])
    assert log.verify().ok and log.verify().records == 4
    review = frame.iloc[3]
    assert review["case_event_id"] == cases[2].event_id and review["reviewer"] == "AK"
    assert review["decision"] == "PNEUMONIA" and review["pixel_sha256"] == pixel_hash(gray(2))


def test_score_records_hold_gate_outcomes_and_no_names(tmp_path: Path) -> None:
    ctx = context(0.5)
    events = [score_event(scored("Jane_Doe.jpeg", 0.7, gray=gray(1)), ctx),
              score_event(refused("John_Roe.png", "not_a_chest_xray", "not a chest X-ray", gray=gray(2)), ctx),
              score_event(unreadable("Baby_X.dcm", "corrupt image data"), ctx)]
    assert [(e.gate_outcome, e.decision, e.gate_code) for e in events] == [
        ("scored", "PNEUMONIA", ""), ("refused", "", "not_a_chest_xray"), ("unreadable", "", "unreadable")]
    assert events[1].probability is None and events[2].pixel_sha256 == ""
    log = AuditLog(tmp_path / "audit.sqlite3")
    log.append(events)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.sqlite3*"))  # with the WAL, if any
    for name in (b"Jane_Doe", b"John_Roe", b"Baby_X"):
        assert name not in raw


@pytest.mark.parametrize("change", [
    "UPDATE events SET probability = 0.01 WHERE seq = 2",
    "UPDATE events SET reviewer = 'XY' WHERE seq = 4",
    "DELETE FROM events WHERE seq = 2",
])
def test_tampering_breaks_the_chain(tmp_path: Path, change: str) -> None:
    path = tmp_path / "audit.sqlite3"
    log = AuditLog(path)
    cases = some_events(3)
    log.append(cases)
    log.append([review_event(cases[0], context(), "AK", "normal")])
    assert log.verify().ok
    tamper(path, change)
    result = log.verify()
    assert not result.ok and result.first_bad_seq in (2, 3, 4)
    assert audit_main(["verify", "--db", str(path)]) == 1


def test_cutting_the_oldest_records_without_a_purge_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    log = AuditLog(path)
    log.append(some_events(4))
    tamper(path, "DELETE FROM events WHERE seq <= 2")
    assert not log.verify().ok


def test_the_log_refuses_updates_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    AuditLog(path).append(some_events(2))
    conn = sqlite3.connect(path)
    for sql in ("UPDATE events SET probability = 0 WHERE seq = 1", "DELETE FROM events WHERE seq = 1"):
        with pytest.raises(sqlite3.DatabaseError, match="audit"):
            conn.execute(sql)
    conn.close()


def test_purge_keeps_the_minimum_and_logs_itself(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    old = datetime.now(UTC) - timedelta(days=400)
    stamp = old.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    aged = [Event(**{**e.payload(), "time_utc": stamp}) for e in some_events(3)]
    log.append(aged)
    log.append(some_events(2))
    with pytest.raises(AuditError, match="183"):
        log.purge(100)
    assert log.purge(365) == 3
    frame = log.events()
    assert list(frame["kind"]) == ["score", "score", "purge"]
    details = json.loads(frame.iloc[-1]["details"])
    assert details["deleted"] == 3 and details["retention_days"] == 365
    assert log.verify().ok
    assert log.purge(365) == 0 and log.verify().ok


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Six processes, each scoring and reviewing 20 cases at once: 240 records, one intact chain."""
    path = tmp_path / "audit.sqlite3"
    AuditLog(path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        pool.starmap(_review_session, [(str(path), worker) for worker in range(6)])
    log = AuditLog(path)
    frame = log.events()
    assert len(frame) == 240 and frame["event_id"].is_unique
    assert (frame["kind"] == "review").sum() == 120
    assert sorted(frame.loc[frame["kind"] == "review", "reviewer"].value_counts().to_list()) == [20] * 6
    assert log.verify().ok


def _review_session(path: str, worker: int) -> None:
    log = AuditLog(path)
    for case in range(20):
        event = score_event(scored("x", (case + 1) / 21, gray=gray(worker * 100 + case)), context())
        log.append([event])
        log.append([review_event(event, context(), f"R{worker}", "agree")])


def test_review_rules() -> None:
    case = some_events(1)[0]
    with pytest.raises(AuditError, match="reviewer"):
        review_event(case, context(), "  ", "agree")
    with pytest.raises(AuditError, match="unknown review decision"):
        review_event(case, context(), "AK", "maybe")
    with pytest.raises(AuditError, match="longer than"):
        review_event(case, context(), "AK", "normal", "x" * 500)
    not_scored = score_event(unreadable("a", "bad"), context())
    with pytest.raises(AuditError, match="nothing|no model decision"):
        review_event(not_scored, context(), "AK", "agree")
    assert review_event(not_scored, context(), "AK", "cannot_assess").probability is None
    assert check_reviewer("A\x00K\n") == "A K"
    assert final_call("agree", "NORMAL") == "NORMAL" and final_call("pneumonia", "NORMAL") == "PNEUMONIA"
    with pytest.raises(AuditError):
        Context(model_sha256="nope", app_version="x", threshold=0.5)


def test_csv_export_by_date_range(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    log.append([Event(**{**e.payload(), "time_utc": f"2026-03-0{i + 1}T10:00:00.000000Z"})
                for i, e in enumerate(some_events(3))])
    text = export_csv(log, "2026-03-02", "2026-03-03").decode()
    lines = text.strip().splitlines()
    assert lines[0].startswith("seq,kind,event_id,time_utc") and len(lines) == 3
    with pytest.raises(AuditError, match="before"):
        export_csv(log, "2026-03-03", "2026-03-01")
    with pytest.raises(AuditError, match="YYYY-MM-DD"):
        export_csv(log, "March", None)


def test_fhir_export_is_a_valid_r4_bundle(tmp_path: Path) -> None:
    from fhir.resources.R4B.bundle import Bundle

    log = AuditLog(tmp_path / "audit.sqlite3")
    cases = some_events(2)
    log.append(cases)
    log.append([review_event(cases[0], context(), "AK", "pneumonia", "right lower zone"),
                review_event(cases[1], context(), "AK", "agree")])
    bundle = json.loads(export_fhir(log))
    Bundle.model_validate(bundle)  # round-trips through the specification's model
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert [r["resourceType"] for r in resources] == ["DiagnosticReport", "Observation"] * 2
    report, observation = resources[0], resources[1]
    assert report["conclusionCode"][0]["coding"][0]["code"] == "pneumonia"
    assert "right lower zone" in report["conclusion"]
    assert report["result"][0]["reference"] == bundle["entry"][1]["fullUrl"]
    assert observation["valueQuantity"]["value"] == pytest.approx(cases[0].probability)
    assert resources[2]["conclusionCode"][0]["coding"][0]["code"] == "pneumonia"  # agreed with p=0.5 ≥ 0.5


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.sqlite3"
    assert audit_main(["verify", "--db", str(path)]) == 2  # no log yet
    log = AuditLog(path)
    cases = some_events(2)
    log.append(cases)
    log.append([review_event(cases[0], context(), "AK", "normal")])
    assert audit_main(["verify", "--db", str(path)]) == 0
    assert "3 records" in capsys.readouterr().out
    out = tmp_path / "log.csv"
    assert audit_main(["export", "--db", str(path), "--output", str(out)]) == 0
    assert len(out.read_text().strip().splitlines()) == 4
    fhir = tmp_path / "reviews.json"
    assert audit_main(["fhir", "--db", str(path), "--output", str(fhir)]) == 0
    assert json.loads(fhir.read_text())["resourceType"] == "Bundle"
    assert audit_main(["purge", "--db", str(path), "--retention-days", "30"]) == 2
    assert audit_main(["purge", "--db", str(path)]) == 0
    assert AuditLog(path).events()["kind"].iloc[-1] == Kind.PURGE
    assert audit_main(["frobnicate"]) == 2


def test_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PNEUMONIA_AUDIT_DB", str(tmp_path / "x.sqlite3"))
    assert db_path() == tmp_path / "x.sqlite3"
    monkeypatch.delenv("PNEUMONIA_AUDIT_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert db_path() == tmp_path / "pneumonia-triage" / "audit.sqlite3"
    monkeypatch.delenv("PNEUMONIA_AUDIT_RETENTION_DAYS", raising=False)
    assert retention_days() == 365
    monkeypatch.setenv("PNEUMONIA_AUDIT_RETENTION_DAYS", "200")
    assert retention_days() == 200
    with pytest.raises(AuditError, match="at least 183"):
        retention_days(90)


def test_an_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AuditError, match="cannot"):
        AuditLog(blocker / "sub" / "audit.sqlite3")
