"""The local stack's scheduler: Cloud Scheduler's part on one machine. At each time of
``REMARKETING_RETRAIN_SCHEDULE`` (a cron expression, UTC, read with croniter) it runs the schedule's turn of
the retraining policy for every dataset (``remarketing.retraining.on_schedule``): the latest history goes into
``input/`` when no model was trained on it yet, and the bridge launches it like any file there.
With no schedule it only keeps its heartbeat.

What each turn decided is appended to ``<state>/scheduler/turns.jsonl``.

Run: ``python -m local_stack.scheduler`` (settings from ``REMARKETING_*``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remarketing.errors import RemarketingError
from remarketing.settings import Settings

log = logging.getLogger("remarketing.scheduler")
Turn = Callable[[str], dict[str, Any]]  # dataset -> what the turn decided


class Scheduler:
    """Due times from the cron expression, starting after ``start``; :meth:`tick` runs the turns that are
    due at ``now`` (at most one per due time, however late the tick)."""

    def __init__(
        self, schedule: str, start: datetime, turn: Turn, datasets: list[str], log_file: Path
    ) -> None:
        from croniter import croniter

        self.schedule, self.turn, self.datasets, self.log_file = schedule, turn, datasets, log_file
        self._times = croniter(schedule, start) if schedule else None
        self.next_at: datetime | None = self._times.get_next(datetime) if self._times else None

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        if self.next_at is None or now < self.next_at:
            return []
        due = self.next_at
        while self.next_at <= now:  # a late tick (a suspended machine) runs one turn, not every missed one
            self.next_at = self._times.get_next(datetime)  # type: ignore[union-attr]
        done = []
        for dataset in self.datasets:
            try:
                result = self.turn(dataset)
            except RemarketingError as exc:  # one dataset's failure (MLflow down, say) is logged, not fatal
                result = {"retrain": False, "said": f"the turn failed: {exc}"}
            entry = {"due": due.isoformat(), "ran": now.isoformat(), "dataset": dataset, **result}
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_file, "a") as f:
                f.write(json.dumps(entry, default=str) + "\n")
            log.info("%s: %s", dataset, result.get("said"))
            done.append(entry)
        return done


def stack_turn(settings: Settings) -> Turn:
    from remarketing.datasets import load_spec
    from remarketing.retraining import on_schedule
    from remarketing.storage import Storage
    from tracking.registry import MlflowRegistry

    def turn(dataset: str) -> dict[str, Any]:
        registry = MlflowRegistry(settings.tracking_uri)
        by = f"the schedule ({settings.retrain_schedule})"
        return on_schedule(Storage(settings), settings, load_spec(dataset), dataset, registry, by=by)

    return turn


def main() -> None:
    from remarketing import datasets

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    folder = settings.state_dir.resolve() / "scheduler"
    folder.mkdir(parents=True, exist_ok=True)
    beat = folder / "heartbeat"
    scheduler = Scheduler(
        settings.retrain_schedule,
        datetime.now(UTC),
        stack_turn(settings),
        datasets.available(),
        folder / "turns.jsonl",
    )
    log.info("schedule %r, next turn %s", settings.retrain_schedule or "(none)", scheduler.next_at)
    while True:
        beat.touch()
        scheduler.tick(datetime.now(UTC))
        time.sleep(1.0)


if __name__ == "__main__":
    main()
