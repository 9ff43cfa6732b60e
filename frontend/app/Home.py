"""Remarketing: the analyst's app (Streamlit, multipage). Run: ``streamlit run frontend/app/Home.py``.

Every page talks to the project's API only (``REMARKETING_API_URL``, with the API key)."""

from __future__ import annotations

import streamlit as st

from frontend.app.client import ApiClient, ApiError

st.set_page_config(page_title="Remarketing", page_icon="📞", layout="wide")
st.title("Remarketing")
st.write(
    "Call the customers most likely to say yes (a term deposit, a personal loan: one dataset spec each), "
    "with the reasons behind each score."
)
st.markdown(
    "- **Upload**: score this week's customer file within a budget and download who to call.\n"
    "- **Runs**: every training and scoring run, its steps, errors and links.\n"
    "- **Model**: the champion beside the challenger, their plots and what drives them.\n"
    "- **Explain**: why one scored customer got their score.\n"
    "- **Monitoring**: each week's outcomes against the promise, the lift against the holdout, retraining.\n"
    "- **Operations**: what Prometheus sees: the targets, the alerts firing and the key panels."
)
api = ApiClient()
try:
    runs = api.runs(limit=1000)
    models = api.models()
except ApiError as exc:
    st.error(str(exc))
else:
    champion = next((m for m in models if "champion" in m["aliases"]), None)
    c1, c2, c3 = st.columns(3)
    c1.metric("Runs", len(runs))
    c2.metric(
        "Scoring runs that succeeded", sum(r["kind"] == "scoring" and r["status"] == "success" for r in runs)
    )
    c3.metric("Champion", f"v{champion['version']} ({champion['family']})" if champion else "none yet")
st.caption(f"API: {api.base_url}")
