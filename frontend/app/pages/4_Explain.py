"""Explain: pick a scored customer, see the SHAP waterfall and the reasons in plain words."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.app import ui
from frontend.app.client import ApiClient
from remarketing.contact_file import unescape
from remarketing.datasets import available, load_spec

st.set_page_config(page_title="Explain · Remarketing", page_icon="🔎", layout="wide")
st.title("Why this customer?")
api = ApiClient()

by_id = st.radio(
    "Look up",
    ["a customer of one scoring run", "a customer by id: the latest score and the ones before"],
    horizontal=True,
    key="mode",
    index=1 if st.query_params.get("lookup") else 0,
).startswith("a customer by id")
history: list = []
if by_id:
    left, right = st.columns([1, 2])
    dataset = left.selectbox("Dataset", available(), key="lookup_dataset")
    typed = right.text_input("Customer id", value=st.query_params.get("customer_id", ""), key="lookup_id")
    if not typed.strip():
        st.info("Type a customer id: its latest score, reasons and contributions come from the lookup table.")
        st.stop()
    explanation = ui.or_stop(lambda: api.customer(typed.strip(), dataset))
    history = explanation["history"]
    meaning = load_spec(dataset).target.meaning
    st.caption(
        f"Latest: scoring run {explanation['run_id']}, scored {ui.local_time(explanation['scored_at'])}."
    )
else:
    runs = ui.or_stop(lambda: api.runs(kind="scoring", status="success"))
    if not runs:
        st.info("No scored file yet: score one on the Upload page first.")
        st.stop()
    ids = [r["run_id"] for r in runs]
    asked_run = st.query_params.get("run_id")
    run_id = st.selectbox(
        "Scoring run",
        ids,
        index=ids.index(asked_run) if asked_run in ids else 0,
        format_func=lambda i: ui.run_label(next(r for r in runs if r["run_id"] == i)),
        key="run",
    )
    top = ui.or_stop(lambda: api.predictions(run_id, limit=200))
    customers = [str(r["customer_id"]) for r in top["rows"]]
    left, right = st.columns(2)
    picked = left.selectbox(
        f"Customer (the top {len(customers)} of {top['total']:,}, by rank)", customers, key="customer"
    )
    typed = right.text_input("or any customer id", value=st.query_params.get("customer_id", ""), key="typed")
    customer = unescape((typed or picked or "").strip())  # the scored file escapes formula-like ids
    explanation = ui.or_stop(lambda: api.explanation(run_id, customer))
    meaning = next((r.get("dataset") for r in runs if r["run_id"] == run_id), None)
    meaning = load_spec(meaning).target.meaning if meaning in available() else "converting"

c1, c2, c3, c4 = st.columns([2, 1, 1, 1.6])  # the group in words fits
c1.metric(f"Probability of {meaning}", ui.percent(explanation["probability"]))
c2.metric("Rank", f"{explanation['rank']:,}" if explanation["rank"] else "–")
c3.metric("Called", "yes" if explanation["contact"] else "no")
c4.metric("Group", (explanation.get("group") or "–").replace("_", " "))
arm = explanation.get("arm")
st.caption(
    f"Scored by model v{explanation.get('model_version')}"
    + (f", the experiment's {arm} (rank within its arm)" if arm and arm != "champion" else "")
    + "."
)
st.subheader("Reasons")
for reason in explanation["reasons"]:
    st.markdown(
        f"- {reason['text']}  \n  <small>`{reason['field']}` = `{reason['value']}`</small>",
        unsafe_allow_html=True,
    )
st.subheader("SHAP waterfall")
st.altair_chart(ui.waterfall(explanation, meaning=meaning), width="stretch")
with st.expander("Every contribution"):
    frame = pd.DataFrame(
        {
            "field": list(explanation["contributions"]),
            "value": [explanation["values"].get(f) for f in explanation["contributions"]],
            "contribution (log-odds)": list(explanation["contributions"].values()),
        }
    ).sort_values("contribution (log-odds)", key=abs, ascending=False)
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(f"Base value {explanation['base_value']:.3f}; {explanation['units']}.")
if history:
    st.subheader("Scores before")
    before = pd.DataFrame(history)
    st.dataframe(
        pd.DataFrame(
            {
                "scored": before["scored_at"].map(ui.local_time),
                "scoring run": before["run_id"],
                f"probability of {meaning}": before["probability"].map(ui.percent),
                "rank": before["rank"],
                "group": before["group"].str.replace("_", " "),
                "model version": before["model_version"],
            }
        ),
        hide_index=True,
        width="stretch",
    )
