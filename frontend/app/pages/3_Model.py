"""Model: the champion beside the challenger: their backtests period by period, ROC, PR, lift and calibration
on the backtests' out-of-time scores, global SHAP; then the experiment between them and every decision."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.app import experiment, ui
from frontend.app.client import ApiClient, ApiError

st.set_page_config(page_title="Model · Remarketing", page_icon="🏆", layout="wide")
st.title("Model")
api = ApiClient()
METRICS = ["roc_auc", "pr_auc", "precision_at_10pct", "lift_at_10pct", "lift_at_budget", "calibration_error"]
PLOTS = {"roc": "ROC", "pr": "Precision-recall", "lift": "Lift", "calibration": "Calibration"}
PERIOD_METRICS = {
    "roc_auc": "ROC-AUC",
    "lift_at_10pct": "lift in the top 10%",
    "calibration_error": "calibration error",
}


@st.cache_data(ttl=600, show_spinner=False)
def plot(base_url: str, version: str, name: str, dataset: str) -> bytes | None:
    try:
        return ApiClient(base_url).plot(version, name, dataset)
    except ApiError:
        return None


models = ui.or_stop(lambda: api.models())
datasets = sorted({m["dataset"] for m in models})
if not models:
    st.info(
        "No model yet: train one by dropping a campaign history into input/ (or `remarketing train FILE`)."
    )
    st.stop()
asked = st.query_params.get("dataset")  # a link may name the dataset
dataset = st.selectbox(
    "Dataset", datasets, index=datasets.index(asked) if asked in datasets else 0, key="dataset"
)
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

experiments = experiment.section(api, dataset, versions, champion, labels)

st.subheader("Backtests: each later period of the history, scored by a fit on every row before it")
rows = []
for m in chosen:
    rows.append(
        {
            "version": labels[m["version"]],
            **{k: m["metrics"].get(k) for k in METRICS},
            **{f"worst {k}": m["worst"].get(k) for k in ("roc_auc", "lift_at_10pct")},
            "fitted on rows": (m.get("fitted_on") or {}).get("rows"),
        }
    )
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
st.caption(
    "Means over the backtest periods (and the worst period). The deployed model is then fitted on every row."
)

periods = pd.DataFrame(
    [
        {"version": labels[m["version"]], **p, "rows": f"{p['first_row']:,}-{p['last_row']:,}"}
        for m in chosen
        for p in m.get("backtest") or []
    ]
)
if periods.empty:
    st.info("These versions were trained before backtests were recorded.")
else:
    metric = st.radio(
        "Per period",
        list(PERIOD_METRICS),
        format_func=PERIOD_METRICS.get,
        horizontal=True,
        key="period_metric",
    )
    chart = periods.pivot_table(index="period", columns="version", values=metric)
    st.line_chart(chart, x_label="backtest period (oldest first)", y_label=PERIOD_METRICS[metric])
    shown = [
        "version",
        "period",
        "rows",
        "base_rate",
        "roc_auc",
        "pr_auc",
        "precision_at_10pct",
        "lift_at_10pct",
    ]
    st.dataframe(
        periods[shown + ["precision_at_budget", "calibration_error", "brier"]],
        hide_index=True,
        width="stretch",
    )
for m in chosen:
    if m.get("selection") or m.get("gate"):
        gate = m.get("gate") or {}
        verdict = "promoted" if gate.get("promote") else "not promoted"
        why = "; ".join(gate.get("reasons") or [])
        chosen_because = (m.get("selection") or {}).get("reason", "")
        st.caption(f"{labels[m['version']]}: {chosen_because}. Gate: {verdict} ({why}).")

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

experiment.decisions(experiments)
