"""The API against the real emulator, MLflow and registry: uploads (and every kind of bad input), runs,
explanations, models, auth, metrics. Runs are launched by ``remarketing.launch.launch``, as the storage
trigger's function does."""

from __future__ import annotations

import io
import json

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from frontend.api import deps
from frontend.api.main import create_app
from remarketing import uploads
from remarketing.datasets import load_spec
from remarketing.runs import run_id_for
from remarketing.storage import Storage
from tests.frontend.conftest import FORMULA_IDS, csv_bytes, weekly_frame

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small(bank_bytes: bytes) -> bytes:
    return csv_bytes(weekly_frame(bank_bytes, step=400))


def weekly_objects(settings) -> set[str]:
    return set(Storage(settings).list(f"gs://{settings.landing_bucket}/weekly/"))


def post(client: TestClient, name: str, data: bytes, **form):
    return client.post("/uploads", files={"file": (name, data, "text/csv")}, data=form)


# --- authentication --------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}])
def test_a_missing_or_wrong_key_is_401(anonymous: TestClient, headers, small):
    for method, path in [("GET", "/runs"), ("GET", "/runs/x"), ("GET", "/models")]:
        response = anonymous.request(method, path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    response = anonymous.post("/uploads", headers=headers, files={"file": ("w.csv", small, "text/csv")})
    assert response.status_code == 401


def test_the_key_works_as_header_or_bearer_token(anonymous: TestClient, key: str):
    assert anonymous.get("/runs", headers={"X-API-Key": key}).status_code == 200
    assert anonymous.get("/runs", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_health_metrics_and_openapi_are_open_and_documented(anonymous: TestClient, client: TestClient):
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    assert anonymous.get("/docs").status_code == 200
    client.get("/runs")
    metrics = anonymous.get("/metrics").text
    assert 'remarketing_api_requests_total{method="GET",route="/runs",status="200"}' in metrics
    spec = anonymous.get("/openapi.json").json()
    assert {"/uploads", "/runs", "/runs/{run_id}", "/runs/{run_id}/explanations", "/models"} <= set(
        spec["paths"]
    )
    assert {"APIKeyHeader", "HTTPBearer"} <= set(spec["components"]["securitySchemes"])
    assert "422" in spec["paths"]["/uploads"]["post"]["responses"]


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "data", "status", "expected"),
    [
        ("report.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", 415, "not a CSV but a PDF"),
        ("sheet.csv", b"PK\x03\x04\x14\x00\x06\x00", 415, "xlsx"),
        ("binary.csv", b"customer_id;age\n\x00\x01\x02;3\n", 415, "binary"),
        ("customers.xlsx", b"customer_id;age\nC1;30\n", 415, "not a .csv file"),
        ("notes.csv", b"dear team,\nhere are the numbers\n", 422, "wrong separator"),
        ("latin1.csv", "customer_id;job\nC1;técnico\n".encode("latin-1"), 422, "not UTF-8"),
        ("empty.csv", b"", 422, "the file is empty (0 bytes)"),
    ],
)
def test_files_that_are_not_a_usable_csv_are_refused_and_not_stored(
    client, settings, name, data, status, expected
):
    before = weekly_objects(settings)
    reason = "not_csv" if status == 415 else "invalid_file"
    counted = uploads_counted(client, "rejected", reason)
    response = post(client, name, data)
    assert response.status_code == status, response.text
    assert expected in json.dumps(response.json())
    assert weekly_objects(settings) == before
    assert uploads_counted(client, "rejected", reason) == counted + 1  # the reason, as a bounded label


def uploads_counted(client: TestClient, outcome: str, reason: str, kind: str = "weekly") -> float:
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {"kind": kind, "outcome": outcome, "reason": reason}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "remarketing_api_uploads_total" and sample.labels == wanted:
                return sample.value
    raise AssertionError(f"no remarketing_api_uploads_total{wanted}")


def test_wrong_columns_are_422_listing_every_problem(client, settings, bank_bytes):
    frame = weekly_frame(bank_bytes, step=400).drop(columns=["age", "poutcome"])
    before = weekly_objects(settings)
    response = post(client, "weekly.csv", csv_bytes(frame))
    assert response.status_code == 422
    assert response.json()["problems"] == ["missing 2 columns: 'age', 'poutcome'"]
    assert (
        post(client, "weekly.csv", csv_bytes(frame).replace(b";", b","))
        .json()["problems"][0]
        .startswith("wrong separator")
    )
    assert weekly_objects(settings) == before


def test_bad_parameters_are_422_named_as_parameters_and_store_nothing(client, small, settings):
    before = weekly_objects(settings)
    response = post(client, "w.csv", small, budget="10", budget_share="0.2")
    assert response.status_code == 422 and "not both" in response.json()["problems"][0]
    assert response.json()["detail"] == "the parameters are invalid"
    assert post(client, "w.csv", small, dataset="nope").status_code == 422
    assert post(client, "w.csv", small, model_version="../1").status_code == 422
    for fields, message in [
        ({"budget": "abc"}, "budget must be a number, not 'abc'"),
        ({"call_cost": "-2", "conversion_value": "10"}, "call_cost must be 0 or more"),
        ({"call_cost": "2", "conversion_value": "0"}, "conversion_value must be above 0"),
        ({"call_cost": "2", "conversion_value": "nan"}, "conversion_value must be a finite number"),
        ({"holdout_share": "0.9"}, "holdout_share must be between 0 and 0.5"),
        ({"explore_share": "x"}, "explore_share must be a number"),
    ]:
        response = post(client, "w.csv", small, **fields)
        assert response.status_code == 422 and any(message in p for p in response.json()["problems"]), fields
    assert weekly_objects(settings) == before


def test_over_the_size_limit_is_413(app, key, settings, small):
    app.dependency_overrides[deps.get_upload_limit] = lambda: len(small) - 1
    try:
        before = weekly_objects(settings)
        response = TestClient(app, headers={"X-API-Key": key}).post(
            "/uploads", files={"file": ("w.csv", small, "text/csv")}
        )
    finally:
        del app.dependency_overrides[deps.get_upload_limit]
    assert response.status_code == 413
    assert f"over the {uploads.size_text(len(small) - 1)} limit" in response.json()["detail"]
    assert weekly_objects(settings) == before


def test_the_limit_and_each_datasets_rules_are_stated_once(client, settings):
    rules = client.get("/datasets").json()
    assert rules["max_upload_bytes"] == settings.max_upload_bytes
    assert (
        rules["max_upload"] == f"50 MB ({50 * 2**20:,} bytes)" == uploads.size_text(settings.max_upload_bytes)
    )
    by_name = {d["name"]: d for d in rules["datasets"]}
    assert by_name["bank-marketing"]["separator"] == ";" and by_name["thera-bank"]["separator"] == ","
    assert by_name["thera-bank"]["meaning"] == "taking the personal loan"
    assert by_name["thera-bank"]["file_rule"].startswith("CSV, comma (,)-separated, UTF-8")
    assert rules["budget_rule"].startswith("either a number of customers to call (at least 1)")


def test_a_file_of_another_dataset_says_which_dataset_it_fits(client, settings, thera_bytes):
    before = weekly_objects(settings)
    response = post(client, "thera.csv", thera_bytes)  # the default dataset is bank-marketing
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert problems[0] == "this header fits the thera-bank dataset: choose it instead of bank-marketing"
    fitted = post(client, "thera.csv", thera_bytes, dataset="thera-bank")
    assert fitted.status_code == 202, fitted.text
    assert weekly_objects(settings) - before == {fitted.json()["object"]}


def test_a_model_version_that_does_not_exist_is_a_parameter_error(client, settings, small, trained):
    before = weekly_objects(settings)
    response = post(client, "w.csv", small, model_version="999")
    assert response.status_code == 422 and response.json()["detail"] == "the parameters are invalid"
    assert response.json()["problems"][0].startswith(
        "model_version 999: remarketing-bank-marketing has no version 999; its versions are 1"
    )
    assert weekly_objects(settings) == before


def test_a_registry_that_is_down_is_503_naming_it(app, key, settings):
    from tracking.registry import MlflowRegistry

    dead = MlflowRegistry("http://127.0.0.1:9")  # nothing listens on port 9 (discard)
    app.dependency_overrides[deps.get_registry] = lambda: dead
    try:
        response = TestClient(app, headers={"X-API-Key": key}).get("/models")
    finally:
        del app.dependency_overrides[deps.get_registry]
    assert response.status_code == 503
    assert response.json()["detail"].startswith(
        "the model registry (MLflow) at http://127.0.0.1:9 is unavailable"
    )


@pytest.mark.parametrize(
    ("filename", "stem"),
    [
        ("../../etc/passwd.csv", "passwd"),
        ("..\\..\\windows\\week 47 (final).csv", "week-47-final"),
        ("....csv", "upload"),
        ("Übersicht/../clients-émigrés.CSV", "clients-emigres"),
    ],
)
def test_a_name_with_dotdot_is_sanitised(client, settings, small, filename, stem):
    response = post(client, filename, small)
    assert response.status_code == 202, response.text
    name = response.json()["object"].removeprefix(f"gs://{settings.landing_bucket}/")
    assert name.startswith(f"weekly/{stem}-") and name.endswith(".csv")
    assert ".." not in name and name.count("/") == 1 and "\\" not in name


def test_dry_run_checks_without_storing(client, settings, small):
    before = weekly_objects(settings)
    response = client.post("/uploads?dry_run=true", files={"file": ("w.csv", small, "text/csv")})
    assert response.status_code == 200 and response.json()["ok"] is True
    assert any("'y' (the target) ignored" in w for w in response.json()["warnings"])
    assert weekly_objects(settings) == before


# --- an upload, before and after it is picked up ---------------------------------------------------
def test_an_upload_is_stored_with_metadata_and_queued_until_launched(client, settings, small):
    response = post(client, "customers.csv", small, budget="7", model_version="1")
    assert response.status_code == 202
    body = response.json()
    bucket, name = body["object"].removeprefix("gs://").split("/", 1)
    assert bucket == settings.landing_bucket
    assert body["run_id"] == run_id_for(bucket, name, body["generation"])
    assert response.headers["location"] == body["status_url"] and body["status_url"].endswith(
        f"/runs/{body['run_id']}"
    )
    storage = Storage(settings)
    info = storage.stat(body["object"])
    assert info.metadata == {
        "dataset": "bank-marketing",
        "filename": "customers.csv",
        "budget": "7",
        "model_version": "1",
    }
    assert storage.read_bytes(body["object"]) == small
    # The API never creates the run record: launch() does, create-only.
    assert not storage.exists(f"{settings.artifacts_root}/runs/{body['run_id']}.json")
    run = client.get(f"/runs/{body['run_id']}").json()
    assert run["status"] == "queued" and run["source"]["sha256"] == body["sha256"]
    assert run["predictions URL"] is None and run["params"] == {"budget": 7, "model_version": "1"}
    queued = client.get("/runs", params={"status": "queued"}).json()["runs"]
    assert body["run_id"] in {r["run_id"] for r in queued}
    assert client.get("/runs/scoring-0000000000000000").status_code == 404


def test_an_upload_whose_receipt_is_refused_still_answers_202(client, settings, small, monkeypatch):
    """Once the weekly object is stored its trigger launches the run: a receipt that cannot be written
    (IAM's refusal faked at the storage client's upload) is a warning in the 202, never an error."""
    from google.api_core import exceptions as gexc
    from google.cloud.storage import Blob

    upload = Blob.upload_from_string

    def refused_under_uploads(blob, *args, **kwargs):
        if blob.name.startswith("uploads/"):
            raise gexc.Forbidden("api@ does not have storage.objects.create access to the object")
        return upload(blob, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_string", refused_under_uploads)
    response = post(client, "receipt-refused.csv", small)
    assert response.status_code == 202, response.text
    body = response.json()
    assert Storage(settings).read_bytes(body["object"]) == small
    (warning,) = [w for w in body["warnings"] if "receipt" in w]
    assert warning.startswith(
        "the file is stored and its run starts, but its receipt was not written (Forbidden"
    )


# --- the same file twice at once, scored for real --------------------------------------------------
def test_the_same_file_uploaded_twice_at_once_is_two_uploads_and_two_runs(scored, client):
    first, second = scored.uploads
    assert first["run_id"] != second["run_id"] and first["object"] != second["object"]
    assert first["sha256"] == second["sha256"]
    for up, record in zip(scored.uploads, scored.records, strict=True):
        assert record.status == "success", record.error
        run = client.get(up["status_url"]).json()
        assert run["run_id"] == up["run_id"] and run["source"]["uri"] == up["object"]
        assert run["source"]["generation"] == up["generation"]
    listed = client.get("/runs", params={"kind": "scoring", "status": "success"}).json()["runs"]
    assert {first["run_id"], second["run_id"]} <= {r["run_id"] for r in listed}
    assert all(r["kind"] == "scoring" and r["status"] == "success" for r in listed)


def test_a_finished_run_answers_success_with_the_predictions_url_and_details(scored, client, anonymous):
    run = client.get(scored.uploads[0]["status_url"]).json()
    assert run["status"] == "success" and run["predictions URL"].startswith("http://127.0.0.1:")
    details = run["details"]
    rows = len(weekly_frame_rows(scored.data))
    assert details["rows_scored"] == rows and details["rows_rejected"] == 0 and details["contacted"] <= 25
    assert details["targeted"] + details["holdout"] == 25
    assert 0 < details["base_rate"] < details["expected_conversion_rate"] < 1
    low, high = details["expected_conversion_rate_low"], details["expected_conversion_rate_high"]
    assert low < details["expected_conversion_rate"] < high and details["interval_level"] == 0.8
    assert details["model_version"] == run["model_version"] and details["error"] is None
    assert run["links"]["mlflow"].endswith(f"/versions/{run['model_version']}")
    # The signed link downloads without the key.
    assert httpx.get(run["predictions URL"]).status_code == 200
    assert anonymous.get(httpx.URL(run["predictions URL"]).raw_path.decode()).status_code == 200


def weekly_frame_rows(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), sep=";")


def test_a_link_copied_only_in_part_is_answered_in_words(scored, client, anonymous):
    url = httpx.URL(client.get(scored.uploads[0]["status_url"]).json()["predictions URL"])
    path = url.raw_path.decode()
    before = {o: downloads_counted(anonymous, o) for o in ("served", "refused", "incomplete")}
    assert anonymous.get(path).status_code == 200
    cut = anonymous.get(path[: path.index("&signature=") + len("&signature=") + 10])
    assert cut.status_code == 403 and "incomplete" in cut.json()["detail"]
    no_signature = anonymous.get(path[: path.index("&signature=")])
    assert no_signature.status_code == 400
    assert (
        no_signature.json()["detail"].startswith("this link is incomplete")
        and "signature" in no_signature.text
    )
    assert anonymous.get("/download").status_code == 400
    after = {o: downloads_counted(anonymous, o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {"served": 1, "refused": 1, "incomplete": 2}


def downloads_counted(client: TestClient, outcome: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "remarketing_api_predictions_downloads_total" and sample.labels == {
                "outcome": outcome
            }:
                return sample.value
    raise AssertionError(f"no remarketing_api_predictions_downloads_total{{outcome={outcome!r}}}")


def test_scored_cells_starting_with_formula_characters_are_escaped_in_the_download(scored, client):
    url = client.get(scored.uploads[1]["status_url"]).json()["predictions URL"]
    text = httpx.get(url).text
    for cell in FORMULA_IDS:
        assert f"'{cell}" in text
    assert not any(line[:1] in "=+-@" for line in text.splitlines())
    scored_frame = pd.read_csv(io.StringIO(text), dtype={"customer_id": str})
    assert scored_frame["probability"].dtype.kind == "f"  # numbers are not escaped


def test_explanations_give_probability_reasons_and_every_contribution(scored, client):
    run_id = scored.uploads[0]["run_id"]
    top = client.get(f"/runs/{run_id}/predictions", params={"limit": 3}).json()
    customer = top["rows"][0]["customer_id"]
    body = client.get(f"/runs/{run_id}/explanations", params={"customer_id": customer}).json()
    assert body["probability"] == pytest.approx(top["rows"][0]["probability"], abs=1e-6)
    assert body["rank"] == 1 and body["reasons"] and body["reasons"][0]["text"] == top["rows"][0]["reason_1"]
    assert body["reasons"][0]["field"] == top["rows"][0]["reason_1_field"]
    assert body["group"] in {"targeted", "holdout"}
    assert set(body["contributions"]) == set(load_spec("bank-marketing").feature_names)
    import math

    logit = body["base_value"] + sum(body["contributions"].values())
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(body["probability"], abs=2e-3)
    assert body["values"]["age"]  # the customer's own fields, from the uploaded generation
    formula = client.get(f"/runs/{run_id}/explanations", params={"customer_id": FORMULA_IDS[0]})
    assert formula.status_code == 200 and formula.json()["probability"] is not None
    missing = client.get(f"/runs/{run_id}/explanations", params={"customer_id": "nobody"})
    assert missing.status_code == 404 and "not among" in missing.json()["detail"]


# --- models ---------------------------------------------------------------------------------------
def test_models_list_versions_aliases_metrics_and_serve_their_plots(trained, client):
    models = client.get("/models", params={"dataset": "bank-marketing"}).json()["models"]
    champion = next(m for m in models if "champion" in m["aliases"])
    assert champion["metrics"]["roc_auc"] > 0.5 and champion["family"]
    for name in ("roc", "pr", "lift", "calibration", "shap_summary"):
        response = client.get(champion["plots"][name])
        assert response.status_code == 200 and response.content[:4] == b"\x89PNG", name
    shap = client.get(champion["shap_importance"]).json()
    assert shap["importance"] and "base_value" in shap
    assert client.get("/models/999/plots/roc").status_code == 404
    assert client.get(f"/models/{champion['version']}/plots/nope").status_code == 404


def test_the_error_mapping_is_one_table():
    from frontend.api.main import status_of
    from remarketing.errors import DataValidationError, ModelNotFoundError, RemarketingError

    assert status_of(DataValidationError(["x"])) == 422
    assert status_of(ModelNotFoundError("x")) == 404
    assert status_of(uploads.PayloadTooLarge("x")) == 413
    assert status_of(RemarketingError("x")) == 400


def test_the_image_entry_point_builds_the_app_lazily(monkeypatch, settings):
    import frontend.api.main as main

    assert "app" not in vars(main)
    assert main.app.title == "Remarketing API"
    del main.app
    assert create_app is main.create_app


def test_outcomes_of_a_scoring_run_are_taken_and_measured(client, scored, monitored, settings):
    run_id = scored.uploads[0]["run_id"]
    body = monitored.answer
    assert body["run_id"].startswith("monitoring-") and body["scoring_run"] == run_id
    info = Storage(settings).stat(body["object"])
    assert body["object"].startswith(f"gs://{settings.landing_bucket}/outcomes/week-outcomes-")
    assert info.metadata["scoring_run"] == run_id and info.metadata["dataset"] == "bank-marketing"
    assert monitored.record.status == "success", monitored.record.error
    details = client.get(body["status_url"]).json()["details"]
    rows = len(pd.read_csv(io.BytesIO(monitored.outcomes), sep=";"))
    assert details["scoring_run"] == run_id and details["outcomes"] == rows
    assert 0 <= details["realized_roc_auc"] <= 1
    performance = client.get(f"/runs/{body['run_id']}/performance").json()
    assert performance["scoring_run"] == run_id and len(performance["calibration_by_decile"]) == 10
    assert performance["roc_auc"] == pytest.approx(details["realized_roc_auc"])
    training = next(r["run_id"] for r in client.get("/runs", params={"kind": "training"}).json()["runs"])
    text = monitored.outcomes
    refused = client.post(f"/runs/{training}/outcomes", files={"file": ("o.csv", text, "text/csv")})
    assert refused.status_code == 404 and "outcomes belong to a scoring run" in refused.json()["detail"]
    assert client.post("/runs/nope/outcomes", files={"file": ("o.csv", text, "text/csv")}).status_code == 404
    assert client.get(f"/runs/{run_id}/performance").status_code == 404  # a scoring run has none


def test_outcomes_for_a_scoring_run_that_did_not_succeed_are_refused_and_not_stored(client, settings, small):
    from remarketing.runs import RunRecord, RunStore, Source

    store = RunStore(Storage(settings), settings.artifacts_root)
    failed, _ = store.create(
        RunRecord(
            run_id="scoring-failedforoutcomes",
            kind="scoring",
            dataset="bank-marketing",
            source=Source(uri=f"gs://{settings.landing_bucket}/weekly/gone.csv", generation=1),
            status="failed",
        )
    )
    before = set(Storage(settings).list(f"gs://{settings.landing_bucket}/outcomes/"))
    text = b"customer_id;y\nC1;yes\n"
    refused = client.post(f"/runs/{failed.run_id}/outcomes", files={"file": ("o.csv", text, "text/csv")})
    assert refused.status_code == 409
    assert "is failed: it published no list" in refused.json()["detail"]
    assert set(Storage(settings).list(f"gs://{settings.landing_bucket}/outcomes/")) == before


def test_experiments_are_refused_with_the_reason(client, trained):
    models = client.get("/models", params={"dataset": "bank-marketing"}).json()["models"]
    champion = next(m["version"] for m in models if "champion" in m["aliases"])
    cases = [
        ({"challenger": champion}, 422, f"v{champion} is the champion"),
        ({"challenger": "999"}, 404, "has no version 999"),
        ({"challenger": champion, "share": 1.5}, 422, "share must be between 0 and 1"),
        ({"challenger": champion, "dataset": "nope"}, 422, "unknown dataset 'nope'"),
    ]
    for body, status, said in cases:
        answer = client.post("/experiments", json=body)
        told = " ".join([answer.json()["detail"], *answer.json().get("problems", [])])
        assert answer.status_code == status and said in told, (body, told)
    state = client.get("/experiments", params={"dataset": "bank-marketing"}).json()
    assert state["running"] is None and isinstance(state["decisions"], list)
    stop = client.post("/experiments/stop", params={"dataset": "bank-marketing"})
    assert stop.status_code == 409 and "no bank-marketing experiment is running" in stop.json()["detail"]


def test_the_schedules_turn_takes_the_key_or_the_schedulers_token(app, client, anonymous, settings):
    turn = client.post("/retraining", params={"dataset": "thera-bank"})
    assert turn.status_code == 200 and turn.json() == {
        "retrain": False,
        "said": "no thera-bank history yet: outcomes grow it",
    }
    assert anonymous.post("/retraining").status_code == 401
    scheduled = settings.model_copy(update={"scheduler_service_account": "sched@p.iam.gserviceaccount.com"})
    built = app.dependency_overrides[deps.get_settings]
    app.dependency_overrides[deps.get_settings] = lambda: scheduled
    try:
        forged = anonymous.post("/retraining", headers={"Authorization": "Bearer not-a-google-token"})
    finally:
        app.dependency_overrides[deps.get_settings] = built
    assert forged.status_code == 401
    assert "neither a key nor an ID token of sched@p.iam.gserviceaccount.com" in forged.json()["detail"]


def test_cloud_schedulers_id_token_is_taken_in_place_of_the_key(app, anonymous, settings, monkeypatch):
    """Google's signature check cannot run here (no internet): it is faked at its outermost call, and it
    is asserted that it was asked for the configured audience."""
    import base64

    from google.oauth2 import id_token

    def segment(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    account = "sched@p.iam.gserviceaccount.com"
    token = ".".join([segment({"alg": "RS256"}), segment({"email": account}), "c2ln"])
    asked = []

    def verify(given, request, audience=None):
        asked.append((given, audience))
        return {"email": account, "email_verified": True, "aud": audience}

    monkeypatch.setattr(id_token, "verify_oauth2_token", verify)
    scheduled = settings.model_copy(
        update={"scheduler_service_account": account, "scheduler_audience": "remarketing-retraining"}
    )
    built = app.dependency_overrides[deps.get_settings]
    app.dependency_overrides[deps.get_settings] = lambda: scheduled
    try:
        accepted = anonymous.post(
            "/retraining", params={"dataset": "thera-bank"}, headers={"Authorization": f"Bearer {token}"}
        )
        other = ".".join([segment({"alg": "RS256"}), segment({"email": "someone@else.com"}), "c2ln"])
        refused = anonymous.post("/retraining", headers={"Authorization": f"Bearer {other}"})
        # the token is good only on the schedule's route
        elsewhere = anonymous.get("/runs", headers={"Authorization": f"Bearer {token}"})
    finally:
        app.dependency_overrides[deps.get_settings] = built
    assert accepted.status_code == 200 and accepted.json()["retrain"] is False
    assert asked == [(token, "remarketing-retraining")]  # someone else's token is refused before Google
    assert refused.status_code == 401 and elsewhere.status_code == 401


def test_a_handler_that_crashes_is_counted_as_a_500(stack):
    from frontend.api.main import create_app

    app = create_app(stack)

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("a bug")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/crash").status_code == 500
    assert (
        'remarketing_api_requests_total{method="GET",route="/crash",status="500"} 1.0'
        in client.get("/metrics").text
    )
