"""A secret's value from Secret Manager, read as the identity the code runs as: how a pipeline's task
gets the secrets its settings name (``remarketing.settings.SECRET_SOURCES``) without any of them ever
being a pipeline parameter. On GKE the run pods act as the pipelines' service account (Workload
Identity), which Terraform lets read exactly those secrets.

One REST call (``versions/<v>:access``) with an access token (:mod:`cloud_auth.tokens`), so no client
library is needed in the components image. Secret Manager out of reach or failing is
:class:`Unavailable`; a secret that does not exist or may not be read is said so (the task's account and
the secret named).
"""

from __future__ import annotations

import base64
import binascii

import httpx

from cloud_auth.tokens import access_token
from remarketing.errors import RemarketingError, Unavailable

API = "https://secretmanager.googleapis.com/v1"


def secret_value(name: str, *, timeout: float = 10.0) -> str:
    """The value of secret ``name`` (``projects/<p>/secrets/<s>``: its latest version; or one version's
    name), as text."""
    version = name if "/versions/" in name else f"{name}/versions/latest"
    token = access_token(f"read the secret {version} from Secret Manager")
    try:
        response = httpx.get(
            f"{API}/{version}:access", headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
    except httpx.TransportError as exc:
        raise _unavailable(version, f"it did not answer: {type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise _unavailable(version, f"HTTP {response.status_code}")
    if response.status_code in (403, 404):
        raise RemarketingError(
            f"Secret Manager refused {version} (HTTP {response.status_code}): the secret does not exist, or "
            "this task's service account (the pipelines', through Workload Identity) may not read it: "
            "Terraform grants roles/secretmanager.secretAccessor on it (docs/deploy.md)"
        )
    if response.status_code >= 400:
        raise RemarketingError(f"Secret Manager refused {version}: HTTP {response.status_code}")
    try:
        return base64.b64decode(response.json()["payload"]["data"], validate=True).decode("utf-8")
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise RemarketingError(f"Secret Manager's answer for {version} holds no readable value") from exc


def _unavailable(version: str, reason: str) -> Unavailable:
    return Unavailable(
        "Secret Manager",
        version,
        "the step fails and can be retried; if this lasts, check Secret Manager's status",
        reason=reason,
    )
