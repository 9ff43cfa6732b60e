"""Runs: every training and scoring run with its file, status, a per-step timeline, errors and links."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.app import ui
from frontend.app.client import ApiClient

st.set_page_config(page_title="Runs · Remarketing", page_icon="🧭", layout="wide")
st.title("Runs")
api = ApiClient()

f1, f2, f3, f4 = st.columns([1, 1, 1, 1])
kind = f1.selectbox("Kind", ["all", "training", "scoring", "monitoring"], key="kind")
status = f2.selectbox("Status", ["all", "queued", "running", "success", "failed"], key="status")
names = [d["name"] for d in ui.or_stop(api.rules)["datasets"]]
dataset = f3.selectbox("Dataset", ["all", *names], key="dataset")
f4.button("Refresh", key="refresh")
runs = ui.or_stop(
    lambda: api.runs(
        kind=None if kind == "all" else kind,
        status=None if status == "all" else status,
        dataset=None if dataset == "all" else dataset,
    )
)
if not runs:
    st.info("No runs yet: upload a weekly file on the Upload page, or drop a history file into input/.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "created": ui.local_time(r["created"]),
            "kind": r["kind"],
            "file": r.get("file"),
            "dataset": r["dataset"],
            "model version": r.get("details", {}).get("model_version") or r.get("model_version"),
            "status": ui.status_label(r["status"]),
            "failed at": (r.get("error") or {}).get("step"),
            "run": r["run_id"],
        }
        for r in runs
    ]
)
st.dataframe(table, hide_index=True, width="stretch")

by_id = {r["run_id"]: r for r in runs}
chosen = st.selectbox("Run", list(by_id), format_func=lambda i: ui.run_label(by_id[i]), key="run")
run = ui.or_stop(lambda: api.run(chosen))
st.subheader(f"{run['kind'].capitalize()} run on {run.get('file')}: {ui.status_label(run['status'])}")
st.caption(
    f"run `{run['run_id']}` · dataset {run['dataset']} · created {ui.local_time(run['created'])} · "
    f"updated {ui.local_time(run['updated'])}"
)
if run.get("error"):
    st.error(f"Failed at step **{run['error'].get('step')}**: {run['error']['message']}")
details = run.get("details") or {}
ui.drift_banner(run)
for warning in run.get("warnings") or []:
    if warning != details.get("drift_message"):  # shown as the banner above
        st.info(warning)

if run["kind"] == "scoring" and run["status"] == "success":
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Customers scored", f"{details.get('rows_scored') or 0:,}")
    c2.metric("Calls", f"{details.get('contacted') or 0:,}")
    c3.metric("Expected conversion rate (targeted)", ui.percent(details.get("expected_conversion_rate")))
    c4.metric("Base rate (everyone)", ui.percent(details.get("base_rate")))
    st.caption(ui.interval_line(details))
elif run["kind"] == "monitoring" and run["status"] == "success":
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Outcomes", f"{details.get('outcomes') or 0:,}")
    c2.metric(
        "Realized ROC-AUC", f"{details['realized_roc_auc']:.3f}" if details.get("realized_roc_auc") else "–"
    )
    c3.metric(
        "Targeted converted (expected)",
        ui.percent(details.get("realized_conversion_rate_targeted")),
        delta=None
        if details.get("expected_conversion_rate_targeted") is None
        else f"expected {ui.percent(details['expected_conversion_rate_targeted'])}",
        delta_color="off",
    )
    inc = details.get("incremental_conversion_rate")
    c4.metric("Against the holdout", "–" if inc is None else f"{inc * 100:+.1f} pts")
    st.caption(
        f"Scoring run `{details.get('scoring_run')}`; the week in full: {details.get('performance_uri')}"
    )
elif run["kind"] == "training" and run["status"] == "success":
    metrics = run.get("metrics") or {}
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Model version", f"v{run.get('model_version')}")
    c2.metric("Family", metrics.get("family") or "–")
    c3.metric("Backtest ROC-AUC (mean)", f"{metrics['roc_auc']:.3f}" if "roc_auc" in metrics else "–")
    c4.metric("Promoted", "yes" if details.get("promoted") else "no")

st.markdown("**Steps**")
steps = ui.steps_frame(run)
chart = ui.timeline_chart(steps)
if chart is not None:
    st.altair_chart(chart, width="stretch")
shown = steps.assign(
    started=[
        ui.local_time(t.isoformat()) if t is not None and not pd.isna(t) else "–" for t in steps["started"]
    ],
    finished=[
        ui.local_time(t.isoformat()) if t is not None and not pd.isna(t) else "–" for t in steps["finished"]
    ],
)
st.dataframe(shown, hide_index=True, width="stretch")

links = run.get("links") or {}
cols = st.columns(3)
if links.get("mlflow"):
    cols[0].link_button("Open in MLflow", links["mlflow"])
if links.get("kubeflow"):
    cols[1].link_button("Open in the Kubeflow UI", links["kubeflow"])
if run.get("predictions URL"):
    cols[2].link_button("Download predictions", run["predictions URL"])
