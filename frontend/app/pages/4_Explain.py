"""Explain: pick a scored customer, see the SHAP waterfall and the reasons in plain words."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.app import ui
from frontend.app.client import ApiClient, ApiError
from remarketing.datasets import available, load_spec

st.set_page_config(page_title="Explain · Remarketing", page_icon="🔎", layout="wide")
st.title("Why this customer?")
api = ApiClient()

try:
    runs = api.runs(kind="scoring", status="success")
except ApiError as exc:
    st.error(str(exc))
    st.stop()
if not runs:
    st.info("No scored file yet: score one on the Upload page first.")
    st.stop()
ids = [r["run_id"] for r in runs]
asked_run = st.query_params.get("run_id")
run_id = st.selectbox(
    "Scoring run",
    ids,
    index=ids.index(asked_run) if asked_run in ids else 0,
    format_func=lambda i: f"{i} ({next(r['created'][:16] for r in runs if r['run_id'] == i)})",
    key="run",
)
try:
    top = api.predictions(run_id, limit=200)
except ApiError as exc:
    st.error(str(exc))
    st.stop()
customers = [str(r["customer_id"]) for r in top["rows"]]
left, right = st.columns(2)
picked = left.selectbox(
    f"Customer (the top {len(customers)} of {top['total']:,}, by rank)", customers, key="customer"
)
typed = right.text_input("or any customer id", value=st.query_params.get("customer_id", ""), key="typed")
customer = (typed or picked or "").strip()
if customer.startswith("'") and customer[1:2] in "=+-@":
    customer = customer[1:]  # the scored file escapes formula-like ids

try:
    explanation = api.explanation(run_id, customer)
except ApiError as exc:
    st.error(str(exc))
    st.stop()

meaning = next((r.get("dataset") for r in runs if r["run_id"] == run_id), None)
meaning = load_spec(meaning).target.meaning if meaning in available() else "converting"
c1, c2, c3, c4 = st.columns(4)
c1.metric(f"Probability of {meaning}", ui.percent(explanation["probability"]))
c2.metric("Rank", f"{explanation['rank']:,}" if explanation["rank"] else "–")
c3.metric("Called", "yes" if explanation["contact"] else "no")
c4.metric("Group", explanation.get("group") or "–")
st.subheader("Reasons")
for reason in explanation["reasons"]:
    st.markdown(
        f"- {reason['text']}  \n  <small>`{reason['field']}` = `{reason['value']}`</small>",
        unsafe_allow_html=True,
    )
st.subheader("SHAP waterfall")
st.pyplot(ui.waterfall(explanation, meaning=meaning), clear_figure=True)
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
