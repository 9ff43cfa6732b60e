"""Model: the champion beside the challenger, with metrics, ROC, PR, lift and calibration, and global SHAP."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.app.client import ApiClient, ApiError

st.set_page_config(page_title="Model · Remarketing", page_icon="🏆", layout="wide")
st.title("Model")
api = ApiClient()
METRICS = ["roc_auc", "pr_auc", "precision_at_10pct", "lift_at_10pct"]
PLOTS = {"roc": "ROC", "pr": "Precision-recall", "lift": "Lift", "calibration": "Calibration"}


@st.cache_data(ttl=600, show_spinner=False)
def plot(base_url: str, version: str, name: str, dataset: str) -> bytes | None:
    try:
        return ApiClient(base_url).plot(version, name, dataset)
    except ApiError:
        return None


try:
    models = api.models()
except ApiError as exc:
    st.error(str(exc))
    st.stop()
datasets = sorted({m["dataset"] for m in models})
if not models:
    st.info(
        "No model yet: train one by dropping a campaign history into input/ (or `remarketing train FILE`)."
    )
    st.stop()
dataset = st.selectbox("Dataset", datasets, key="dataset")
versions = [m for m in models if m["dataset"] == dataset]
champion = next((m for m in versions if "champion" in m["aliases"]), None)
challenger = next((m for m in versions if "challenger" in m["aliases"]), None)
left_default = champion or versions[0]
others = [m for m in versions if m["version"] != left_default["version"]]
right_default = challenger or (others[0] if others else None)
labels = {m["version"]: f"v{m['version']} {'/'.join(m['aliases']) or ''} ({m['family']})" for m in versions}
compare = [m["version"] for m in versions]
c1, c2 = st.columns(2)
left_v = c1.selectbox(
    "Left", compare, index=compare.index(left_default["version"]), format_func=labels.get, key="left"
)
right_options = ["none", *compare]
right_v = c2.selectbox(
    "Right",
    right_options,
    index=right_options.index(right_default["version"]) if right_default else 0,
    format_func=lambda v: "nothing to compare" if v == "none" else labels[v],
    key="right",
)
chosen = [m for v in [left_v, right_v] for m in versions if m["version"] == v]
if champion is None:
    st.warning("No champion yet: no version has cleared the promotion gate.")

rows = []
for m in chosen:
    rows.append({"version": labels[m["version"]], **{k: m["metrics"].get(k) for k in METRICS}})
st.subheader("Test metrics (the most recent labelled slice)")
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

for name, title in PLOTS.items():
    st.subheader(title)
    columns = st.columns(len(chosen))
    for column, m in zip(columns, chosen, strict=True):
        image = plot(api.base_url, m["version"], name, dataset)
        if image:
            column.image(image, caption=labels[m["version"]])
        else:
            column.caption(f"no {title} plot for {labels[m['version']]}")

st.subheader("What drives the model (global SHAP)")
columns = st.columns(len(chosen))
for column, m in zip(columns, chosen, strict=True):
    with column:
        st.markdown(f"**{labels[m['version']]}**")
        try:
            importance = api.shap(m["version"], dataset)
        except ApiError as exc:
            st.caption(str(exc))
            continue
        frame = pd.Series(importance["importance"], name="mean |SHAP|").sort_values(ascending=False)
        st.bar_chart(frame)
        image = plot(api.base_url, m["version"], "shap_summary", dataset)
        if image:
            st.image(image, caption="SHAP summary: each dot a customer, colour its value")
