"""The local scheduler's timing: a turn at each due time of the cron expression, one per due time however
late the tick, none without a schedule; each turn's decision appended to its log."""

import json
from datetime import UTC, datetime

from local_stack.scheduler import Scheduler
from remarketing.errors import Unavailable


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=UTC)


def test_a_turn_runs_at_each_due_time_and_once_however_late(tmp_path):
    asked: list[tuple[str, datetime]] = []
    now = {"t": at(6, 12)}

    def turn(dataset):
        asked.append((dataset, now["t"]))
        return {"retrain": False, "said": "nothing new"}

    # Mondays at 06:00 UTC; 2026-12-07 is a Monday
    scheduler = Scheduler("0 6 * * 1", at(6, 12), turn, ["a", "b"], tmp_path / "turns.jsonl")
    assert scheduler.next_at == at(7, 6)
    for t in (at(7, 5, 59, 59), at(6, 23)):
        now["t"] = t
        assert scheduler.tick(t) == []
    now["t"] = at(7, 6, 0, 1)
    done = scheduler.tick(now["t"])
    assert [d["dataset"] for d in done] == ["a", "b"] and scheduler.next_at == at(14, 6)
    assert scheduler.tick(at(7, 6, 0, 2)) == []  # not twice for one due time
    now["t"] = at(28, 9)  # three Mondays missed: one turn, then the next Monday
    assert len(scheduler.tick(now["t"])) == 2 and scheduler.next_at == datetime(2027, 1, 4, 6, tzinfo=UTC)
    logged = [json.loads(line) for line in (tmp_path / "turns.jsonl").read_text().splitlines()]
    assert [(e["dataset"], e["due"]) for e in logged] == [
        ("a", at(7, 6).isoformat()),
        ("b", at(7, 6).isoformat()),
        ("a", at(14, 6).isoformat()),
        ("b", at(14, 6).isoformat()),
    ]


def test_without_a_schedule_nothing_is_ever_due(tmp_path):
    scheduler = Scheduler("", at(6, 12), lambda d: {"said": "?"}, ["a"], tmp_path / "turns.jsonl")
    assert scheduler.next_at is None and scheduler.tick(at(31, 0)) == []


def test_a_turn_that_fails_is_logged_and_the_others_still_run(tmp_path):
    def turn(dataset):
        if dataset == "a":
            raise Unavailable("the model registry (MLflow)", "http://127.0.0.1:1", "start it")
        return {"retrain": False, "said": "fine"}

    scheduler = Scheduler("*/5 * * * *", at(6, 12), turn, ["a", "b"], tmp_path / "turns.jsonl")
    done = scheduler.tick(at(6, 12, 5))
    assert "the model registry (MLflow) at http://127.0.0.1:1 is unavailable" in done[0]["said"]
    assert done[1]["said"] == "fine"
