"""The Model page's experiment section: the champion against a challenger on real conversions (start,
the arms and the sample so far, the latest test, stop), and the record of every promotion and rollback."""

from __future__ import annotations

from typing import Any

import pandas as pd

from frontend.app import ui
from frontend.app.client import ApiClient, ApiError

ARMS = ("champion", "challenger")


def arms_frame(experiment: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for arm in ARMS:
        t = experiment["totals"][arm]
        per_customer = ui.percent(t["conversions"] / t["customers"]) if t["customers"] else "-"
        rows.append(
            {
                "arm": arm,
                "version": f"v{experiment[arm]}",
                "customers with an outcome": int(t["customers"]),
                "called": int(t["calls"]),
                "converted": int(t["conversions"]),
                "converted per customer": per_customer,
            }
        )
    return pd.DataFrame(rows)


def look_line(experiment: dict[str, Any]) -> str:
    look = experiment.get("last") or {}
    planned = (experiment.get("planned") or {}).get("challenger")
    if look.get("z") is None:
        return "No outcomes measured yet: the test starts with the first week's outcomes."
    line = f"z {look['z']:.2f} (one-sided p {look['p_value']:.4f})"
    if look.get("boundary"):
        line += f" against the boundary {look['boundary']:.2f}"
    if planned:
        line += f"; {look['customers']['challenger']:,.0f} of the planned {planned:,} challenger customers"
    if look.get("power") is not None:
        line += f"; power so far to detect a {experiment['min_lift']:g}x lift: {look['power']:.0%}"
    return line + "."


def decisions_frame(decisions: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "when": ui.local_time(d["at"]),
                "what": d["action"],
                "version": f"v{d['version']}",
                "replaced": f"v{d['previous']}" if d.get("previous") else "",
                "by": d["by"],
                "why": (d.get("evidence") or {}).get("said") or (d.get("evidence") or {}).get("reason") or "",
            }
            for d in decisions
        ]
    )


def section(
    api: ApiClient,
    dataset: str,
    versions: list[dict[str, Any]],
    champion: dict[str, Any] | None,
    labels: dict[str, str],
) -> dict[str, Any] | None:
    """The experiment's state (for :func:`decisions` at the foot of the page), or None when unavailable."""
    import streamlit as st

    st.subheader("Champion against challenger, on real conversions")
    try:
        state = api.experiments(dataset)
    except ApiError as exc:
        st.caption(f"experiments unavailable: {exc}")
        return None
    running = state["running"]
    if running:
        st.markdown(
            f"Experiment **{running['experiment_id']}**: v{running['challenger']} scores "
            f"{running['share']:.0%} of each week's customers against the champion v{running['champion']}, "
            f"since {ui.local_time(running['started'])}. Each arm's model picks its own contacts at the same "
            "budget share; the challenger is promoted when it converts more per customer, with at most a "
            f"{running['significance']:.0%} chance of promoting one that is no better."
        )
        st.dataframe(arms_frame(running), hide_index=True, width="stretch")
        st.caption(look_line(running))
        if st.button("Stop the experiment (the champion stays)", key="stop_experiment"):
            try:
                api.stop_experiment(dataset)
            except ApiError as exc:
                st.error(str(exc))
            else:
                st.rerun()
    elif champion is None:
        st.caption("An experiment needs a champion to test against.")
    else:
        others = [m["version"] for m in versions if m["version"] != champion["version"]]
        if not others:
            st.caption("Only one version: train another to test it against the champion.")
        else:
            c1, c2 = st.columns(2)
            challenger = c1.selectbox("Challenger", others, format_func=labels.get, key="challenger")
            share = c2.slider("Its share of each week's customers", 0.1, 0.9, 0.5, 0.05, key="share")
            if st.button(
                f"Start testing v{challenger} against v{champion['version']}", key="start_experiment"
            ):
                try:
                    api.start_experiment(dataset, challenger, share)
                except ApiError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
    ended = [e for e in state["experiments"] if e["status"] != "running"]
    if ended:
        last = ended[0]
        said = (last.get("decision") or {}).get("said", last["status"])
        st.caption(f"Last experiment {last['experiment_id']}: {said}")
    return state


def decisions(state: dict[str, Any] | None) -> None:
    """Every promotion, rollback and experiment, newest first (at the foot of the page)."""
    import streamlit as st

    recorded = (state or {}).get("decisions") or []
    if recorded:
        st.subheader("Decisions")
        with st.expander(
            f"{len(recorded)} recorded: every promotion, rollback and experiment, with its evidence"
        ):
            st.dataframe(decisions_frame(recorded), hide_index=True, width="stretch")
