"""The app on Cloud Run calls the API on Cloud Run, which lets in only its invokers: each request carries
the app's Google ID token for the API's URL in X-Serverless-Authorization, beside the API key Cloud Run
leaves to the API. Google's credentials and httpx's transport are faked (tests/conftest.py)."""

import httpx
import pytest

from frontend.app.client import ApiClient, ApiError

API = "https://rmk-dev-api-abc123-ew.a.run.app"


def test_the_app_sends_the_api_key_and_an_id_token_for_the_api(google_identity, httpx_transport):
    httpx_transport.answer = lambda request: httpx.Response(200, json={"runs": [], "count": 0})
    client = ApiClient(base_url=API, key="rmk_key")
    assert client.runs() == []
    client.upload("week.csv", b"customer_id;age\nC1;40\n", dry_run=True)
    for sent in httpx_transport.requests:
        assert sent.headers["X-API-Key"] == "rmk_key"
        assert sent.headers["X-Serverless-Authorization"] == f"Bearer id:{API}#1"
    assert len(httpx_transport.requests) == 2 and google_identity.minted == [f"id:{API}#1"]


def test_the_local_api_gets_the_key_only(google_identity, httpx_transport):
    httpx_transport.answer = lambda request: httpx.Response(200, json={"runs": [], "count": 0})
    ApiClient(base_url="http://127.0.0.1:8085", key="rmk_key").runs()
    (sent,) = httpx_transport.requests
    assert "X-Serverless-Authorization" not in sent.headers and google_identity.minted == []


def test_no_token_for_the_api_is_said_on_the_page(google_identity, monkeypatch):
    import google.auth.exceptions

    def none(audience, request=None, **kwargs):
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found")

    monkeypatch.setattr("google.oauth2.id_token.fetch_id_token_credentials", none)
    with pytest.raises(ApiError, match=f"the API at {API} cannot be called: no Google credentials to call"):
        ApiClient(base_url=API, key="rmk_key").runs()
