"""The per-customer lookup: what a run wrote is found by id, whole runs at a time, and nothing else. The
behaviour tests run against both stores (remarketing.lookup_table): the SQLite file and a real PostgreSQL
server (tests/postgres.py); what only one of them has is tested on its own."""

import math
import sqlite3
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import psycopg
import pytest

from remarketing.customer_lookup import CustomerLookup, LookupWriter
from remarketing.customer_lookup_postgres import (
    Database,
    PostgresCustomerLookup,
    PostgresLookupWriter,
)
from remarketing.errors import DataValidationError, StorageError, Unavailable
from remarketing.processes import free_port


class SqliteStore:
    """The SQLite file (locally)."""

    tables_made = {"runs", "scores", "run_values"}

    def __init__(self, path) -> None:
        self.path = path

    def writer(self, **run):
        return LookupWriter(self.path, **run)

    def reader(self):
        return CustomerLookup(self.path)

    def rows(self, query):
        with sqlite3.connect(self.path) as conn:
            found = conn.execute(query).fetchall()
        conn.close()
        return found

    def tables(self):
        if not self.path.exists():
            return set()
        return {name for (name,) in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def set_schema(self, version):
        with sqlite3.connect(self.path) as conn:
            conn.execute("CREATE TABLE later (x)")
            conn.execute(f"PRAGMA user_version={int(version)}")
        conn.close()

    def schema(self):
        return self.rows("PRAGMA user_version")[0][0]


class PostgresStore:
    """A database of the test session's PostgreSQL server (Cloud SQL in the cloud)."""

    tables_made = {"runs", "scores", "run_values", "lookup_schema"}

    def __init__(self, database: Database) -> None:
        self.database = database
        self.readers: list[PostgresCustomerLookup] = []

    def writer(self, **run):
        return PostgresLookupWriter(self.database, **run)

    def reader(self):
        reader = PostgresCustomerLookup(self.database)
        self.readers.append(reader)
        return reader

    def connect(self):
        d = self.database
        return psycopg.connect(
            host=d.host, port=d.port, dbname=d.dbname, user=d.user, password=d.password, autocommit=True
        )

    def rows(self, query):
        with self.connect() as conn:
            return conn.execute(query).fetchall()

    def tables(self):
        """The tables, without the runs' partitions."""
        return {
            name
            for (name,) in self.rows(
                "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND NOT relispartition"
                " AND relnamespace = 'public'::regnamespace"
            )
        }

    def partitions(self):
        return sorted(
            name
            for (name,) in self.rows("SELECT relname FROM pg_class WHERE relkind = 'r' AND relispartition")
        )

    def set_schema(self, version):
        with self.connect() as conn:
            conn.execute("CREATE TABLE lookup_schema (version integer NOT NULL)")
            conn.execute("INSERT INTO lookup_schema VALUES (%s)", (version,))

    def schema(self):
        return self.rows("SELECT max(version) FROM lookup_schema")[0][0]

    def close(self):
        for reader in self.readers:
            reader.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteStore(tmp_path / "lookup.sqlite")
        return
    made = PostgresStore(request.getfixturevalue("lookup_database"))
    yield made
    made.close()


@pytest.fixture
def postgres_store(lookup_database):
    made = PostgresStore(lookup_database)
    yield made
    made.close()


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


def write(store, run_id, scored_at, *chunks, dataset="bank", keep_runs=8, version="7"):
    with store.writer(
        dataset=dataset, run_id=run_id, scored_at=scored_at, model_version=version, keep_runs=keep_runs
    ) as writer:
        for chunk in chunks:
            writer.add(chunk)


def count(store, table):
    return store.rows(f"SELECT count(*) FROM {table}")[0][0]


def test_latest_is_the_newer_run_with_its_detail(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.2, reason_1="age"))
    newer = scored(["C1", "C2"], probability=0.6, version="8", reason_1="balance", contribution=0.125)
    newer.loc[1, "model_version"] = "9"  # the challenger's arm: its own version
    write(store, "run-2", "2024-01-08T06:00:00+00:00", newer.iloc[:1], newer.iloc[1:])

    lookup = store.reader()
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


def test_history_is_newest_first_and_in_time_order_not_writing_order(store):
    write(store, "run-b", "2024-01-08T06:00:00+00:00", scored(["C1"], probability=0.6))
    write(
        store, "run-a", "2024-01-01T06:00:00+00:00", scored(["C1", "C2", "C3"], probability=0.2)
    )  # backfill

    lookup = store.reader()
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


def test_runs_are_ordered_by_the_instant_whatever_the_zone(store):
    write(store, "utc", "2024-01-07T23:00:00Z", scored(["C1"]))
    write(store, "plus-two", "2024-01-08T00:30:00+02:00", scored(["C1"]))  # 22:30 UTC: the earlier one
    assert [h["run_id"] for h in store.reader().history("bank", "C1")] == ["utc", "plus-two"]


def test_an_unknown_id_or_dataset_is_nothing(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    lookup = store.reader()
    assert lookup.latest("bank", "C404") is None
    assert lookup.history("bank", "C404") == []
    assert lookup.latest("other", "C1") is None
    assert lookup.history("other", "C1") == []
    assert lookup.customers("other") == 0


def test_nothing_written_yet_means_nothing_scored_yet(store):
    lookup = store.reader()
    assert lookup.latest("bank", "C1") is None
    assert lookup.of_run("bank", "C1", "run-1") is None
    assert lookup.history("bank", "C1") == []
    assert lookup.customers("bank") == 0
    assert store.tables() == set()  # reading creates nothing
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    assert lookup.latest("bank", "C1")["run_id"] == "run-1"  # the same reader, once there are tables
    assert store.tables() == store.tables_made


def test_a_missing_database_file_is_not_made_by_reading(tmp_path):
    db = tmp_path / "state" / "lookup.sqlite"
    assert CustomerLookup(db).latest("bank", "C1") is None
    assert not db.exists()


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


def test_hostile_ids_are_plain_data(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(HOSTILE_IDS, note="first"))
    write(store, "run-2", "2024-01-08T06:00:00+00:00", scored(HOSTILE_IDS, note=HOSTILE_IDS))

    lookup = store.reader()
    for rank, customer in enumerate(HOSTILE_IDS, start=1):
        found = lookup.latest("bank", customer)
        assert found is not None, customer[:40]
        assert (found["customer_id"], found["rank"], found["detail"]) == (customer, rank, {"note": customer})
        assert [h["rank"] for h in lookup.history("bank", customer)] == [rank, rank]
    assert lookup.latest("bank", "x" * 9_999) is None  # exact, not a prefix
    assert lookup.latest("bank", "C10") is None  # "C%" and "C_1" are no patterns
    assert lookup.latest("bank", "padded") is None
    assert store.tables() == store.tables_made
    assert sorted(i for (i,) in store.rows("SELECT customer_id FROM scores")) == sorted(HOSTILE_IDS * 2)


def test_detail_keeps_line_breaks_missing_values_and_precision(store):
    chunk = scored(["C1", "C2", "C3"], reason_1=["two\nlines", "sep\u2028arated\r", "tab\tand \x1c"])
    chunk["contribution"] = [0.1234567890123, math.nan, -2.5]
    chunk["age"] = [41, 52, 63]
    write(store, "run-1", "2024-01-01T06:00:00+00:00", chunk)

    lookup = store.reader()
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
    assert store.rows("SELECT fields FROM runs") == [('["reason_1","contribution","age"]',)]


def test_detail_of_every_chunk_is_named_by_the_runs_fields(store):
    first = scored(["C1"], reason_1="age", seen=pd.Timestamp("2024-01-02T03:04:05"))
    first["calls"] = pd.array([3], dtype="Int64")
    second = scored(["C2"], reason_1="loan", seen=pd.NaT)
    second["calls"] = pd.array([None], dtype="Int64")
    write(store, "run-1", "2024-01-01T06:00:00+00:00", first, second[["calls", *second.columns[:-1]]])

    lookup = store.reader()
    assert lookup.latest("bank", "C1")["detail"] == {
        "reason_1": "age",
        "seen": "2024-01-02T03:04:05",
        "calls": 3,
    }
    assert lookup.latest("bank", "C2")["detail"] == {"reason_1": "loan", "seen": None, "calls": None}
    with pytest.raises(DataValidationError, match="detail columns"):
        write(store, "run-2", "2024-01-08T06:00:00+00:00", first, second.drop(columns="calls"))
    assert lookup.latest("bank", "C1")["run_id"] == "run-1"


def test_a_chunk_without_model_version_takes_the_runs(store):
    write(
        store,
        "run-1",
        "2024-01-01T06:00:00+00:00",
        scored(["C1"]).drop(columns="model_version"),
        version="12",
    )
    assert store.reader().latest("bank", "C1")["model_version"] == "12"


def test_retention_keeps_the_newest_runs_of_the_dataset(store):
    write(store, "other-1", "2023-06-01T06:00:00+00:00", scored(["C1", "C2"]), dataset="other", keep_runs=3)
    for week in range(1, 6):
        write(store, f"run-{week}", f"2024-01-0{week}T06:00:00+00:00", scored(["C1", "C2"]), keep_runs=3)

    lookup = store.reader()
    assert [h["run_id"] for h in lookup.history("bank", "C2")] == ["run-5", "run-4", "run-3"]
    assert lookup.history("other", "C2")[0]["run_id"] == "other-1"  # another dataset's runs are its own
    assert count(store, "runs") == 4
    assert count(store, "scores") == 8

    write(store, "backfill", "2023-12-01T06:00:00+00:00", scored(["C1", "C9"]), keep_runs=3)  # older than all
    assert lookup.latest("bank", "C9") is None
    assert (count(store, "runs"), count(store, "scores")) == (4, 8)


def test_writing_a_run_again_replaces_its_rows(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2", "C3"], probability=0.2))
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2", "C3"], probability=0.7))
    assert count(store, "scores") == 3
    assert count(store, "runs") == 1
    lookup = store.reader()
    assert [h["probability"] for h in lookup.history("bank", "C1")] == [0.7]

    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.9))
    assert count(store, "scores") == 2
    assert lookup.latest("bank", "C3") is None  # the retry's rows only
    assert lookup.customers("bank") == 2


def test_an_exception_in_the_writer_leaves_the_previous_state(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.2))
    with pytest.raises(RuntimeError, match="scoring broke"):
        with store.writer(
            dataset="bank", run_id="run-2", scored_at="2024-01-08", model_version="7", keep_runs=1
        ) as w:  # would retire run-1
            w.add(scored(["C1", "C2", "C3"], probability=0.9))
            raise RuntimeError("scoring broke")

    lookup = store.reader()
    assert [h["run_id"] for h in lookup.history("bank", "C1")] == ["run-1"]
    assert lookup.latest("bank", "C1")["probability"] == 0.2
    assert lookup.latest("bank", "C3") is None
    assert (count(store, "runs"), count(store, "scores")) == (1, 2)


def test_a_failed_first_run_leaves_nothing_scored(store):
    with pytest.raises(RuntimeError):
        with store.writer(dataset="bank", run_id="run-1", scored_at="2024-01-01", model_version="7") as w:
            w.add(scored(["C1"]))
            raise RuntimeError("scoring broke")
    lookup = store.reader()
    assert lookup.latest("bank", "C1") is None
    assert lookup.customers("bank") == 0


def test_a_customer_twice_in_a_run_fails_the_run(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"], probability=0.2))
    with pytest.raises(DataValidationError, match="more than once"):
        write(store, "run-2", "2024-01-08T06:00:00+00:00", scored(["C1", "C2"]), scored(["C3", "C2"]))
    assert [h["run_id"] for h in store.reader().history("bank", "C2")] == []
    assert (count(store, "runs"), count(store, "scores")) == (1, 1)


def test_a_run_whose_failed_chunk_was_caught_is_not_committed(store):
    with pytest.raises(StorageError, match="not written"):
        with store.writer(dataset="bank", run_id="run-1", scored_at="2024-01-01", model_version="7") as w:
            w.add(scored(["C1"]))
            with pytest.raises(DataValidationError):
                w.add(scored(["C1"]))
    assert store.reader().latest("bank", "C1") is None


def test_a_chunk_without_a_required_column_is_refused(store):
    with pytest.raises(DataValidationError, match="'rank'"):
        write(store, "run-1", "2024-01-01", scored(["C1"]).drop(columns="rank"))


def test_readers_see_the_old_state_until_the_writer_commits(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"], probability=0.2))
    reader = store.reader()
    assert reader.latest("bank", "C1")["run_id"] == "run-1"  # connected before the write starts

    with store.writer(dataset="bank", run_id="run-2", scored_at="2024-01-08", model_version="8") as writer:
        writer.add(scored(["C1", "C2", "C3"], probability=0.9))
        for lookup in (reader, store.reader()):  # one connected before, one during the write
            assert lookup.latest("bank", "C1")["run_id"] == "run-1"
            assert lookup.latest("bank", "C3") is None
            assert lookup.customers("bank") == 2
        writer.add(scored(["C4"]))
        assert reader.history("bank", "C1")[0]["run_id"] == "run-1"

    assert reader.latest("bank", "C1")["run_id"] == "run-2"
    assert reader.latest("bank", "C3")["probability"] == 0.902
    assert reader.customers("bank") == 4
    reader.close()


def test_a_second_writer_waits_for_the_first_and_then_gives_up(store):
    with store.writer(dataset="bank", run_id="run-1", scored_at="2024-01-01", model_version="7") as writer:
        writer.add(scored(["C1"]))
        second = store.writer(
            dataset="bank", run_id="run-2", scored_at="2024-01-08", model_version="7", timeout=0.05
        )
        with pytest.raises(StorageError, match=r"another run was writing it, and this one waited 0\.05 s"):
            second.__enter__()
    assert store.reader().history("bank", "C1")[0]["run_id"] == "run-1"


def details(store, ids):
    lookup = store.reader()
    return {customer: lookup.latest("bank", customer)["detail"] for customer in ids}


def typed(values):
    """Values with their types: 1, 1.0 and True are equal in Python but not in what a reader is given."""
    return {k: (type(v).__name__, v) for k, v in values.items()}


def layouts(store):
    return [orjson.loads(layout) for (layout,) in store.rows("SELECT layouts FROM runs")]


def test_each_codec_gives_back_the_values_and_types_the_chunk_held(store):
    chunk = scored(["C1", "C2", "C3", "C4"])
    chunk["score"] = [0.1234567890123, math.nan, math.inf, -1e-300]
    chunk["half"] = np.array([0.1, 2.5, np.nan, -3.0], dtype="float32")
    chunk["small"] = [-127, 0, 5, 127]
    chunk["edge"] = [-128, 1, 2, 3]  # int8's lowest is its 'missing': int16
    chunk["wide"] = [-(2**63) + 1, 2**63 - 1, 0, 7]
    chunk["lowest"] = [-(2**63), 0, 1, 2]  # int64's lowest: no width has it, kept exact as text
    chunk["huge"] = np.array([2**64 - 1, 0, 1, 2], dtype="uint64")
    chunk["calls"] = pd.array([3, None, 0, -1], dtype="Int64")
    chunk["flag"] = [True, False, True, False]
    chunk["maybe"] = pd.array([True, None, False, None], dtype="boolean")
    chunk["text"] = ['say "hi", \\o/', "Łódź 東京 🙂\u2028", "x" * 100_000, None]
    chunk["mixed"] = [5, "5", 1.5, True]  # numbers inside a text column stay numbers, text stays text
    chunk["gaps"] = pd.Series([None, math.nan, 1, 1.0], dtype=object)
    seen = "2024-01-02T03:04:05Z"
    chunk["when"] = pd.to_datetime([seen, None, seen, "2025-06-01T00:00:00Z"])
    chunk["kind"] = pd.Categorical([2, 1, None, 2])
    write(store, "run-1", "2024-01-01T06:00:00+00:00", chunk)

    found = details(store, ["C1", "C2", "C3", "C4"])
    assert typed(found["C1"]) == typed({
        "score": 0.1234567890123, "half": float(np.float32(0.1)), "small": -127, "edge": -128,
        "wide": -(2**63) + 1, "lowest": -(2**63), "huge": 2**64 - 1, "calls": 3, "flag": True,
        "maybe": True, "text": 'say "hi", \\o/', "mixed": 5, "gaps": None,
        "when": "2024-01-02T03:04:05+00:00", "kind": 2,
    })  # fmt: skip
    assert typed(found["C2"]) == typed({
        "score": None, "half": 2.5, "small": 0, "edge": 1, "wide": 2**63 - 1, "lowest": 0, "huge": 0,
        "calls": None, "flag": False, "maybe": None, "text": "Łódź 東京 🙂\u2028", "mixed": "5",
        "gaps": None, "when": None, "kind": 1,
    })  # fmt: skip
    assert typed(found["C3"]) == typed({
        "score": None, "half": None, "small": 5, "edge": 2, "wide": 0, "lowest": 1, "huge": 1,
        "calls": 0, "flag": True, "maybe": False, "text": "x" * 100_000, "mixed": 1.5, "gaps": 1,
        "when": "2024-01-02T03:04:05+00:00", "kind": None,
    })  # fmt: skip
    assert typed(found["C4"]) == typed({
        "score": -1e-300, "half": -3.0, "small": 127, "edge": 3, "wide": 7, "lowest": 2, "huge": 2,
        "calls": -1, "flag": False, "maybe": None, "text": None, "mixed": True, "gaps": 1.0,
        "when": "2025-06-01T00:00:00+00:00", "kind": 2,
    })  # fmt: skip
    assert layouts(store) == [
        [["f8", "f4", "i1", "i2", "i8", "t1", "t1", "i1", "b1", "b1", "t1", "t1", "t1", "t1", "t1"]]
    ]


def test_a_row_takes_only_its_codecs_bytes(store):
    write(
        store,
        "run-1",
        "2024-01-01T06:00:00+00:00",
        scored(["C1", "C2"], age=[41, 300], share=0.5, job="admin."),
    )
    assert [n for (n,) in store.rows("SELECT length(detail) FROM scores")] == [2 + 8 + 1] * 2
    assert store.rows("SELECT code, value FROM run_values") == [(1, '"admin."')]
    assert layouts(store) == [[["i2", "f8", "t1"]]]


def test_text_codes_widen_as_a_runs_dictionary_grows(store):
    ids = [f"C{i}" for i in range(300)]
    write(
        store,
        "run-1",
        "2024-01-01T06:00:00+00:00",
        scored(ids[:200], note=ids[:200]),
        scored(ids[200:], note=ids[200:]),
    )
    assert layouts(store) == [[["t1"], ["t2"]]]  # codes 1-200, then 201-300
    assert details(store, ["C0", "C254", "C299"]) == {
        "C0": {"note": "C0"},
        "C254": {"note": "C254"},
        "C299": {"note": "C299"},
    }


def test_a_column_typed_differently_in_each_chunk_reads_back_as_each_chunk_gave_it(store):
    write(
        store,
        "run-1",
        "2024-01-01T06:00:00+00:00",
        scored(["C1"], age=41, seen=True),
        scored(["C2", "C3"], age=[52.5, math.nan], seen=[False, None]),  # floats with NaN; objects
        scored(["C4"], age="unknown", seen=False),
        scored(["C5"], age=63, seen=True),
    )
    found = details(store, ["C1", "C2", "C3", "C4", "C5"])
    assert {c: typed(d) for c, d in found.items()} == {
        "C1": typed({"age": 41, "seen": True}),
        "C2": typed({"age": 52.5, "seen": False}),
        "C3": typed({"age": None, "seen": None}),
        "C4": typed({"age": "unknown", "seen": False}),
        "C5": typed({"age": 63, "seen": True}),
    }
    assert layouts(store) == [[["i1", "b1"], ["f8", "t1"], ["t1", "b1"]]]  # the first one again for C5


def test_rows_given_out_of_id_order_keep_their_own_values(store):
    ids = ["C3", "C1", "C4", "C2"]
    chunk = scored(ids, note=[f"note of {c}" for c in ids], flag=[c in ("C1", "C4") for c in ids])
    chunk["model_version"] = [f"v{c}" for c in ids]
    write(store, "run-1", "2024-01-01T06:00:00+00:00", chunk)

    lookup = store.reader()
    for rank, customer in enumerate(ids, start=1):
        found = lookup.latest("bank", customer)
        assert (found["rank"], found["probability"], found["model_version"], found["group"]) == (
            rank,
            0.5 + (rank - 1) / 1000,
            f"v{customer}",
            "call" if rank % 2 else "hold-out",
        )
        assert found["detail"] == {"note": f"note of {customer}", "flag": customer in ("C1", "C4")}


def values_of(store):
    orphans = store.rows("SELECT count(*) FROM run_values WHERE run_key NOT IN (SELECT run_key FROM runs)")
    assert orphans == [(0,)]
    return sorted(v for (v,) in store.rows("SELECT value FROM run_values"))


def stored_bytes(path):
    """Everything the database's files hold (the file, its WAL and shared memory)."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_a_retired_or_replaced_run_takes_its_dictionary_with_it(store):
    write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"], note="first"), keep_runs=1)
    write(store, "run-2", "2024-01-08T06:00:00+00:00", scored(["C1", "C2"], note=["a", "b"]), keep_runs=1)
    assert values_of(store) == ['"a"', '"b"']  # run-1's retired with it

    reader = store.reader()
    assert reader.latest("bank", "C2")["detail"] == {"note": "b"}
    write(store, "run-2", "2024-01-08T06:00:00+00:00", scored(["C1", "C2"], note=["c", "a"]), keep_runs=1)
    assert values_of(store) == ['"a"', '"c"']  # the retry's own dictionary: "a" is now its code 2
    assert reader.latest("bank", "C1")["detail"] == {"note": "c"}
    assert reader.latest("bank", "C2")["detail"] == {"note": "a"}

    write(
        store, "old", "2023-01-01T06:00:00+00:00", scored(["C9"], note="older"), keep_runs=1
    )  # retires itself
    assert values_of(store) == ['"a"', '"c"']


def test_a_retired_runs_rows_are_overwritten_not_only_freed(tmp_path):
    db = SqliteStore(tmp_path / "lookup.sqlite")
    gone = [f"gone-{i}" for i in range(2000)]
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(gone, note=gone), keep_runs=1)
    assert b"gone-1999" in stored_bytes(db.path)
    write(db, "run-2", "2024-01-08T06:00:00+00:00", scored(["C1"], note="kept"), keep_runs=1)
    assert b"gone-" not in stored_bytes(db.path)  # its pages are free, and zeroed


def test_a_retired_or_replaced_runs_partition_is_dropped_not_its_rows_deleted(postgres_store):
    """PostgreSQL: each run's rows are a table of their own, dropped with the run (its files removed),
    not rows deleted and left on disk for VACUUM."""
    db = postgres_store
    write(db, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1", "C2"]), keep_runs=2)
    write(db, "run-2", "2024-01-08T06:00:00+00:00", scored(["C1"]), keep_runs=2)
    first, second = db.partitions()
    write(db, "run-2", "2024-01-08T06:00:00+00:00", scored(["C1", "C3"]), keep_runs=2)  # replaced
    assert db.partitions() == [first, db.partitions()[1]] and second not in db.partitions()
    write(db, "run-3", "2024-01-15T06:00:00+00:00", scored(["C4"]), keep_runs=2)  # run-1 retired
    assert first not in db.partitions() and len(db.partitions()) == 2
    assert count(db, "scores") == 3
    write(db, "old", "2023-01-01T06:00:00+00:00", scored(["C9"]), keep_runs=2)  # retires itself
    assert len(db.partitions()) == 2 and db.tables() == db.tables_made  # its own table is gone too


SCHEMA_1 = (
    """CREATE TABLE runs (run_key INTEGER PRIMARY KEY, dataset TEXT NOT NULL, run_id TEXT NOT NULL,
        scored_at TEXT NOT NULL, scored_us INTEGER NOT NULL, model_version TEXT NOT NULL,
        fields TEXT NOT NULL DEFAULT '[]', customers INTEGER NOT NULL DEFAULT 0, UNIQUE (dataset, run_id))""",
    "CREATE INDEX runs_by_time ON runs (dataset, scored_us, run_key)",
    """CREATE TABLE scores (run_key INTEGER NOT NULL REFERENCES runs (run_key), customer_id TEXT NOT NULL,
        model_version TEXT NOT NULL, probability REAL, rank INTEGER, grp TEXT, detail TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX scores_by_customer ON scores (customer_id, run_key)",
    "CREATE INDEX scores_by_run ON scores (run_key)",
    """INSERT INTO runs VALUES (1, 'bank', 'run-1', '2024-01-01T06:00:00+00:00', 1704088800000000, '7',
        '["reason_1"]', 1)""",
    """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
        INSERT INTO scores SELECT 1, 'C' || i, '7', 0.5, i, 'call', '["an old secret"]' FROM n""",
    "PRAGMA user_version=1",
)


def schema_1_file(path):
    """A file as the first version of the lookup wrote it (details as JSON text)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in SCHEMA_1:
            conn.execute(statement)
    conn.close()


def test_a_file_of_the_earlier_schema_is_refused_by_readers_until_a_writer_starts_it_afresh(tmp_path):
    store = SqliteStore(tmp_path / "lookup.sqlite")
    schema_1_file(store.path)
    reader = store.reader()
    for read in (lambda: reader.latest("bank", "C1"), lambda: reader.history("bank", "C1")):
        with pytest.raises(
            Unavailable, match=r"lookup\.sqlite is unavailable \(the file has schema 1.*next scoring run"
        ):
            read()

    with pytest.raises(RuntimeError, match="scoring broke"):  # a failed run leaves the file as it was
        with store.writer(dataset="bank", run_id="run-2", scored_at="2024-01-08", model_version="8") as w:
            w.add(scored(["C2"], note="new"))
            raise RuntimeError("scoring broke")
    with pytest.raises(Unavailable):
        reader.customers("bank")

    write(store, "run-2", "2024-01-08T06:00:00+00:00", scored(["C2"], note="new"))
    assert reader.latest("bank", "C2")["detail"] == {"note": "new"}  # the same reader, once committed
    assert reader.latest("bank", "C1") is None  # the earlier schema's runs are not carried over
    assert reader.history("bank", "C1") == []
    assert (count(store, "runs"), count(store, "scores")) == (1, 1)
    assert store.schema() == 2
    assert b"an old secret" not in stored_bytes(store.path)  # dropped pages are overwritten, not only freed


def test_tables_of_a_newer_schema_are_refused_by_both(store):
    store.set_schema(3)
    with pytest.raises(Unavailable, match="newer version"):
        store.reader().latest("bank", "C1")
    with pytest.raises(StorageError, match="schema 3; this code writes 2"):
        write(store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    assert store.schema() == 3


# --- PostgreSQL only ----------------------------------------------------------------------------------
def test_a_database_that_is_down_is_named_unavailable_never_not_found(lookup_database):
    """Nothing listens: the reader and the writer say the table is unavailable, naming it."""
    down = Database(
        host="127.0.0.1",
        port=free_port(),
        dbname="lookup",
        user="lookup",
        password="s3cret",
        sslmode="disable",
    )
    where = rf"postgresql://lookup@127\.0\.0\.1:{down.port}/lookup is unavailable"
    with pytest.raises(Unavailable, match=where) as read:
        PostgresCustomerLookup(down).latest("bank", "C1")
    with pytest.raises(Unavailable, match=where) as written:
        write(PostgresStore(down), "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    for shown in (str(read.value), str(written.value), repr(down), str(down)):
        assert "s3cret" not in shown  # the password is never shown


def test_a_reader_whose_kept_connection_broke_connects_again_at_once(postgres_store):
    write(postgres_store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    reader = postgres_store.reader()
    assert reader.latest("bank", "C1")["run_id"] == "run-1"
    sessions = (
        "FROM pg_stat_activity WHERE application_name = 'remarketing lookup' AND datname = current_database()"
    )
    with postgres_store.connect() as admin:  # the server ends the reader's session (a failover would)
        (before,) = admin.execute(f"SELECT pid {sessions}").fetchone()
        admin.execute(f"SELECT pg_terminate_backend(pid) {sessions}")
    assert reader.latest("bank", "C1")["run_id"] == "run-1"  # answered, on a new session
    with postgres_store.connect() as admin:
        after = [pid for (pid,) in admin.execute(f"SELECT pid {sessions}")]
    assert after and before not in after


def test_an_id_holding_nul_is_no_customer_and_refused_by_the_writer(postgres_store):
    write(postgres_store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    reader = postgres_store.reader()
    assert reader.latest("bank", "C1\x00") is None
    assert reader.of_run("bank", "C1\x00", "run-1") is None
    assert reader.history("bank", "C1\x00") == []
    with pytest.raises(DataValidationError, match="the lookup cannot be used"):
        write(postgres_store, "run-2", "2024-01-08T06:00:00+00:00", scored(["C2", "C\x003"]))
    assert [h["run_id"] for h in reader.history("bank", "C1")] == ["run-1"]


def test_a_reader_reads_one_snapshot_and_writes_nothing(postgres_store):
    """A row and its run's dictionary are read in one REPEATABLE READ, READ ONLY transaction (a run
    retired between the two reads would otherwise leave codes without values)."""
    write(postgres_store, "run-1", "2024-01-01T06:00:00+00:00", scored(["C1"]))
    reader = postgres_store.reader()
    shown = reader._read(
        lambda conn: conn.execute(
            "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
        ).fetchone(),
        None,
    )
    assert shown == ("repeatable read", "on")


def _write_one_run(path: str, run_id: str, ready, go) -> None:
    """A process writing one run into a new lookup file, as publish does."""
    ready.set()
    go.wait()
    with LookupWriter(
        Path(path), dataset="bank", run_id=run_id, scored_at=f"2024-01-0{run_id[-1]}", model_version="7"
    ) as writer:
        writer.add(scored([f"{run_id}-C{i}" for i in range(200)]))


def test_two_runs_writing_a_new_file_at_once_both_land(tmp_path):
    """Two processes start writing a lookup file that does not exist yet at the same moment: the second
    waits for the first to put it into WAL mode (SQLite itself does not wait there) and both runs land."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(30):  # the switch takes microseconds: new files until the race is met
        path = tmp_path / f"lookup-{attempt}.sqlite"
        go = context.Event()
        readies = [context.Event() for _ in range(2)]
        workers = [
            context.Process(target=_write_one_run, args=(str(path), f"run-{n + 1}", readies[n], go))
            for n in range(2)
        ]
        for worker in workers:
            worker.start()
        for ready in readies:
            assert ready.wait(60)
        go.set()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0, 0]
        runs = {row["run_id"] for row in CustomerLookup(path).history("bank", "run-1-C0")} | {
            row["run_id"] for row in CustomerLookup(path).history("bank", "run-2-C0")
        }
        assert runs == {"run-1", "run-2"}
