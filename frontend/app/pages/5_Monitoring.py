"""Monitoring: week by week, what the outcomes said: expected against realized conversion of the targeted
with the promised interval, the lift against the holdout, calibration by decile, drift and retraining."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from frontend.app import experiment, ui
from frontend.app.client import ApiClient, ApiError

st.set_page_config(page_title="Monitoring · Remarketing", page_icon="📈", layout="wide")
st.title("Monitoring")
api = ApiClient()

dataset = ui.dataset_picker(ui.or_stop(api.rules))["name"]
runs = ui.or_stop(lambda: api.runs(kind="monitoring", status="success", dataset=dataset))
if not runs:
    st.info(
        "No outcomes measured yet: send a campaign's outcomes (`remarketing outcomes FILE --run RUN_ID`, "
        "POST /runs/{id}/outcomes, or a file dropped into outcomes/)."
    )
    st.stop()

weeks = pd.DataFrame(
    [
        {
            "measured": ui.local_time(r["created"]),
            "scoring run": r["details"].get("scoring_run"),
            "model version": r["details"].get("model_version"),
            "outcomes": r["details"].get("outcomes"),
            "expected (targeted)": r["details"].get("expected_conversion_rate_targeted"),
            "realized (targeted)": r["details"].get("realized_conversion_rate_targeted"),
            "inside the interval": r["details"].get("promise_inside"),
            "against the holdout (pts)": None
            if r["details"].get("incremental_conversion_rate") is None
            else round(r["details"]["incremental_conversion_rate"] * 100, 1),
            "realized ROC-AUC": r["details"].get("realized_roc_auc"),
            "retrained": "yes: " + "; ".join(r["details"].get("retrain_reasons") or [])
            if r["details"].get("retrain")
            else "no",
            "experiment": r["details"].get("experiment_id") or "",
        }
        for r in reversed(runs)  # oldest first
    ]
)
st.subheader("Week by week")
long = weeks.melt(
    id_vars=["measured"], value_vars=["expected (targeted)", "realized (targeted)"], var_name="conversion"
)
st.altair_chart(
    alt.Chart(long.dropna())
    .mark_line(point=True)
    .encode(
        x=alt.X("measured:N", sort=None, title="measured", axis=alt.Axis(labelAngle=0, labelLimit=220)),
        y=alt.Y("value:Q", title="conversion of the targeted", axis=alt.Axis(format="%")),
        color="conversion:N",
    )
    .properties(height=260),
    width="stretch",
)
st.dataframe(weeks, hide_index=True, width="stretch")

try:
    state = api.experiments(dataset)
except ApiError as exc:
    st.caption(f"experiments unavailable: {exc}")
else:
    running = state["running"]
    if running:
        look = running.get("last") or {}
        st.info(
            f"Experiment {running['experiment_id']} runs: v{running['challenger']} on "
            f"{running['share']:.0%} of each week's customers against v{running['champion']}; "
            f"outcome files measured: {len(running['weeks'])}. "
            + (experiment.look_line(running) if look else "No outcomes of its weeks yet.")
            + " (Model page: arms, stop.)"
        )
    elif state["experiments"]:
        last = state["experiments"][0]
        st.caption(
            f"Last experiment {last['experiment_id']}: "
            f"{(last.get('decision') or {}).get('said', last['status'])}"
        )

by_id = {r["run_id"]: r for r in runs}
chosen = st.selectbox("Week", list(by_id), format_func=lambda i: ui.run_label(by_id[i]), key="week")
week = ui.or_stop(lambda: api.performance(chosen))
promise, incremental = week["promise"], week["incremental"]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Outcomes", f"{week['outcomes']:,}")
c2.metric("Realized ROC-AUC", "–" if week["roc_auc"] is None else f"{week['roc_auc']:.3f}")
c3.metric(
    "Targeted converted",
    ui.percent(promise["actual_conversion_rate"]),
    delta=f"expected {ui.percent(promise['expected_conversion_rate'])}",
    delta_color="off",
)
c4.metric(
    "Against the holdout",
    "–" if incremental["difference"] is None else f"{incremental['difference'] * 100:+.1f} pts",
)
if promise.get("interval"):
    low, high = promise["interval"]
    verdict = "inside" if promise["inside"] else "outside"
    st.caption(f"The promise: {ui.percent(low)} to {ui.percent(high)}; the targeted converted {verdict} it.")
if incremental["difference"] is not None:
    st.caption(
        f"{incremental['targeted']:,} targeted against {incremental['holdout']:,} held out: "
        f"{incremental['level']:.0%} interval {incremental['low'] * 100:+.1f} to "
        f"{incremental['high'] * 100:+.1f} points, about {incremental['incremental_conversions']:.0f} "
        "conversions added by calling."
    )
if week.get("arms"):
    st.subheader("This week's experiment arms")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "arm": arm,
                    "version": f"v{a['version']}" if a.get("version") else "",
                    "customers with an outcome": int(a["customers"]),
                    "called": int(a["calls"]),
                    "converted": int(a["conversions"]),
                    "converted per customer": ui.percent(a["conversions_per_customer"]),
                }
                for arm, a in week["arms"].items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
st.subheader("Calibration by decile of the score")
deciles = pd.DataFrame(week["calibration_by_decile"])
st.altair_chart(
    alt.Chart(deciles.melt(id_vars=["decile", "customers"], var_name="conversion"))
    .mark_bar()
    .encode(
        x=alt.X("decile:O", title="decile (1: the highest scores)"),
        xOffset="conversion:N",
        y=alt.Y("value:Q", title="conversion", axis=alt.Axis(format="%")),
        color="conversion:N",
    )
    .properties(height=260),
    width="stretch",
)
drift = week.get("drift") or {}
if drift.get("major"):
    st.subheader("Drift of the scored week")
    st.markdown(drift.get("message") or f"major drift: {', '.join(drift['major'])}")
