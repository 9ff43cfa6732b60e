import threading

import pytest

from remarketing.errors import RemarketingError
from remarketing.runs import RunRecord, RunStore, Source, kind_of, run_id_for
from remarketing.settings import Settings
from remarketing.storage import Storage


def test_run_id_is_derived_from_bucket_name_and_generation_only():
    a = run_id_for("landing", "input/x.csv", 17)
    assert a == run_id_for("landing", "input/x.csv", "17") and a.startswith("training-")
    assert a != run_id_for("landing", "input/x.csv", 18)
    assert a != run_id_for("other", "input/x.csv", 17)
    assert run_id_for("landing", "weekly/x.csv", 17).startswith("scoring-")


def test_kind_comes_from_the_folder():
    assert kind_of("input/a.csv") == "training" and kind_of("weekly/a.csv") == "scoring"
    assert kind_of("output/a.csv") is None


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(Storage(Settings(state_dir=tmp_path)), str(tmp_path / "artifacts"))


def record(run_id="training-1") -> RunRecord:
    return RunRecord(
        run_id=run_id, kind="training", dataset="bank-marketing", source=Source(uri="x", generation=1)
    )


def test_create_is_create_only_and_the_loser_gets_the_existing_run(store):
    first, created = store.create(record())
    assert created
    store.update("training-1", lambda r: r.warnings.append("kept"))
    again, created_again = store.create(record())
    assert not created_again and again.warnings == ["kept"]


def test_concurrent_updates_lose_nothing(store):
    store.create(record())
    threads = [
        threading.Thread(target=store.update, args=("training-1", lambda r, i=i: r.warnings.append(str(i))))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(store.get("training-1").warnings) == [str(i) for i in range(8)]


def test_a_failing_step_fails_the_run_with_its_message(store):
    store.create(record())
    with store.step("training-1", "validate"):
        pass
    with pytest.raises(ValueError), store.step("training-1", "split"):
        raise ValueError("too few rows to split")
    got = store.get("training-1")
    assert [(s.name, s.status) for s in got.steps] == [("validate", "success"), ("split", "failed")]
    # an unexpected exception says what kind it was; the project's own errors are written for people
    assert got.status == "failed" and got.error.message == "ValueError: too few rows to split"
    assert got.error.step == "split"
    store.finish("training-1")  # a late finish never turns a failure into success
    assert store.get("training-1").status == "failed"
    store.create(record("training-2"))
    with pytest.raises(RemarketingError), store.step("training-2", "resolve"):
        raise RemarketingError("no champion yet: train one first")
    assert store.get("training-2").error.message == "no champion yet: train one first"


def test_what_a_failing_step_had_found_is_written_with_its_failure(store):
    """The deploy task resolved v7, then its server would not start: the record still names v7."""
    store.create(record("scoring-1"))
    with pytest.raises(RemarketingError), store.step("scoring-1", "deploy") as after:
        after.append(lambda r: setattr(r, "model_version", "7"))
        raise RemarketingError("the model server for m v7 did not become ready")
    got = store.get("scoring-1")
    assert got.model_version == "7" and got.status == "failed" and got.error.step == "deploy"


def test_a_sharded_step_runs_until_its_last_shard_succeeds(store):
    store.create(record())
    with store.step("training-1", "score", shards=3):
        with store.step("training-1", "score", shards=3):
            pass
        middle = store.get("training-1").step("score")
        assert (middle.status, middle.shards_done) == ("running", 1)  # two shards still going
    with store.step("training-1", "score", shards=3):
        pass
    step = store.get("training-1").step("score")
    assert (step.status, step.shards, step.shards_done) == ("success", 3, 3) and step.finished


def test_one_failed_shard_fails_the_step_whatever_the_others_do(store):
    store.create(record())
    with store.step("training-1", "score", shards=2):
        with pytest.raises(RemarketingError), store.step("training-1", "score", shards=2):
            raise RemarketingError("shard 2 of 2 gave up on chunk 1")
    got = store.get("training-1")
    assert got.step("score").status == "failed" and got.status == "failed"
    assert got.error.message == "shard 2 of 2 gave up on chunk 1"
