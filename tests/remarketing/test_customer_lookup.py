"""The per-customer lookup: what a run wrote is found by id, whole runs at a time, and nothing else."""

import math
import sqlite3

import pandas as pd
import pytest

from remarketing.customer_lookup import CustomerLookup, LookupWriter
from remarketing.errors import DataValidationError, StorageError


def scored(ids, *, probability=0.5, version="7", **detail):
    n = len(ids)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "probability": [probability + i / 1000 for i in range(n)],
            "rank": list(range(1, n + 1)),
            "group": ["call" if i % 2 == 0 else "hold-out" for i in range(n)],
            "model_version": [version] * n,
            **{k: v if isinstance(v, list) else [v] * n for k, v in detail.items()},
        }
    )


def write(path, run_id, scored_at, *chunks, dataset="bank", keep_runs=8, version="7"):
    with LookupWriter(
        path, dataset=dataset, run_id=run_id, scored_at=scored_at, model_version=version, keep_runs=keep_runs
    ) as writer:
        for chunk in chunks:
            writer.add(chunk)


def count(path, table):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_latest_is_the_newer_run_with_its_detail(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.2, reason_1="age"))
    newer = scored(["C1", "C2"], probability=0.6, version="8", reason_1="balance", contribution=0.125)
    newer.loc[1, "model_version"] = "9"  # the challenger's arm: its own version
    write(db, "run-2", "2024-01-08T06:00:00+00:00", newer.iloc[:1], newer.iloc[1:])

    lookup = CustomerLookup(db)
    assert lookup.latest("bank", "C1") == {
        "dataset": "bank",
        "customer_id": "C1",
        "run_id": "run-2",
        "scored_at": "2024-01-08T06:00:00+00:00",
        "model_version": "8",
        "probability": 0.6,
        "rank": 1,
        "group": "call",
        "detail": {"reason_1": "balance", "contribution": 0.125},
    }
    second = lookup.latest("bank", "C2")
    assert (second["model_version"], second["probability"], second["rank"], second["group"]) == (
        "9",
        0.601,
        2,
        "hold-out",
    )
    assert lookup.customers("bank") == 2


def test_history_is_newest_first_and_in_time_order_not_writing_order(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-b", "2024-01-08T06:00:00+00:00", scored(["C1"], probability=0.6))
    write(db, "run-a", "2024-01-01T06:00:00+00:00", scored(["C1", "C2", "C3"], probability=0.2))  # backfill

    lookup = CustomerLookup(db)
    assert lookup.history("bank", "C1") == [
        {"run_id": "run-b", "scored_at": "2024-01-08T06:00:00+00:00", "model_version": "7",
         "probability": 0.6, "rank": 1, "group": "call"},
        {"run_id": "run-a", "scored_at": "2024-01-01T06:00:00+00:00", "model_version": "7",
         "probability": 0.2, "rank": 1, "group": "call"},
    ]  # fmt: skip
    assert [h["run_id"] for h in lookup.history("bank", "C1", limit=1)] == ["run-b"]
    assert lookup.latest("bank", "C1")["run_id"] == "run-b"
    assert lookup.latest("bank", "C3")["run_id"] == "run-a"  # the newest run that holds the customer
    assert lookup.customers("bank") == 1  # the newest run's


def test_runs_are_ordered_by_the_instant_whatever_the_zone(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "utc", "2024-01-07T23:00:00Z", scored(["C1"]))
    write(db, "plus-two", "2024-01-08T00:30:00+02:00", scored(["C1"]))  # 22:30 UTC: the earlier one
    assert [h["run_id"] for h in CustomerLookup(db).history("bank", "C1")] == ["utc", "plus-two"]


def test_an_unknown_id_or_dataset_is_nothing(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    lookup = CustomerLookup(db)
    assert lookup.latest("bank", "C404") is None
    assert lookup.history("bank", "C404") == []
    assert lookup.latest("other", "C1") is None
    assert lookup.history("other", "C1") == []
    assert lookup.customers("other") == 0


def test_a_missing_database_means_nothing_scored_yet(tmp_path):
    db = tmp_path / "state" / "lookup.sqlite"
    lookup = CustomerLookup(db)
    assert lookup.latest("bank", "C1") is None
    assert lookup.history("bank", "C1") == []
    assert lookup.customers("bank") == 0
    assert not db.exists()  # reading creates nothing
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    assert lookup.latest("bank", "C1")["run_id"] == "run-1"  # the same reader, once there is a file


HOSTILE_IDS = [
    "'; DROP TABLE scores; --",
    '" OR 1=1 --',
    "../../etc/passwd",
    "a/b\\c;d",
    "C%",
    "C_1",
    "x" * 10_000,
    "Müller-Łódź-東京-🙂",
    " padded ",
]


def test_hostile_ids_are_plain_data(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(HOSTILE_IDS, note="first"))
    write(db, "run-2", "2024-01-08T06:00:00+00:00", scored(HOSTILE_IDS, note=HOSTILE_IDS))

    lookup = CustomerLookup(db)
    for rank, customer in enumerate(HOSTILE_IDS, start=1):
        found = lookup.latest("bank", customer)
        assert found is not None, customer[:40]
        assert (found["customer_id"], found["rank"], found["detail"]) == (customer, rank, {"note": customer})
        assert [h["rank"] for h in lookup.history("bank", customer)] == [rank, rank]
    assert lookup.latest("bank", "x" * 9_999) is None  # exact, not a prefix
    assert lookup.latest("bank", "C10") is None  # "C%" and "C_1" are no patterns
    assert lookup.latest("bank", "padded") is None
    with sqlite3.connect(db) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        stored = sorted(i for (i,) in conn.execute("SELECT customer_id FROM scores"))
    assert tables == {"runs", "scores"}
    assert stored == sorted(HOSTILE_IDS * 2)


def test_detail_keeps_line_breaks_missing_values_and_precision(tmp_path):
    db = tmp_path / "lookup.sqlite"
    chunk = scored(["C1", "C2", "C3"], reason_1=["two\nlines", "sep\u2028arated\r", "tab\tand \x1c"])
    chunk["contribution"] = [0.1234567890123, math.nan, -2.5]
    chunk["age"] = [41, 52, 63]
    write(db, "run-1", "2024-01-01T06:00:00+00:00", chunk)

    lookup = CustomerLookup(db)
    assert lookup.latest("bank", "C1")["detail"] == {
        "reason_1": "two\nlines",
        "contribution": 0.1234567890123,
        "age": 41,
    }
    assert lookup.latest("bank", "C2")["detail"] == {
        "reason_1": "sep\u2028arated\r",
        "contribution": None,
        "age": 52,
    }
    assert lookup.latest("bank", "C3")["detail"] == {
        "reason_1": "tab\tand \x1c",
        "contribution": -2.5,
        "age": 63,
    }
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT fields FROM runs").fetchone()[0] == '["reason_1","contribution","age"]'


def test_detail_of_every_chunk_is_named_by_the_runs_fields(tmp_path):
    db = tmp_path / "lookup.sqlite"
    first = scored(["C1"], reason_1="age", seen=pd.Timestamp("2024-01-02T03:04:05"))
    first["calls"] = pd.array([3], dtype="Int64")
    second = scored(["C2"], reason_1="loan", seen=pd.NaT)
    second["calls"] = pd.array([None], dtype="Int64")
    write(db, "run-1", "2024-01-01T06:00:00+00:00", first, second[["calls", *second.columns[:-1]]])

    lookup = CustomerLookup(db)
    assert lookup.latest("bank", "C1")["detail"] == {
        "reason_1": "age",
        "seen": "2024-01-02T03:04:05",
        "calls": 3,
    }
    assert lookup.latest("bank", "C2")["detail"] == {"reason_1": "loan", "seen": None, "calls": None}
    with pytest.raises(DataValidationError, match="detail columns"):
        write(db, "run-2", "2024-01-08T06:00:00+00:00", first, second.drop(columns="calls"))
    assert lookup.latest("bank", "C1")["run_id"] == "run-1"


def test_a_chunk_without_model_version_takes_the_runs(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(
        db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]).drop(columns="model_version"), version="12"
    )
    assert CustomerLookup(db).latest("bank", "C1")["model_version"] == "12"


def test_retention_keeps_the_newest_runs_of_the_dataset(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "other-1", "2023-06-01T06:00:00+00:00", scored(["C1", "C2"]), dataset="other", keep_runs=3)
    for week in range(1, 6):
        write(db, f"run-{week}", f"2024-01-0{week}T06:00:00+00:00", scored(["C1", "C2"]), keep_runs=3)

    lookup = CustomerLookup(db)
    assert [h["run_id"] for h in lookup.history("bank", "C2")] == ["run-5", "run-4", "run-3"]
    assert lookup.history("other", "C2")[0]["run_id"] == "other-1"  # another dataset's runs are its own
    assert count(db, "runs") == 4
    assert count(db, "scores") == 8

    write(db, "backfill", "2023-12-01T06:00:00+00:00", scored(["C1", "C9"]), keep_runs=3)  # older than all
    assert lookup.latest("bank", "C9") is None
    assert (count(db, "runs"), count(db, "scores")) == (4, 8)


def test_writing_a_run_again_replaces_its_rows(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2", "C3"], probability=0.2))
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2", "C3"], probability=0.7))
    assert count(db, "scores") == 3
    assert count(db, "runs") == 1
    lookup = CustomerLookup(db)
    assert [h["probability"] for h in lookup.history("bank", "C1")] == [0.7]

    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.9))
    assert count(db, "scores") == 2
    assert lookup.latest("bank", "C3") is None  # the retry's rows only
    assert lookup.customers("bank") == 2


def test_an_exception_in_the_writer_leaves_the_previous_state(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.2))
    with pytest.raises(RuntimeError, match="scoring broke"):
        with LookupWriter(
            db, dataset="bank", run_id="run-2", scored_at="2024-01-08", model_version="7", keep_runs=1
        ) as w:  # would retire run-1
            w.add(scored(["C1", "C2", "C3"], probability=0.9))
            raise RuntimeError("scoring broke")

    lookup = CustomerLookup(db)
    assert [h["run_id"] for h in lookup.history("bank", "C1")] == ["run-1"]
    assert lookup.latest("bank", "C1")["probability"] == 0.2
    assert lookup.latest("bank", "C3") is None
    assert (count(db, "runs"), count(db, "scores")) == (1, 2)


def test_a_failed_first_run_leaves_nothing_scored(tmp_path):
    db = tmp_path / "lookup.sqlite"
    with pytest.raises(RuntimeError):
        with LookupWriter(db, dataset="bank", run_id="run-1", scored_at="2024-01-01", model_version="7") as w:
            w.add(scored(["C1"]))
            raise RuntimeError("scoring broke")
    lookup = CustomerLookup(db)
    assert lookup.latest("bank", "C1") is None
    assert lookup.customers("bank") == 0


def test_a_customer_twice_in_a_run_fails_the_run(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"], probability=0.2))
    with pytest.raises(DataValidationError, match="more than once"):
        write(db, "run-2", "2024-01-08T06:00:00+00:00", scored(["C1", "C2"]), scored(["C3", "C2"]))
    assert [h["run_id"] for h in CustomerLookup(db).history("bank", "C2")] == []
    assert (count(db, "runs"), count(db, "scores")) == (1, 1)


def test_a_run_whose_failed_chunk_was_caught_is_not_committed(tmp_path):
    db = tmp_path / "lookup.sqlite"
    with pytest.raises(StorageError, match="not written"):
        with LookupWriter(db, dataset="bank", run_id="run-1", scored_at="2024-01-01", model_version="7") as w:
            w.add(scored(["C1"]))
            with pytest.raises(DataValidationError):
                w.add(scored(["C1"]))
    assert CustomerLookup(db).latest("bank", "C1") is None


def test_a_chunk_without_a_required_column_is_refused(tmp_path):
    with pytest.raises(DataValidationError, match="'rank'"):
        write(tmp_path / "lookup.sqlite", "run-1", "2024-01-01", scored(["C1"]).drop(columns="rank"))


def test_readers_see_the_old_state_until_the_writer_commits(tmp_path):
    db = tmp_path / "lookup.sqlite"
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.2))
    reader = CustomerLookup(db)
    assert reader.latest("bank", "C1")["run_id"] == "run-1"  # connected before the write starts

    with LookupWriter(
        db, dataset="bank", run_id="run-2", scored_at="2024-01-08", model_version="8"
    ) as writer:
        writer.add(scored(["C1", "C2", "C3"], probability=0.9))
        for lookup in (reader, CustomerLookup(db)):  # one connected before, one during the write
            assert lookup.latest("bank", "C1")["run_id"] == "run-1"
            assert lookup.latest("bank", "C3") is None
            assert lookup.customers("bank") == 2
        writer.add(scored(["C4"]))
        assert reader.history("bank", "C1")[0]["run_id"] == "run-1"

    assert reader.latest("bank", "C1")["run_id"] == "run-2"
    assert reader.latest("bank", "C3")["probability"] == 0.902
    assert reader.customers("bank") == 4
    reader.close()


def test_a_second_writer_waits_for_the_first_and_then_gives_up(tmp_path):
    db = tmp_path / "lookup.sqlite"
    with LookupWriter(
        db, dataset="bank", run_id="run-1", scored_at="2024-01-01", model_version="7"
    ) as writer:
        writer.add(scored(["C1"]))
        second = LookupWriter(
            db, dataset="bank", run_id="run-2", scored_at="2024-01-08", model_version="7", timeout=0.05
        )
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            second.__enter__()
    assert CustomerLookup(db).history("bank", "C1")[0]["run_id"] == "run-1"
