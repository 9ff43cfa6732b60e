"""Runs: every training and scoring run with its status, a per-step timeline, errors and links."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.app import ui
from frontend.app.client import ApiClient, ApiError

st.set_page_config(page_title="Runs · Remarketing", page_icon="🧭", layout="wide")
st.title("Runs")
api = ApiClient()

f1, f2, f3 = st.columns([1, 1, 2])
kind = f1.selectbox("Kind", ["all", "training", "scoring"], key="kind")
status = f2.selectbox("Status", ["all", "queued", "running", "success", "failed"], key="status")
f3.button("Refresh", key="refresh")
try:
    runs = api.runs(kind=None if kind == "all" else kind, status=None if status == "all" else status)
except ApiError as exc:
    st.error(str(exc))
    st.stop()
if not runs:
    st.info("No runs yet: upload a weekly file on the Upload page, or drop a history file into input/.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "run": r["run_id"],
            "kind": r["kind"],
            "status": ui.status_label(r["status"]),
            "dataset": r["dataset"],
            "created": r["created"],
            "model version": r.get("details", {}).get("model_version") or r.get("model_version"),
            "steps": " › ".join(f"{ui.ICON.get(s['status'], '')}{s['name']}" for s in r.get("steps") or []),
            "error": (r.get("error") or {}).get("message"),
        }
        for r in runs
    ]
)
st.dataframe(table, hide_index=True, width="stretch")

chosen = st.selectbox("Run", [r["run_id"] for r in runs], key="run")
try:
    run = api.run(chosen)
except ApiError as exc:
    st.error(str(exc))
    st.stop()
st.subheader(f"{run['kind'].capitalize()} run `{run['run_id']}`: {ui.status_label(run['status'])}")
if run.get("error"):
    st.error(f"Failed at step **{run['error'].get('step')}**: {run['error']['message']}")
for warning in run.get("warnings") or []:
    st.info(warning)
steps = ui.steps_frame(run)
chart = ui.timeline_chart(steps)
if chart is not None:
    st.altair_chart(chart, width="stretch")
st.dataframe(steps, hide_index=True, width="stretch")

links = run.get("links") or {}
cols = st.columns(3)
if links.get("mlflow"):
    cols[0].link_button("Open in MLflow", links["mlflow"])
if links.get("kubeflow"):
    cols[1].link_button("Open in the Kubeflow UI", links["kubeflow"])
if run.get("predictions URL"):
    cols[2].link_button("Download predictions", run["predictions URL"])
details = {k: v for k, v in (run.get("details") or {}).items() if v is not None and k != "error"}
if details:
    st.json(details, expanded=False)
with st.expander("Record"):
    st.json(run, expanded=False)
