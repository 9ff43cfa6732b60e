"""MLflow on Cloud Run lets in only its invokers: both ways this project talks to it (MLflow's own client,
through its request-auth plugin, and the registry's REST reads with httpx) send a Google ID token for the
server's URL. Google's credentials and the HTTP transports are faked at the outermost client; what they
received is asserted."""

import json

import pytest
import requests

from tracking.registry import MlflowRegistry

MLFLOW = "https://rmk-dev-mlflow-abc123-ew.a.run.app"
VERSION = {"name": "remarketing-bank-marketing", "version": "3", "source": "gs://a/model-output/x/3"}


@pytest.fixture
def mlflow_auth_unset(monkeypatch):
    """MLFLOW_TRACKING_AUTH as a fresh process has it (unset), and unset again after the test."""
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "")
    monkeypatch.delenv("MLFLOW_TRACKING_AUTH")


@pytest.fixture
def requests_sent(monkeypatch):
    """requests' transport (MLflow's client uses it), faked: every request is kept and answered with
    one registered model."""
    sent = []

    def send(adapter, request, **kwargs):
        sent.append(request)
        response = requests.Response()
        response.status_code, response.request, response.url = 200, request, request.url
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps({"registered_model": {"name": VERSION["name"]}}).encode()
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    return sent


def test_mlflows_own_client_sends_an_id_token_for_the_server(
    mlflow_auth_unset, google_identity, requests_sent
):
    registry = MlflowRegistry(MLFLOW)
    assert registry.client.get_registered_model(VERSION["name"]).name == VERSION["name"]
    (sent,) = requests_sent
    assert sent.url.startswith(f"{MLFLOW}/api/2.0/mlflow/registered-models/get")
    assert sent.headers["X-Serverless-Authorization"] == f"Bearer id:{MLFLOW}#1"


def test_the_registrys_rest_reads_send_an_id_token_for_the_server(
    mlflow_auth_unset, google_identity, httpx_transport
):
    import httpx

    httpx_transport.answer = lambda request: httpx.Response(200, json={"model_version": VERSION})
    assert MlflowRegistry(MLFLOW).get(VERSION["name"], "3").version == "3"
    (sent,) = httpx_transport.requests
    assert str(sent.url).startswith(f"{MLFLOW}/api/2.0/mlflow/model-versions/get?")
    assert sent.headers["X-Serverless-Authorization"] == f"Bearer id:{MLFLOW}#1"


def test_a_local_tracking_server_gets_no_token(mlflow_auth_unset, google_identity, httpx_transport):
    import os

    import httpx

    httpx_transport.answer = lambda request: httpx.Response(200, json={"model_version": VERSION})
    MlflowRegistry("http://127.0.0.1:5055").get(VERSION["name"], "3")
    (sent,) = httpx_transport.requests
    assert "X-Serverless-Authorization" not in sent.headers
    assert google_identity.minted == [] and "MLFLOW_TRACKING_AUTH" not in os.environ
