"""Tokens minted from the identity the code runs as (Application Default Credentials: the metadata server
on Cloud Run, Cloud Functions and GKE with Workload Identity; never a key file).

- :func:`access_token`: an OAuth access token, for endpoints that check IAM themselves: GKE's DNS endpoint
  in front of Kubeflow Pipelines (``container.clusters.connect``, then Kubernetes RBAC).
- :func:`cloud_run_headers`: a Google ID token for a Cloud Run service (MLflow, the API), which lets in
  only its invokers, whose token names the service's URL as audience. It travels in
  ``X-Serverless-Authorization``: Cloud Run checks it there and leaves ``Authorization`` to the
  application (the API key).

Each is kept until shortly before it expires (they last an hour), then minted again. Only Cloud Run
addresses get an ID token: locally every service is on loopback and nothing is minted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from remarketing.errors import RemarketingError, Unavailable

SERVERLESS_AUTHORIZATION = "X-Serverless-Authorization"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# Terraform hands every caller the services' own run.app URLs (no custom domains), so the address says
# whether Cloud Run's invoker check stands in front of it.
CLOUD_RUN_DOMAIN = ".run.app"

_lock = threading.Lock()
_credentials: dict[str, Any] = {}  # "access" or an ID token's audience -> its credentials


def cloud_run_audience(url: str) -> str | None:
    """The audience of an ID token for the Cloud Run service at ``url`` (its origin), or None when the
    address is not a Cloud Run service."""
    parts = urlsplit(url)
    if parts.scheme == "https" and (parts.hostname or "").endswith(CLOUD_RUN_DOMAIN):
        return f"https://{parts.netloc}"
    return None


def _token(key: str, make: Callable[[Any], Any], purpose: str) -> str:
    """The cached credentials' token, refreshed when it expired (or was never fetched)."""
    from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError, TransportError
    from google.auth.transport.requests import Request

    request = Request()
    with _lock:
        try:
            credentials = _credentials.get(key) or make(request)
            if not credentials.valid:
                credentials.refresh(request)
        except TransportError as exc:
            raise Unavailable(
                "Google's token service (the metadata server)",
                "metadata.google.internal",
                f"try again; it mints the token to {purpose}",
                reason=str(exc),
            ) from exc
        except DefaultCredentialsError as exc:
            raise RemarketingError(
                f"no Google credentials to {purpose}: run where the metadata server answers (Cloud Run, "
                f"Cloud Functions, GKE) or set GOOGLE_APPLICATION_CREDENTIALS ({exc})"
            ) from exc
        except GoogleAuthError as exc:
            raise RemarketingError(f"Google refused a token to {purpose}: {exc}") from exc
        _credentials[key] = credentials
        return str(credentials.token)


def access_token(purpose: str = "call Kubeflow Pipelines through GKE") -> str:
    """This identity's OAuth access token (cloud-platform scope); ``purpose`` is said when none can be had."""
    import google.auth

    return _token("access", lambda request: google.auth.default(scopes=[CLOUD_PLATFORM])[0], purpose)


def id_token(audience: str) -> str:
    """A Google ID token of this identity for ``audience``."""
    from google.oauth2 import id_token as google_id_token

    return _token(
        audience,
        lambda request: google_id_token.fetch_id_token_credentials(audience, request=request),
        f"call {audience}",
    )


def cloud_run_headers(url: str) -> dict[str, str]:
    """The header a request to ``url`` needs to pass Cloud Run's invoker check; none for other addresses."""
    audience = cloud_run_audience(url)
    return {} if audience is None else {SERVERLESS_AUTHORIZATION: f"Bearer {id_token(audience)}"}


def forget() -> None:
    """Drop every cached token (a test starts from none)."""
    with _lock:
        _credentials.clear()
