"""Each Streamlit page in ``AppTest``, talking over HTTP to the real API process of the local stack
(uvicorn, emulator, MLflow), with the scoring runs of the shared fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.frontend.conftest import csv_bytes, weekly_frame

pytestmark = pytest.mark.integration
APP = Path(__file__).resolve().parents[2] / "frontend" / "app"


@pytest.fixture
def page(settings, monkeypatch):
    """An AppTest of one page, with the stack's settings (the API key) and API address in its env."""
    monkeypatch.setenv("REMARKETING_API_URL", f"http://127.0.0.1:{settings.api_port}")

    def make(name: str) -> AppTest:
        return AppTest.from_file(str(APP / name), default_timeout=60)

    return make


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "success", "error", "info", "caption", "subheader", "warning")
        for e in getattr(at, kind)
    ]
    return "\n".join(map(str, parts))


def test_home_shows_the_champion(page, trained):
    at = page("Home.py").run()
    assert not at.exception and not at.error
    assert any(m.label == "Champion" and m.value.startswith("v") for m in at.metric)


def test_upload_gives_immediate_feedback_and_queues_the_file(page, bank_bytes, settings):
    at = page("pages/1_Upload.py").run()
    wrong = csv_bytes(weekly_frame(bank_bytes, step=400).drop(columns=["age"]))
    at.file_uploader[0].set_value(("week.csv", wrong, "text/csv")).run()
    assert "cannot be scored" in at.error[0].value and "missing 1 column: 'age'" in texts(at)
    assert at.button(key="score").disabled

    at.file_uploader[0].set_value(
        ("week.csv", csv_bytes(weekly_frame(bank_bytes, step=400)), "text/csv")
    ).run()
    assert "the columns fit" in at.success[0].value and not at.button(key="score").disabled
    at.number_input(key="budget").set_value(5)
    at.button(key="score").click().run()
    run_id = at.session_state["run_id"]
    assert run_id.startswith("scoring-") and f"Run `{run_id}`" in texts(at)
    assert "queued" in at.get("progress")[0].proto.text


def test_upload_shows_the_finished_run_with_its_link_preview_and_budget(page, scored):
    at = page("pages/1_Upload.py")
    at.session_state["run_id"] = scored.uploads[0]["run_id"]
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Scored" in at.success[0].value and "[predictions.csv](http://127.0.0.1:" in shown
    labels = {m.label: m.value for m in at.metric}
    assert int(labels["Calls"]) <= 25 and labels["Expected conversion rate (targeted)"].endswith("%")
    assert "Base rate (everyone)" in labels
    assert any("interval" in c.value and "backtest periods" in c.value for c in at.caption)
    assert any("targeted" in m.value and "held out" in m.value for m in at.markdown)
    assert not any("covers every customer" in i.value for i in at.info)  # 25 of the file's rows are called
    assert at.dataframe[0].value["customer_id"].iloc[0] and len(at.dataframe[0].value) == 20
    assert at.get("download_button")
    at.number_input(key="what_if").set_value(10).run()
    assert {m.label: m.value for m in at.metric}["Contacts"] == "10"


def test_runs_lists_runs_with_steps_errors_and_links(page, scored):
    at = page("pages/2_Runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert {scored.uploads[0]["run_id"], scored.uploads[1]["run_id"]} <= set(table["run"])
    assert {"training", "scoring"} <= set(table["kind"])
    at.selectbox(key="run").set_value(scored.uploads[0]["run_id"]).run()
    steps = at.dataframe[1].value
    assert list(steps["step"]) == ["validate", "resolve-model", "deploy", "score", "publish"]
    assert set(steps["status"]) == {"success"}
    assert any("Open in MLflow" == b.label for b in at.get("link_button"))
    at.selectbox(key="kind").set_value("training").run()
    assert set(at.dataframe[0].value["kind"]) == {"training"}


def test_model_shows_champion_metrics_plots_and_global_shap(page, trained):
    at = page("pages/3_Model.py").run()
    assert not at.exception
    metrics = at.dataframe[0].value
    assert "champion" in metrics["version"].iloc[0] and metrics["roc_auc"].iloc[0] > 0.5
    assert metrics["fitted on rows"].iloc[0] == 4522
    periods = at.dataframe[1].value
    champion = periods[periods["version"] == metrics["version"].iloc[0]]
    assert list(champion["period"]) == [1, 2, 3, 4] and periods["roc_auc"].between(0, 1).all()
    assert champion["rows"].iloc[-1] == "4,071-4,522"  # the rows each period's figures were measured on
    assert at.get("vega_lite_chart")  # each period, champion beside challenger
    assert len(at.get("image")) >= 5  # ROC, PR, lift, calibration, SHAP summary


def test_explain_shows_the_waterfall_and_plain_reasons(page, scored):
    at = page("pages/4_Explain.py")
    at.query_params["run_id"] = scored.uploads[0]["run_id"]
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="run").value == scored.uploads[0]["run_id"]
    reasons = [m.value for m in at.markdown if "(raises)" in m.value or "(lowers)" in m.value]
    assert reasons and all("`" in r for r in reasons)  # the words, then the field and value
    assert any(m.label == "Probability of subscribing to a term deposit" for m in at.metric)
    assert at.get("image")  # the waterfall
    assert any(m.label == "Rank" and m.value == "1" for m in at.metric)
