"""Operations: the alerts firing now, which parts Prometheus reaches, and the dashboards' key panels (Grafana
draws every panel from the same declarations, observability/dashboards.py)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from frontend.app import ui
from frontend.app.client import ApiClient, ApiError

st.set_page_config(page_title="Operations · Remarketing", page_icon="🛠️", layout="wide")
st.title("Operations")
api = ApiClient()

WINDOWS = {15: "15 minutes", 60: "hour", 360: "6 hours", 1440: "day", 10080: "week"}
HEALTH = {"up": "up", "down": "down", "unknown": "not scraped yet"}

f1, f2 = st.columns([1, 3])
minutes = f1.selectbox("Last", list(WINDOWS), index=1, format_func=WINDOWS.get, key="minutes")
f2.button("Refresh", key="refresh")
try:
    ops = api.operations(minutes)
except ApiError as exc:
    if exc.status == 503 and "Prometheus" in exc.detail:  # the API is up: it is Prometheus that is not
        st.error(f"Prometheus is down, so there is nothing to show: {exc}")
    else:
        st.error(str(exc))
    st.stop()

st.subheader("Alerts firing")
if not ops["alerts"]:
    st.success("No alert is firing.")
for alert in ops["alerts"]:
    say = st.error if alert.get("severity") == "page" else st.warning
    say(f"**{alert['name']}** ({alert.get('severity') or 'no severity'}): {alert.get('summary') or ''}")
    if alert.get("description"):
        st.caption(f"{alert['description']} (since {ui.local_time(alert.get('active_at'))})")

st.subheader("What Prometheus reaches")
targets = ops["targets"]
down = [t for t in targets if t["health"] == "down"]
st.caption(
    f"{sum(t['health'] == 'up' for t in targets)} of {len(targets)} targets up"
    + (f"; down: {', '.join(sorted({t['job'] for t in down}))}" if down else "")
    + f" · Prometheus at {ops['prometheus']}"
)
st.dataframe(
    pd.DataFrame(
        [
            {
                "job": t["job"],
                "instance": t["instance"],
                "state": HEALTH.get(t["health"], t["health"]),
                "last error": t.get("last_error") or "",
                "last scraped": ui.local_time(t.get("last_scrape")) if t["health"] != "unknown" else "–",
            }
            for t in targets
        ],
        columns=["job", "instance", "state", "last error", "last scraped"],
    ),
    hide_index=True,
    width="stretch",
)


def chart(panel: dict[str, Any]) -> Any:
    """The panel's series as lines over time, with its threshold as a dashed rule."""
    frame = pd.DataFrame(
        [
            {"time": pd.to_datetime(t, unit="s", utc=True), "value": v, "series": s["name"]}
            for s in panel["series"]
            for t, v in s["points"]
        ]
    )
    axis = alt.Axis(format="%" if panel["unit"] == "percentunit" else "~s")  # 0.5%, 12k, 3m (milli)
    # A flat line at 0 would give Vega an empty domain (its axis then reads NaN): start at 0, end above.
    top = frame["value"].max()
    scale = alt.Scale(domain=[0, 1]) if not top or top != top else alt.Scale(zero=True)
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("time:T", title=None),
            y=alt.Y("value:Q", title=panel["unit_text"], axis=axis, scale=scale),
            color=alt.Color(
                "series:N", title=None, legend=alt.Legend(orient="bottom", columns=2, labelLimit=260)
            ),
            tooltip=["series", alt.Tooltip("time:T", format="%H:%M:%S"), "value"],
        )
        .properties(height=220)
    )
    if panel.get("threshold") is None:
        return lines
    rule = alt.Chart(pd.DataFrame({"value": [panel["threshold"]]})).mark_rule(strokeDash=[4, 4], color="red")
    return lines + rule.encode(y="value:Q")


st.subheader(f"Key panels, the last {WINDOWS[minutes]}")
by_dashboard: dict[str, list[dict[str, Any]]] = {}
for panel in ops["panels"]:
    by_dashboard.setdefault(panel["dashboard_title"], []).append(panel)
for title, panels in by_dashboard.items():
    st.markdown(f"#### {title}")
    columns = st.columns(2)
    for i, panel in enumerate(panels):
        with columns[i % 2]:
            st.markdown(f"**{panel['title']}**")
            st.caption(panel["description"])
            if panel.get("error"):
                st.warning(f"Prometheus could not run this panel's query: {panel['error']}")
            elif not any(v is not None for s in panel["series"] for _, v in s["points"]):
                st.info(f"No data in the last {WINDOWS[minutes]}.")
            else:
                st.altair_chart(chart(panel), width="stretch")
st.caption(
    f"One point every {ops['step_seconds']} s. Every panel, with these, is in the Grafana dashboards "
    "generated into observability/grafana/dashboards."
)
