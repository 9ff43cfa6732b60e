"""MLflow's own client on an MLflow server behind Cloud Run's invoker check: MLflow's documented
request-auth plugin. The entry point ``mlflow.request_auth_provider`` (pyproject.toml) registers
:class:`GoogleIdTokenProvider`; ``MLFLOW_TRACKING_AUTH`` chooses it by name, which
:func:`tracking.registry.use_google_id_tokens` sets for a Cloud Run tracking URI. Every request of the
client (tracking, registry, proxied artifacts) then carries a Google ID token for the server it goes to,
minted per request from the cache of :mod:`cloud_auth.tokens`, so a run longer than a token's hour keeps
going."""

from __future__ import annotations

from typing import Any

import requests
from mlflow.tracking.request_auth.abstract_request_auth_provider import RequestAuthProvider

from cloud_auth.tokens import cloud_run_headers
from tracking.registry import AUTH_PROVIDER


class GoogleIdToken(requests.auth.AuthBase):
    """Adds ``X-Serverless-Authorization`` for the request's own address (nothing for other servers)."""

    def __call__(self, request: Any) -> Any:
        request.headers.update(cloud_run_headers(request.url))
        return request


class GoogleIdTokenProvider(RequestAuthProvider):
    def get_name(self) -> str:
        return AUTH_PROVIDER

    def get_auth(self) -> GoogleIdToken:
        return GoogleIdToken()
