"""Shared pieces of the pages: wording, the step timeline, the SHAP waterfall (Altair, as Streamlit draws)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")


def or_stop(call: Callable[[], T]) -> T:
    """The API's answer, or the page stops with its error said (the API unreachable, a 404, ...)."""
    import streamlit as st

    from frontend.app.client import ApiError

    try:
        return call()
    except ApiError as exc:
        st.error(str(exc))
        st.stop()
        raise  # st.stop() ends the script; this only tells the type checker


def dataset_picker(rules: dict[str, Any], *, key: str = "dataset") -> dict[str, Any]:
    """Choose the dataset (from the specs the API serves); its rules: separator, target meaning, columns."""
    import streamlit as st

    by_name = {d["name"]: d for d in rules["datasets"]}
    names = list(by_name)
    asked = st.query_params.get("dataset") or rules["default_dataset"]  # a link may name the dataset
    default = names.index(asked) if asked in names else 0
    name = st.selectbox(
        "Dataset",
        names,
        index=default,
        format_func=lambda n: f"{n}: {by_name[n]['meaning']}",
        key=key,
    )
    return by_name[name]


def status_label(status: str) -> str:
    """The status in words (emoji need a font the browser may not have: they drew as boxes)."""
    return status


def interval_line(details: dict[str, Any]) -> str:
    """How far to trust the expected rate, in words."""
    low, high = details.get("expected_conversion_rate_low"), details.get("expected_conversion_rate_high")
    if not details.get("targeted"):
        return "No one is targeted (nobody is worth a call, or all the selected are held out): no promise."
    if low is None or high is None:
        return "No interval: this model was trained before backtests were recorded."
    return (
        f"{details.get('interval_level', 0):.0%} interval {percent(low)} to {percent(high)}, from how far "
        "the promise missed in the training history's backtest periods and this list's size."
    )


def groups_line(details: dict[str, Any]) -> str:
    targeted, holdout, explore = (details.get(k) or 0 for k in ("targeted", "holdout", "explore"))
    return (
        f"**{targeted:,}** targeted, **{explore:,}** called at random, **{holdout:,}** held out "
        "(not called): the holdout and the random calls measure the effect once the outcomes come back."
    )


def percent(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def local_time(value: str | None) -> str:
    """A record's UTC time in this machine's time zone, 24-hour: ``2026-12-02 14:05:31 CET``."""
    moment = _time(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "–"


def run_label(run: dict[str, Any]) -> str:
    """How a person tells runs apart: when, what, which file, how it went."""
    version = (run.get("details") or {}).get("model_version") or run.get("model_version")
    model = f" · v{version}" if version else ""
    return (
        f"{local_time(run.get('created'))} · {run['kind']} · {run.get('file') or run['run_id']} · "
        f"{run['dataset']}{model} · {run['status']}"
    )


def progress_text(run: dict[str, Any]) -> tuple[float, str]:
    """The share of the planned steps done, and what the run is doing: the step running, or the one that
    starts next (a step waits for a pipeline slot only before the first step)."""
    steps = {s["name"]: s["status"] for s in run.get("steps") or []}
    planned = run.get("planned_steps") or list(steps)
    done = sum(1 for name in planned if steps.get(name) == "success")
    running = [name for name in planned if steps.get(name) == "running"]
    share = done / max(1, len(planned))
    if not steps:
        return share, "queued: uploaded, waiting for a pipeline slot"
    upcoming = next((name for name in planned if steps.get(name) != "success"), None)
    doing = ", ".join(running) if running else f"starting {upcoming}" if upcoming else "finishing"
    return share, f"{doing} (step {min(done + 1, len(planned))} of {len(planned)})"


def follow_run(api: Any, run_id: str, final_key: str, what: str = "the run") -> None:
    """Poll the run every 2 s while it goes (progress naming the step); once it has finished, keep it in
    ``st.session_state[final_key]`` and rerun the page, which then shows the result."""
    import streamlit as st

    from frontend.app.client import FINISHED, ApiError

    @st.fragment(run_every=2.0)
    def poll() -> None:
        try:
            run = api.run(run_id)
        except ApiError as exc:
            st.warning(f"waiting for {what}: {exc}")
            return
        if run["status"] in FINISHED:
            st.session_state[final_key] = run
            st.rerun()
        share, text = progress_text(run)
        st.progress(share, text=text)
        st.caption(f"status: {status_label(run['status'])} · updated {local_time(run.get('updated'))}")

    poll()


def drift_banner(run: dict[str, Any]) -> None:
    """When the file's customers moved a lot from the training rows: say it above the figures."""
    import streamlit as st

    details = run.get("details") or {}
    message = details.get("drift_message")
    if not message:
        return
    if details.get("drift_beyond_backtests"):
        st.error(f"**These customers are not like the ones the model learned from.** {message}", icon="⚠️")
    else:
        st.warning(f"**These customers moved from the training rows, as much as in the past.** {message}")


def steps_frame(run: dict[str, Any]) -> pd.DataFrame:
    """One row per step: status, start, end and seconds (for the table and the timeline)."""
    rows = []
    for step in run.get("steps") or []:
        started, finished = _time(step.get("started")), _time(step.get("finished"))
        rows.append(
            {
                "step": step["name"],
                "status": step["status"],
                "started": started,
                "finished": finished,
                "seconds": round((finished - started).total_seconds(), 1) if started and finished else None,
            }
        )
    return pd.DataFrame(rows, columns=["step", "status", "started", "finished", "seconds"])


def timeline_chart(frame: pd.DataFrame) -> Any:
    """A Gantt-like Altair chart of the steps: bars from start to end in seconds since the run's first step
    started (clock times on the axis overlap for a run of a minute), coloured by status."""
    import altair as alt

    data = frame.dropna(subset=["started"]).copy()
    if data.empty:
        return None
    now = pd.Timestamp.now(tz=data["started"].iloc[0].tzinfo)
    origin = data["started"].min()
    data["from"] = (data["started"] - origin).dt.total_seconds()
    data["to"] = (data["finished"].fillna(now) - origin).dt.total_seconds()
    colours = alt.Scale(
        domain=["queued", "running", "success", "failed"], range=["#999999", "#1f77b4", "#2ca02c", "#d62728"]
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("step:N", sort=None, title=None),
            x=alt.X("from:Q", title="seconds since the first step started"),
            x2="to:Q",
            color=alt.Color("status:N", scale=colours),
            tooltip=["step", "status", "seconds"],
        )
        .properties(height=30 * len(data) + 40)
    )


def waterfall_steps(explanation: dict[str, Any], top: int = 10) -> pd.DataFrame:
    """The waterfall's bars: from the base value, each of the ``top`` largest contributions (log-odds) in
    turn, then the rest together; each bar starts where the previous one ended."""
    contributions = pd.Series(explanation["contributions"], dtype=float)
    order = contributions.abs().sort_values(ascending=False).index
    values = explanation.get("values") or {}
    rows = [(f"{f} = {values[f]}" if f in values else f, float(contributions[f])) for f in order[:top]]
    if len(order) > top:
        rows.append((f"{len(order) - top} other fields", float(contributions[order[top:]].sum())))
    position = float(explanation["base_value"])
    bars = []
    for label, value in rows:
        bars.append({"field": label, "start": position, "end": position + value, "contribution": value})
        position += value
    frame = pd.DataFrame(bars, columns=["field", "start", "end", "contribution"])
    frame["effect"] = frame["contribution"].map(lambda v: "raises" if v > 0 else "lowers")
    return frame


def waterfall(explanation: dict[str, Any], top: int = 10, meaning: str = "converting") -> Any:
    """A SHAP waterfall (Altair, as Streamlit draws it): red raises, blue lowers the chance."""
    import altair as alt

    bars = waterfall_steps(explanation, top)
    base, score = float(explanation["base_value"]), float(bars["end"].iloc[-1]) if len(bars) else 0.0
    probability = explanation.get("probability")
    shown = f"{probability:.1%}" if probability is not None else f"{1 / (1 + math.exp(-score)):.1%}"
    colours = alt.Scale(domain=["raises", "lowers"], range=["#d62728", "#1f77b4"])
    chart = (
        alt.Chart(bars)
        .mark_bar()
        .encode(
            y=alt.Y("field:N", sort=None, title=None),
            x=alt.X("start:Q", title=f"log-odds: base {base:.2f} to {score:.2f} = probability {shown}"),
            x2="end:Q",
            color=alt.Color("effect:N", scale=colours, title=None),
            tooltip=["field", alt.Tooltip("contribution:Q", format="+.3f")],
        )
        .properties(
            title=f"Why this score: red raises, blue lowers the chance of {meaning}",
            height=28 * len(bars) + 40,
        )
    )
    return chart + alt.Chart(pd.DataFrame({"x": [base]})).mark_rule(strokeDash=[3, 3], color="grey").encode(
        x="x:Q"
    )
