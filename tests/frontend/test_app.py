"""Each Streamlit page in ``AppTest``, talking over HTTP to the real API process of the local stack
(uvicorn, emulator, MLflow), with the scoring runs of the shared fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from local_stack import services
from remarketing.processes import ProcessRegistry, free_port
from remarketing.secrets import api_key
from remarketing.uploads import widget_mb
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
    assert at.selectbox(key="dataset").value == "bank-marketing"
    uploader = at.get("file_uploader")[0].proto
    assert "semicolon (;)-separated" in uploader.label
    assert any(f"Up to 50 MB ({50 * 2**20:,} bytes)" in c.value for c in at.caption)
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
    # The last 20% of bank-full moved from the training rows (pdays, previous, contact, ...), though no
    # further than between the history's own periods: said above the figures, as a warning.
    assert any(w.value.startswith("**These customers moved from the training rows") for w in at.warning)
    assert any("major drift" in w.value and "pdays" in w.value for w in at.warning)
    assert any("targeted" in m.value and "held out" in m.value for m in at.markdown)
    assert not any("covers every customer" in i.value for i in at.info)  # 25 of the file's rows are called
    assert at.dataframe[0].value["customer_id"].iloc[0] and len(at.dataframe[0].value) == 20
    assert at.get("download_button")
    at.number_input(key="what_if").set_value(10).run()
    assert {m.label: m.value for m in at.metric}["Contacts"] == "10"


def test_the_upload_widget_states_the_apis_limit(stack):
    _, command, _ = services.SERVICES["ui"](stack)
    assert command[command.index("--server.maxUploadSize") + 1] == "50"  # MB, as the API's 50 MB limit
    assert widget_mb(50 * 2**20 + 1) == 51  # never below the API's limit


def test_upload_of_a_thera_bank_file_under_its_dataset(page, thera_bytes):
    at = page("pages/1_Upload.py").run()
    at.selectbox(key="dataset").set_value("thera-bank").run()
    assert "comma (,)-separated" in at.get("file_uploader")[0].proto.label
    assert any("probability of taking the personal loan" in c.value for c in at.caption)
    at.file_uploader[0].set_value(("thera.csv", thera_bytes, "text/csv")).run()
    assert "the columns fit" in at.success[0].value


def test_runs_lists_runs_a_person_recognises(page, scored):
    at = page("pages/2_Runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert {scored.uploads[0]["run_id"], scored.uploads[1]["run_id"]} <= set(table["run"])
    assert {"training", "scoring"} <= set(table["kind"])
    assert {"weekly-same.csv", "campaign-sample.csv"} <= set(table["file"])  # the names people gave
    assert table["created"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+").all()  # 24-hour
    assert not at.get("json")  # no raw JSON
    at.selectbox(key="run").set_value(scored.uploads[0]["run_id"]).run()
    label = at.selectbox(key="run").format_func(scored.uploads[0]["run_id"])
    assert " · scoring · weekly-same.csv · bank-marketing · v" in label
    assert "Scoring run on weekly-same.csv" in texts(at)
    steps = at.dataframe[1].value
    assert list(steps["step"]) == ["validate", "deploy", "score", "publish"]
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
    # the experiment section: none runs; the gate's promotion is in the record of decisions
    assert "Champion against challenger, on real conversions" in texts(at)
    decisions = at.dataframe[-1].value
    assert "promoted" in set(decisions["what"]) and decisions["by"].str.contains("promotion gate").any()


def test_explain_shows_the_waterfall_and_plain_reasons(page, scored):
    at = page("pages/4_Explain.py")
    at.query_params["run_id"] = scored.uploads[0]["run_id"]
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="run").value == scored.uploads[0]["run_id"]
    reasons = [m.value for m in at.markdown if "(raises)" in m.value or "(lowers)" in m.value]
    assert reasons and all("`" in r for r in reasons)  # the words, then the field and value
    assert any(m.label == "Probability of subscribing to a term deposit" for m in at.metric)
    assert at.get("vega_lite_chart")  # the waterfall
    assert any(m.label == "Rank" and m.value == "1" for m in at.metric)


def test_explain_looks_a_customer_up_by_id_with_the_scores_before(page, scored, client):
    run_id = scored.uploads[0]["run_id"]
    customer_id = str(
        client.get(f"/runs/{run_id}/predictions", params={"limit": 1}).json()["rows"][0]["customer_id"]
    )
    at = page("pages/4_Explain.py")
    at.query_params["lookup"] = "1"
    at.query_params["customer_id"] = customer_id
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key="mode").value.startswith("a customer by id")
    assert any(m.label == "Probability of subscribing to a term deposit" for m in at.metric)
    assert any("Latest: scoring run" in c.value for c in at.caption)
    assert "Scores before" in [h.value for h in at.subheader]  # the other run of the same file
    at.text_input(key="lookup_id").set_value("nobody-at-all").run()
    assert any("customer 'nobody-at-all' is not among" in e.value for e in at.error), [
        e.value for e in at.error
    ]


@pytest.fixture
def registry_down_api(stack, tmp_path):
    """The API as `remarketing up` starts it, on the stack's storage, with a registry that does not answer."""
    settings = stack.model_copy(
        update={
            "state_dir": tmp_path,
            "api_port": free_port(),
            "tracking_uri": f"http://127.0.0.1:{free_port()}",
            "api_key": api_key(stack),
        }
    )
    services.ensure(settings, "api")
    yield settings
    ProcessRegistry(tmp_path).stop("api")


@pytest.mark.parametrize("name", ["Home.py", "pages/3_Model.py"])
def test_pages_name_the_registry_when_it_is_down(page, registry_down_api, monkeypatch, name):
    monkeypatch.setenv("REMARKETING_API_URL", f"http://127.0.0.1:{registry_down_api.api_port}")
    at = AppTest.from_file(str(APP / name), default_timeout=15).run()
    assert not at.exception
    error = at.error[0].value
    assert error.startswith(f"the model registry (MLflow) at {registry_down_api.tracking_uri} is unavailable")
    assert "API" not in error.split(":")[0]  # the API is up: it is not blamed


def test_pages_say_the_api_is_down_when_it_is(page, monkeypatch):
    monkeypatch.setenv("REMARKETING_API_URL", f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(APP / "pages/2_Runs.py"), default_timeout=15).run()
    assert "is down (nothing answers there): start it with `remarketing up`" in at.error[0].value


@pytest.mark.parametrize("name", ["Home.py", "pages/2_Runs.py", "pages/4_Explain.py"])
def test_behind_iap_a_page_with_no_one_signed_in_shows_nothing_of_the_api(page, trained, monkeypatch, name):
    """With REMARKETING_IAP_AUDIENCE the app acts only as the person IAP signed in (no assertion reaches a
    page in AppTest): the page says so and gets nothing, though the operator's key is in its environment
    and the API would answer it."""
    from tests.cloud_auth.fake_iap import AUDIENCE

    monkeypatch.setenv("REMARKETING_IAP_AUDIENCE", AUDIENCE)
    at = page(name).run()
    assert not at.exception
    assert at.error[0].value.startswith("you are not signed in through IAP: this page came without")
    assert not at.metric and not at.dataframe


def test_monitoring_shows_each_week_against_its_promise(page, monitored):
    at = page("pages/5_Monitoring.py").run()
    assert not at.exception, at.exception
    weeks = at.dataframe[0].value
    row = weeks[weeks["scoring run"] == monitored.answer["scoring_run"]].iloc[0]
    details = monitored.record.metrics
    assert row["realized (targeted)"] == pytest.approx(details["realized_conversion_rate_targeted"])
    assert row["expected (targeted)"] == pytest.approx(details["expected_conversion_rate_targeted"])
    at.selectbox(key="week").set_value(monitored.record.run_id).run()
    labels = {m.label: m.value for m in at.metric}
    assert labels["Outcomes"] == f"{details['outcomes']:,}"
    assert labels["Realized ROC-AUC"] == f"{details['realized_roc_auc']:.3f}"
    assert len(at.get("vega_lite_chart")) == 2  # the weeks, and calibration by decile
