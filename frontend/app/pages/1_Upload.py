"""Upload: drop this week's customer file, get immediate feedback, follow the run, download who to call;
and send a past week's outcomes back."""

from __future__ import annotations

import hashlib
import io

import pandas as pd
import streamlit as st

from frontend.app import outcomes, ui
from frontend.app.client import ApiClient, ApiError
from remarketing.contacts import expected_of_top

st.set_page_config(page_title="Upload · Remarketing", page_icon="📤", layout="wide")
st.title("Score this week's customers")
api = ApiClient()
rules = ui.or_stop(api.rules)

left, right = st.columns([3, 2])
with left:
    dataset = ui.dataset_picker(rules)
with right:
    mode = st.radio("Budget", ["customers to call", "share of customers"], horizontal=True, key="budget_mode")
    budget: int | None = None
    share: float | None = None
    if mode == "customers to call":
        budget = int(st.number_input("Customers to call", min_value=1, value=1000, step=50, key="budget"))
    else:
        share = float(st.slider("Share of customers to call", 0.01, 1.0, 0.10, 0.01, key="budget_share"))
    with st.expander("Call only customers worth it, holdout and random calls"):
        by_value = st.checkbox("Choose by value (cost of a call, value of a conversion)", key="by_value")
        cost = value = None
        if by_value:
            c1, c2 = st.columns(2)
            cost = c1.number_input("Cost of one call", min_value=0.0, value=5.0, step=1.0, key="call_cost")
            value = c2.number_input("Value of one conversion", min_value=0.01, value=50.0, key="value")
        holdout = explore = None  # the settings' shares unless set here
        if st.checkbox("Set the holdout and random-call shares for this file", key="set_shares"):
            holdout = st.slider("Held out of the list (not called)", 0.0, 0.5, 0.05, 0.01, key="holdout")
            explore = st.slider("Others called at random", 0.0, 0.5, 0.01, 0.01, key="explore")
        st.caption(
            "The holdout measures what calling adds; the random calls measure the model where it says no. "
            "Random calls use only the calls the holdout frees: never more calls than the budget."
        )
    st.caption(f"Budget: {rules['budget_rule']}.")
    form = {
        "dataset": dataset["name"],
        "budget": budget,
        "budget_share": share,
        "call_cost": cost,
        "conversion_value": value,
        "holdout_share": holdout,
        "explore_share": explore,
    }
with left:
    file = st.file_uploader(f"Weekly customer file: {dataset['file_rule']}", type=["csv"], key="weekly_file")
    st.caption(
        f"Up to {rules['max_upload']}. Each customer gets the probability of {dataset['meaning']}; "
        f"`{dataset['id_column']}` identifies them (generated from the row number when absent)."
    )

if file is not None:
    data = file.getvalue()
    fingerprint = f"{file.name}:{len(data)}:{hashlib.sha256(data).hexdigest()}:{sorted(form.items())}"
    if st.session_state.get("checked_for") != fingerprint:
        try:
            result = api.upload(file.name, data, dry_run=True, **form)
            st.session_state.check = {"ok": True, "warnings": result.get("warnings", [])}
        except ApiError as exc:
            st.session_state.check = {"ok": False, "detail": exc.detail, "problems": exc.problems}
        st.session_state.checked_for = fingerprint
    check = st.session_state.check
    if check["ok"]:
        st.success(f"**{file.name}** ({len(data):,} bytes): the columns fit. Ready to score.")
        for warning in check["warnings"]:
            st.info(warning)
    else:
        st.error(f"**{file.name}** cannot be scored: {check['detail']}")
        if check["problems"]:
            st.markdown("\n".join(f"- {p}" for p in check["problems"]))
    if st.button("Score this file", type="primary", disabled=not check["ok"], key="score"):
        try:
            accepted = api.upload(file.name, data, **form)
        except ApiError as exc:
            st.error(f"The upload was refused: {exc.detail}")
            if exc.problems:
                st.markdown("\n".join(f"- {p}" for p in exc.problems))
        else:
            st.session_state.run_id = accepted["run_id"]
            st.session_state.final = None
            st.session_state.object = accepted["object"]


def result(run: dict) -> None:
    if run["status"] == "failed":
        error = run.get("error") or {}
        st.error(f"The run failed at step **{error.get('step')}**: {error.get('message')}")
        for warning in run.get("warnings") or []:
            st.info(warning)
        return
    url = run["predictions URL"]
    details = run["details"]
    st.success(
        f"Scored {details.get('rows_scored', 0):,} customers with model v{details.get('model_version')}"
        + (f", {details['rows_rejected']} rows rejected" if details.get("rows_rejected") else "")
    )
    ui.drift_banner(run)
    if details.get("prior_shift"):
        shift = next((w for w in run.get("warnings") or [] if w.startswith("prior shift")), "")
        st.warning(f"**The promise is least certain this week.** {shift}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Calls", f"{details.get('contacted', 0):,}")
    c2.metric("Expected conversions", f"{details.get('expected_conversions', 0):,.0f}")
    rate, base = details.get("expected_conversion_rate"), details.get("base_rate")
    c3.metric(
        "Expected conversion rate (targeted)",
        ui.percent(rate),
        delta=f"{(rate - base) * 100:+.1f} pts vs base" if rate is not None and base is not None else None,
    )
    c4.metric("Base rate (everyone)", ui.percent(base))
    st.caption(ui.interval_line(details))
    st.markdown(ui.groups_line(details))
    if details.get("expected_profit") is not None:
        p1, p2 = st.columns(2)
        p1.metric("Expected profit of the calls", f"{details['expected_profit']:,.0f}")
        p2.metric("Break-even probability", ui.percent(details.get("break_even_probability")))
    selected = (details.get("targeted") or 0) + (details.get("holdout") or 0)
    if selected and selected == details.get("rows_scored"):
        st.info(
            "The budget covers every customer in this file, so calling them all converts at the base rate: "
            "lower the budget to see whom to call first."
        )
    st.markdown(f"**Predictions:** [predictions.csv]({url}) (link expires in an hour; no login needed)")
    st.link_button("Open the predictions link", url)
    key = f"csv-{run['run_id']}"
    if key not in st.session_state:
        try:
            st.session_state[key] = api.download(url)
        except ApiError as exc:
            st.warning(f"the file could not be fetched here: {exc}")
            st.session_state[key] = b""
    csv = st.session_state[key]
    if csv:
        st.download_button(
            "Download predictions.csv",
            csv,
            file_name=f"predictions-{run['run_id']}.csv",
            mime="text/csv",
            key="download",
        )
        scored = pd.read_csv(io.BytesIO(csv), dtype={"customer_id": str}, keep_default_na=False)
        st.subheader("Top customers")
        st.dataframe(scored.head(20), hide_index=True, width="stretch")
        st.subheader("What if the budget were different?")
        n = int(
            st.number_input(
                "Customers to call", 1, len(scored), int(details.get("contacted") or 1), key="what_if"
            )
        )
        conversions, rate = expected_of_top(scored["probability"].to_numpy(), n)
        base = details.get("base_rate") or 0.0
        w1, w2, w3 = st.columns(3)
        w1.metric("Contacts", f"{n:,}")
        w2.metric("Expected conversions", f"{conversions:,.0f}")
        w3.metric(
            "Expected conversion rate",
            ui.percent(rate),
            delta=f"{(rate - base) * 100:+.1f} pts vs base {ui.percent(base)}",
        )
        st.caption("The top of the ranking, before the holdout and random calls.")
    if run.get("warnings"):
        with st.expander(f"{len(run['warnings'])} warnings from the run"):
            st.markdown("\n".join(f"- {w}" for w in run["warnings"]))


run_id = st.session_state.get("run_id")
if run_id:
    st.divider()
    st.subheader(f"Run `{run_id}`")
    final = st.session_state.get("final")
    if final is None or final.get("run_id") != run_id:
        ui.follow_run(api, run_id, "final")
    else:
        result(final)
    if st.button("Score another file", key="reset"):
        for name in ("run_id", "final", "checked_for", "check", "object"):
            st.session_state.pop(name, None)
        st.rerun()

outcomes.section(api, dataset)
