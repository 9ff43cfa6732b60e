"""The audit trail on a local root (the same create-only / compare-and-swap semantics as GCS)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remarketing import audit
from remarketing.audit import ZERO_HASH, AuditLog, AuditShipper, record_hash
from remarketing.errors import Conflict, ParameterError, StorageError
from remarketing.settings import Settings
from remarketing.storage import Storage, join


@pytest.fixture
def setup(tmp_path):
    storage, root = Storage(Settings(state_dir=tmp_path)), str(tmp_path / "artifacts")
    return storage, root


@pytest.fixture
def log(setup):
    return AuditLog(*setup)


def records_dir(log: AuditLog) -> Path:
    return Path(log.root) / "records"


def record_path(log: AuditLog, seq: int) -> Path:
    return records_dir(log) / f"{seq:012d}.json"


def head(log: AuditLog) -> dict:
    return json.loads((Path(log.root) / "head.json").read_text())


def fill(log: AuditLog, n: int) -> list[dict]:
    return [
        log.append(who=f"user-{i % 3}", action="score", result="ok", what={"run": f"r{i}"}) for i in range(n)
    ]


def rewrite(log: AuditLog, seq: int, **changes) -> None:
    path = record_path(log, seq)
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


# --- appending ---------------------------------------------------------------------------------------
def test_appends_chain_with_contiguous_seqs(log):
    written = fill(log, 5)
    assert [r["seq"] for r in written] == [1, 2, 3, 4, 5]
    assert written[0]["prev"] == ZERO_HASH
    for before, after in zip(written, written[1:], strict=False):
        assert after["prev"] == before["hash"]
    for r in written:
        assert r["hash"] == record_hash(r) and len(r["hash"]) == 64
    assert list(log.records()) == written  # what append returns is exactly what is stored
    assert head(log) == {"seq": 5, "hash": written[-1]["hash"]}
    assert sorted(p.name for p in records_dir(log).iterdir() if not p.name.startswith(".")) == [
        f"{s:012d}.json" for s in range(1, 6)
    ]


def test_a_record_holds_every_field(log):
    r = log.append(
        who="alice",
        role="analyst",
        action="lookup",
        what={"dataset": "bank", "at": datetime(2026, 1, 2, tzinfo=UTC), "ids": (1, 2)},
        customer="c0ffee",
        result="allowed",
    )
    assert set(r) == {"seq", "at", "who", "role", "action", "what", "customer", "result", "prev", "hash"}
    assert (r["who"], r["role"], r["action"], r["customer"], r["result"]) == (
        "alice",
        "analyst",
        "lookup",
        "c0ffee",
        "allowed",
    )
    assert r["what"] == {"dataset": "bank", "at": "2026-01-02 00:00:00+00:00", "ids": [1, 2]}
    at = datetime.fromisoformat(r["at"])
    assert at.tzinfo is not None and at.microsecond == 0
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=1)
    assert log.verify().ok


def test_append_refuses_an_empty_who_action_or_result(log):
    with pytest.raises(ParameterError, match="who must be a non-empty string"):
        log.append(who=" ", action="x", result="ok")
    assert list(log.records()) == []


# --- verify ------------------------------------------------------------------------------------------
def test_an_empty_log_verifies(log):
    assert log.verify() == audit.Verdict(ok=True, records=0, broken_seq=None, problem=None)


def test_an_intact_log_verifies(log):
    fill(log, 6)
    assert log.verify() == audit.Verdict(ok=True, records=6, broken_seq=None, problem=None)


def test_an_edited_record_is_named_changed(log):
    fill(log, 9)
    rewrite(log, 7, result="denied")
    v = log.verify()
    assert (v.ok, v.broken_seq, v.records) == (False, 7, 6)
    assert v.problem == "record 7 was changed (its hash does not match its content)"


def test_an_edited_record_with_its_hash_recomputed_breaks_the_next_link(log):
    fill(log, 9)
    path = record_path(log, 7)
    record = json.loads(path.read_text())
    record["who"] = "mallory"
    record["hash"] = record_hash(record)
    path.write_text(json.dumps(record))
    v = log.verify()
    assert (v.ok, v.broken_seq) == (False, 8)
    assert v.problem == "record 8 does not follow record 7 (its prev hash is not record 7's hash)"


def test_the_last_record_rewritten_with_its_hash_recomputed_is_caught_by_the_head(log):
    fill(log, 4)
    path = record_path(log, 4)
    record = json.loads(path.read_text())
    record["result"] = "denied"
    record["hash"] = record_hash(record)
    path.write_text(json.dumps(record))
    v = log.verify()
    assert (v.ok, v.broken_seq, v.records) == (False, 4, 4)
    assert v.problem == "record 4 was changed (its hash is not the one the head recorded for it)"


def test_an_edited_prev_is_named(log):
    fill(log, 9)
    path = record_path(log, 8)
    record = json.loads(path.read_text())
    record["prev"] = "f" * 64
    record["hash"] = record_hash(record)  # a consistent record that does not follow its predecessor
    path.write_text(json.dumps(record))
    v = log.verify()
    assert (v.ok, v.broken_seq) == (False, 8)
    assert v.problem == "record 8 does not follow record 7 (its prev hash is not record 7's hash)"


def test_an_edited_prev_without_a_new_hash_is_named_changed(log):
    fill(log, 9)
    rewrite(log, 8, prev="f" * 64)
    v = log.verify()
    assert (v.ok, v.broken_seq) == (False, 8)
    assert "record 8 was changed" in v.problem


def test_a_deleted_middle_record_is_named_missing(log):
    fill(log, 8)
    record_path(log, 5).unlink()
    v = log.verify()
    assert (v.ok, v.broken_seq, v.records) == (False, 5, 4)
    assert v.problem == "record 5 is missing (records 4 and 6 are there)"


def test_a_deleted_last_record_is_named_missing_through_the_head(log):
    fill(log, 12)
    record_path(log, 12).unlink()
    v = log.verify()
    assert (v.ok, v.broken_seq, v.records) == (False, 12, 11)
    assert v.problem == "record 12 is missing (the head says the log reaches 12)"


def test_a_log_that_does_not_start_at_1_is_missing_record_1(log):
    fill(log, 3)
    record_path(log, 1).unlink()
    v = log.verify()
    assert (v.ok, v.broken_seq, v.records) == (False, 1, 0)
    assert v.problem == "record 1 is missing (the log starts at record 2)"


def test_a_first_record_with_a_nonzero_prev_is_named(log):
    fill(log, 2)
    path = record_path(log, 1)
    record = json.loads(path.read_text())
    record["prev"] = "1" * 64
    record["hash"] = record_hash(record)
    path.write_text(json.dumps(record))
    v = log.verify()
    assert (v.ok, v.broken_seq) == (False, 1)
    assert v.problem == "record 1 does not start the chain (its prev hash is not 64 zeros)"


def test_a_record_that_is_not_json_is_named_changed(log):
    fill(log, 3)
    record_path(log, 2).write_text("{not json")
    v = log.verify()
    assert (v.ok, v.broken_seq) == (False, 2)
    assert v.problem == "record 2 was changed (it is not valid JSON)"


def test_a_record_whose_seq_differs_from_its_name_is_named_changed(log):
    written = fill(log, 3)
    path = record_path(log, 3)
    moved = dict(written[1])  # record 2, copied over record 3: self-consistent, wrong place
    path.write_text(json.dumps(moved))
    v = log.verify()
    assert (v.ok, v.broken_seq) == (False, 3)
    assert v.problem == "record 3 was changed (its seq field says 2)"


def test_a_damaged_head_fails_verify_without_blaming_a_record(log):
    fill(log, 3)
    (Path(log.root) / "head.json").write_text("[]")
    v = log.verify()
    assert (v.ok, v.broken_seq, v.records) == (False, None, 3)
    assert "the head" in v.problem and "was changed" in v.problem


def test_records_raise_at_a_damaged_record(log):
    fill(log, 2)
    record_path(log, 2).write_text("nope")
    with pytest.raises(Conflict, match="audit record 2 is damaged"):
        list(log.records())


# --- concurrency and a lagging head --------------------------------------------------------------------
def run_threads(logs: list[AuditLog], threads_per_log: int, each: int) -> None:
    barrier = threading.Barrier(len(logs) * threads_per_log)
    errors: list[BaseException] = []

    def work(lg: AuditLog, t: int) -> None:
        try:
            barrier.wait()
            for i in range(each):
                lg.append(who=f"t{t}", action="score", result="ok", what={"i": i})
        except BaseException as exc:  # surfaced below: a failing thread must fail the test
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(lg, n * threads_per_log + t))
        for n, lg in enumerate(logs)
        for t in range(threads_per_log)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def assert_complete(log: AuditLog, n: int) -> None:
    seqs = [r["seq"] for r in log.records()]
    assert seqs == list(range(1, n + 1))
    assert log.verify() == audit.Verdict(ok=True, records=n)
    assert head(log)["seq"] == n


def test_threads_of_one_log_append_every_record_once(log):
    run_threads([log], threads_per_log=8, each=10)
    assert_complete(log, 80)
    per_thread: dict[str, list[int]] = {}
    for r in log.records():
        per_thread.setdefault(r["who"], []).append(r["what"]["i"])
    assert sorted(per_thread) == sorted(f"t{t}" for t in range(8))
    assert all(v == list(range(10)) for v in per_thread.values())


def test_two_logs_racing_append_every_record_once(setup):
    logs = [AuditLog(*setup), AuditLog(*setup)]  # separate locks: they really race on storage
    run_threads(logs, threads_per_log=4, each=10)
    assert_complete(logs[0], 80)
    assert len({r["hash"] for r in logs[1].records()}) == 80


def test_a_record_beyond_the_head_is_followed(log):
    fill(log, 3)
    last = json.loads(record_path(log, 3).read_text())
    orphan = {
        "seq": 4,
        "at": "2026-01-01T00:00:00+00:00",
        "who": "ghost",
        "role": None,
        "action": "score",
        "what": {},
        "customer": None,
        "result": "ok",
        "prev": last["hash"],
    }
    orphan["hash"] = record_hash(orphan)
    record_path(log, 4).write_text(json.dumps(orphan))  # a writer died before moving the head
    assert head(log)["seq"] == 3

    r = log.append(who="alice", action="score", result="ok")
    assert (r["seq"], r["prev"]) == (5, orphan["hash"])
    assert head(log) == {"seq": 5, "hash": r["hash"]}
    assert log.verify() == audit.Verdict(ok=True, records=5)


def test_a_writer_that_dies_before_the_head_leaves_a_log_the_next_append_continues(setup, monkeypatch):
    first = AuditLog(*setup)
    fill(first, 2)
    monkeypatch.setattr(AuditLog, "_advance_head", lambda self, seq, digest: None)  # dies after its record
    dead = first.append(who="dying", action="score", result="ok")
    monkeypatch.undo()
    assert head(first)["seq"] == 2 and dead["seq"] == 3

    r = AuditLog(*setup).append(who="next", action="score", result="ok")
    assert (r["seq"], r["prev"]) == (4, dead["hash"])
    assert AuditLog(*setup).verify() == audit.Verdict(ok=True, records=4)


def test_a_missing_head_is_rebuilt_from_the_records(log):
    written = fill(log, 3)
    (Path(log.root) / "head.json").unlink()
    r = log.append(who="alice", action="score", result="ok")
    assert (r["seq"], r["prev"]) == (4, written[-1]["hash"])
    assert head(log) == {"seq": 4, "hash": r["hash"]}
    assert log.verify().ok


def test_the_head_never_moves_back(log):
    fill(log, 3)
    log._advance_head(2, "a" * 64)
    assert head(log)["seq"] == 3


# --- show --------------------------------------------------------------------------------------------
def test_show_filters_newest_first(log):
    log.append(who="alice", action="lookup", customer="h1", result="ok")  # 1
    log.append(who="bob", action="lookup", customer="h2", result="ok")  # 2
    log.append(who="alice", action="erase", customer="h1", result="ok")  # 3
    log.append(who="alice", action="lookup", customer="h2", result="denied")  # 4
    log.append(who="bob", action="promote", result="ok")  # 5

    def seqs(**kw):
        return [r["seq"] for r in log.show(**kw)]

    assert seqs() == [5, 4, 3, 2, 1]
    assert seqs(who="alice") == [4, 3, 1]
    assert seqs(action="lookup") == [4, 2, 1]
    assert seqs(customer="h1") == [3, 1]
    assert seqs(who="alice", action="lookup", customer="h2") == [4]
    assert seqs(who="nobody") == []
    assert seqs(limit=2) == [5, 4]
    assert seqs(who="alice", limit=1) == [4]
    assert seqs(limit=0) == []


def test_show_since(log):
    fill(log, 3)
    for seq, at in ((1, "2026-01-01T00:00:00+00:00"), (2, "2026-01-02T00:00:00+00:00")):
        path = record_path(log, seq)  # back-dated by hand (show does not verify)
        record = json.loads(path.read_text())
        record["at"] = at
        path.write_text(json.dumps(record))
    assert [r["seq"] for r in log.show(since=datetime(2026, 1, 2, tzinfo=UTC))] == [3, 2]
    assert [r["seq"] for r in log.show(since=datetime(2026, 1, 2))] == [3, 2]  # naive: UTC
    assert [r["seq"] for r in log.show(since=datetime.now(UTC) + timedelta(hours=1))] == []


def test_a_shipper_writes_queued_records_in_order_and_the_chain_stays_whole(tmp_path):
    storage = Storage(Settings(state_dir=tmp_path))
    root = str(tmp_path / "artifacts")
    shipper = AuditShipper(AuditLog(storage, root))
    cli = AuditLog(storage, root)
    for i in range(5):
        shipper.append_soon(who="api", action="lookup", result="200", what={"i": i})
    assert shipper.settle()
    cli.append(who="cli", action="key-created", result="ok")  # another writer between two batches
    shipper.append_soon(who="api", action="lookup", result="200", what={"i": 5})
    assert shipper.settle() and shipper.failing is None
    records = list(AuditLog(storage, root).records())
    assert [r["what"].get("i") for r in records] == [0, 1, 2, 3, 4, None, 5]
    assert json.loads(storage.read_text(join(root, "audit", "head.json")))["seq"] == 7
    verdict = AuditLog(storage, root).verify()
    assert verdict.ok and verdict.records == 7


def test_a_shipper_that_cannot_write_says_so_and_keeps_the_record(tmp_path, monkeypatch):
    storage = Storage(Settings(state_dir=tmp_path))
    log = AuditLog(storage, str(tmp_path / "artifacts"))
    written = threading.Event()
    real = log.append
    calls = []

    def flaky(**fields):
        calls.append(fields)
        if len(calls) == 1:
            raise StorageError("storage at there is unavailable")
        record = real(**fields)
        written.set()
        return record

    monkeypatch.setattr(log, "append", flaky)
    shipper = AuditShipper(log, retry_seconds=0.01)
    shipper.append_soon(who="api", action="download", result="200")
    assert written.wait(10) and shipper.settle()
    assert len(calls) == 2 and calls[0] == calls[1]  # the same record again, its time kept
    assert shipper.failing is None and [r["action"] for r in log.records()] == ["download"]
