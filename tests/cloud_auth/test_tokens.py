"""Tokens minted from the identity the code runs as: Google's credentials are faked where they are made
(tests/conftest.py), and what each call got is asserted."""

import pytest
from google.auth.exceptions import DefaultCredentialsError, TransportError

from cloud_auth import tokens
from remarketing.errors import RemarketingError, Unavailable

MLFLOW = "https://rmk-dev-mlflow-abc123-ew.a.run.app"


@pytest.mark.parametrize(
    "url, audience",
    [
        (f"{MLFLOW}/api/2.0/mlflow/registered-models/alias?name=x", MLFLOW),
        (MLFLOW, MLFLOW),
        ("http://127.0.0.1:5055", None),  # the local stack: nothing to mint
        ("https://mlflow.example.com", None),  # not Cloud Run: no invoker check to pass
        ("http://rmk-dev-mlflow-abc123-ew.a.run.app", None),  # Cloud Run answers https only
    ],
)
def test_only_a_cloud_run_address_gets_an_id_token_for_its_origin(url, audience):
    assert tokens.cloud_run_audience(url) == audience


def test_the_id_token_goes_in_x_serverless_authorization_for_the_callees_url(google_identity):
    assert tokens.cloud_run_headers(f"{MLFLOW}/api/2.0/mlflow/x") == {
        "X-Serverless-Authorization": f"Bearer id:{MLFLOW}#1"
    }
    assert tokens.cloud_run_headers("http://127.0.0.1:8085/runs") == {}
    assert google_identity.minted == [f"id:{MLFLOW}#1"]


def test_a_token_is_kept_while_valid_and_minted_again_once_expired(google_identity):
    assert tokens.access_token() == tokens.access_token() == "access#1"
    assert google_identity.scopes == [["https://www.googleapis.com/auth/cloud-platform"]]
    google_identity.expire()
    assert tokens.access_token() == "access#2"
    assert tokens.id_token(MLFLOW) == f"id:{MLFLOW}#3"  # one cache entry per audience


def test_no_credentials_is_said_plainly(google_identity, monkeypatch):
    import google.auth

    def none(**kwargs):
        raise DefaultCredentialsError("Your default credentials were not found")

    monkeypatch.setattr(google.auth, "default", none)
    with pytest.raises(RemarketingError, match="no Google credentials to call Kubeflow Pipelines"):
        tokens.access_token()


def test_a_metadata_server_that_does_not_answer_is_unavailable(google_identity, monkeypatch):
    from tests.conftest import FakeCredentials

    def refresh(self, request):
        raise TransportError("Failed to retrieve http://metadata.google.internal/...: timed out")

    monkeypatch.setattr(FakeCredentials, "refresh", refresh)
    with pytest.raises(Unavailable, match="Google's token service .* is unavailable"):
        tokens.id_token(MLFLOW)
