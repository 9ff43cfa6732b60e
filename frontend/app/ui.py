"""Shared pieces of the pages: wording, the step timeline, the SHAP waterfall (matplotlib)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd

ICON = {"queued": "⏳", "running": "🔄", "success": "✅", "failed": "❌"}


def status_label(status: str) -> str:
    return f"{ICON.get(status, '')} {status}"


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
    """A Gantt-like Altair chart of the steps (bars from start to end, coloured by status)."""
    import altair as alt

    data = frame.dropna(subset=["started"]).copy()
    if data.empty:
        return None
    now = pd.Timestamp.now(tz=data["started"].iloc[0].tzinfo)
    data["finished"] = data["finished"].fillna(now)
    colours = alt.Scale(
        domain=["queued", "running", "success", "failed"], range=["#999999", "#1f77b4", "#2ca02c", "#d62728"]
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("step:N", sort=None, title=None),
            x=alt.X("started:T", title="time"),
            x2="finished:T",
            color=alt.Color("status:N", scale=colours),
            tooltip=["step", "status", "seconds"],
        )
        .properties(height=30 * len(data) + 40)
    )


def waterfall(explanation: dict[str, Any], top: int = 10, meaning: str = "converting") -> Any:
    """A SHAP waterfall: from the base value, each field's push (log-odds), to the customer's score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    contributions = pd.Series(explanation["contributions"], dtype=float)
    order = contributions.abs().sort_values(ascending=False).index
    shown = contributions[order[:top]]
    rest = contributions[order[top:]].sum()
    values = explanation.get("values") or {}
    labels = [f"{f} = {values[f]}" if f in values else f for f in shown.index]
    if len(order) > top:
        shown = pd.concat([shown, pd.Series({f"{len(order) - top} other fields": rest})])
        labels.append(f"{len(order) - top} other fields")
    base = float(explanation["base_value"])
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1.6))
    position = base
    # Draw from the top (largest) down, accumulating from the base value.
    starts = []
    for value in shown.to_numpy():
        starts.append(position)
        position += value
    y = list(range(len(shown)))[::-1]
    for yi, start, value in zip(y, starts, shown.to_numpy(), strict=True):
        ax.barh(yi, value, left=start, color="#d62728" if value > 0 else "#1f77b4")
        ax.text(
            start + value, yi, f" {value:+.2f}", va="center", ha="left" if value > 0 else "right", fontsize=8
        )
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=9)
    ax.axvline(base, color="grey", linestyle=":", linewidth=1)
    ax.axvline(position, color="black", linewidth=1)
    probability = explanation.get("probability")
    shown_p = f"{probability:.1%}" if probability is not None else f"{1 / (1 + math.exp(-position)):.1%}"
    ax.set_xlabel(f"log-odds: base value {base:.2f} (grey) → {position:.2f} (black) = probability {shown_p}")
    ax.set_title(f"Why this score: red raises, blue lowers the chance of {meaning}", fontsize=10)
    fig.tight_layout()
    return fig
