"""The app on Cloud Run calls the API on Cloud Run, which lets in only its invokers: each request carries
the app's Google ID token for the API's URL in X-Serverless-Authorization, beside the API key Cloud Run
leaves to the API, or (behind IAP) the signed-in person's assertion instead of any key. Google's
credentials, httpx's transport and IAP's signing key are faked (tests/conftest.py,
tests/cloud_auth/fake_iap.py); the assertion's verification is google-auth's."""

import dataclasses
import time

import httpx
import pytest

from cloud_auth.iap import ASSERTION_HEADER, FORWARDED_HEADER, CachedKeys, IapVerifier, InvalidAssertion
from frontend.app.client import ApiClient, ApiError, signed_in
from tests.cloud_auth.fake_iap import AUDIENCE, KeyFile, Signer

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


# --- behind Identity-Aware Proxy: the person signed in, never the operator's key -------------------------
def _verifier(signer: Signer) -> IapVerifier:
    return IapVerifier(AUDIENCE, keys=CachedKeys(KeyFile({signer.kid: signer.public_pem()})))


def test_the_app_verifies_the_pages_iap_assertion_and_forwards_it_without_a_key(
    google_identity, httpx_transport
):
    iap = Signer("iap-key-1")
    assertion = iap.sign("Ana.Analyst@Bank.example")
    user = signed_in({ASSERTION_HEADER: assertion}, AUDIENCE, _verifier(iap))
    assert user.email == "ana.analyst@bank.example"
    httpx_transport.answer = lambda request: httpx.Response(200, json={"runs": [], "count": 0})
    ApiClient(base_url=API, user=user).runs()
    (sent,) = httpx_transport.requests
    assert sent.headers[FORWARDED_HEADER] == assertion and "X-API-Key" not in sent.headers
    assert sent.headers["X-Serverless-Authorization"] == f"Bearer id:{API}#1"  # past Cloud Run, as before


def test_a_page_without_a_valid_assertion_is_not_signed_in():
    iap = Signer("iap-key-1")
    with pytest.raises(InvalidAssertion, match="this page came without IAP's signed assertion"):
        signed_in({}, AUDIENCE, _verifier(iap))
    with pytest.raises(InvalidAssertion, match="its signature does not verify"):
        signed_in({ASSERTION_HEADER: Signer(iap.kid).sign()}, AUDIENCE, _verifier(iap))


def test_an_app_behind_iap_calls_nothing_as_no_one_nor_with_the_operators_key(
    httpx_transport, monkeypatch, tmp_path
):
    """Outside a page (no request headers) nobody is signed in: the client refuses before any request,
    and never falls back to the operator's key (none is even read or made)."""
    monkeypatch.setenv("REMARKETING_IAP_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("REMARKETING_STATE_DIR", str(tmp_path))
    with pytest.raises(
        ApiError, match="you are not signed in through IAP: this page came without"
    ) as refused:
        ApiClient(base_url=API).runs()
    assert refused.value.status == 401 and httpx_transport.requests == []
    assert not (tmp_path / "secrets").exists()


def test_a_sign_in_older_than_iaps_ten_minutes_asks_to_load_the_page_again(httpx_transport):
    iap = Signer("iap-key-1")
    user = signed_in({ASSERTION_HEADER: iap.sign()}, AUDIENCE, _verifier(iap))
    stale = dataclasses.replace(user, expires=time.time() - 31)
    with pytest.raises(ApiError, match="over 10 minutes old .*: load the page again"):
        ApiClient(base_url=API, user=stale).runs()
    assert httpx_transport.requests == []
