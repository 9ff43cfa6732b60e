"""The Upload page's Outcomes section: a past week's campaign results sent back (``POST /runs/{id}/outcomes``)
and followed until the monitoring run has measured them against that week's promise."""

from __future__ import annotations

from typing import Any

from frontend.app import ui
from frontend.app.client import ApiClient, ApiError
from remarketing.uploads import separator_text


def section(api: ApiClient, dataset: dict[str, Any]) -> None:
    import streamlit as st

    st.divider()
    st.subheader("Outcomes of a past week")
    target, id_column = dataset["target"], dataset["id_column"]
    st.caption(
        f"When a campaign's results are in: a CSV, {separator_text(dataset['separator'])}-separated, with "
        f"`{id_column}` and `{target}` for the customers whose outcome is known. They are measured against "
        "that week's promise (the Monitoring page), added to the history the next model trains on, and "
        "feed a running experiment."
    )
    try:
        weeks = api.runs(kind="scoring", status="success", dataset=dataset["name"], limit=50)
    except ApiError as exc:
        st.caption(f"scored weeks unavailable: {exc}")
        return
    if not weeks:
        st.caption(f"No {dataset['name']} week has been scored yet.")
        return
    by_id = {r["run_id"]: r for r in weeks}
    chosen = st.selectbox(
        "The scored week they belong to",
        list(by_id),
        format_func=lambda i: ui.run_label(by_id[i]),
        key="week",
    )
    file = st.file_uploader(f"Outcomes file (`{id_column}`, `{target}`)", type=["csv"], key="outcomes_file")
    if file is not None and st.button("Send the outcomes", key="send_outcomes"):
        try:
            accepted = api.send_outcomes(chosen, file.name, file.getvalue())
        except ApiError as exc:
            st.error(f"The outcomes were refused: {exc.detail}")
            if exc.problems:
                st.markdown("\n".join(f"- {p}" for p in exc.problems))
        else:
            st.session_state.outcomes_run = accepted["run_id"]
            st.session_state.outcomes_final = None
    run_id = st.session_state.get("outcomes_run")
    if not run_id:
        return
    st.markdown(f"Monitoring run `{run_id}`")
    final = st.session_state.get("outcomes_final")
    if final is None or final.get("run_id") != run_id:
        ui.follow_run(api, run_id, "outcomes_final", "the monitoring run")
    else:
        _result(final)


def _result(run: dict[str, Any]) -> None:
    import streamlit as st

    if run["status"] == "failed":
        error = run.get("error") or {}
        st.error(f"The outcomes could not be measured (step **{error.get('step')}**): {error.get('message')}")
        return
    d = run["details"]
    st.success(
        f"{d.get('outcomes', 0):,} outcomes measured: the targeted converted at "
        f"{ui.percent(d.get('realized_conversion_rate_targeted'))} against "
        f"{ui.percent(d.get('expected_conversion_rate_targeted'))} expected"
        + (
            ""
            if d.get("promise_inside") is None
            else f" ({'inside' if d['promise_inside'] else 'outside'} the promise)"
        )
        + f"; history version {d.get('history_version')}."
    )
    for warning in run.get("warnings") or []:
        st.info(warning)
    st.page_link("pages/5_Monitoring.py", label="See the week on the Monitoring page")
