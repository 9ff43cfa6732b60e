"""The pages' shared wording, without a stack: progress, times, run labels."""

from datetime import datetime

from frontend.app import ui

PLANNED = ["validate", "deploy", "score", "publish"]


def _run(steps: dict[str, str], status: str = "running") -> dict:
    return {
        "status": status,
        "planned_steps": PLANNED,
        "steps": [{"name": n, "status": s} for n, s in steps.items()],
    }


def test_progress_names_the_step_running_or_the_one_starting_next():
    assert ui.progress_text(_run({}, "queued")) == (0.0, "queued: uploaded, waiting for a pipeline slot")
    assert ui.progress_text(_run({"validate": "success", "deploy": "running"})) == (
        0.25,
        "deploy (step 2 of 4)",
    )
    # between two steps: the one that starts next, never "waiting for a pipeline slot"
    between = ui.progress_text(_run({"validate": "success", "deploy": "success"}))
    assert between == (0.5, "starting score (step 3 of 4)")


def test_times_are_local_and_24_hour():
    shown = ui.local_time("2026-12-02T15:04:05.123+00:00")
    local = datetime.fromisoformat("2026-12-02T15:04:05.123+00:00").astimezone()
    assert shown == local.strftime("%Y-%m-%d %H:%M:%S %Z") and "PM" not in shown and "AM" not in shown
    assert ui.local_time(None) == "–"


def test_a_run_is_labelled_by_when_what_which_file_and_how_it_went():
    run = {
        "run_id": "scoring-0123456789abcdef",
        "kind": "scoring",
        "file": "week-48.csv",
        "dataset": "thera-bank",
        "created": "2026-12-02T15:04:05+00:00",
        "status": "success",
        "details": {"model_version": "3"},
    }
    label = ui.run_label(run)
    assert label.endswith(" · scoring · week-48.csv · thera-bank · v3 · success")
    assert label.startswith(ui.local_time(run["created"]))
