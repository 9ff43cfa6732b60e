"""FastAPI dependencies as ``Annotated[..., Depends()]`` aliases, so tests swap any of them with
``app.dependency_overrides`` (settings, storage, registry, the API key check, the upload limit)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from remarketing.errors import Unavailable
from remarketing.secrets import api_key
from remarketing.settings import Settings
from remarketing.storage import Storage


def get_settings() -> Settings:
    """Overridden by ``create_app`` with the settings it was built with (built once, at the edge)."""
    return Settings()


SettingsDep = Annotated[Settings, Depends(get_settings)]


def _app_cached(request: Request, key: str, make: Any) -> Any:
    """One instance per app (a storage client, a registry client), made on first use."""
    cache = request.app.state.__dict__.setdefault("_deps", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def get_storage(request: Request, settings: SettingsDep) -> Storage:
    return _app_cached(request, "storage", lambda: Storage(settings))


StorageDep = Annotated[Storage, Depends(get_storage)]


def get_registry(request: Request, settings: SettingsDep) -> Any:
    from tracking.registry import MlflowRegistry

    return _app_cached(request, "registry", lambda: MlflowRegistry(settings.tracking_uri))


RegistryDep = Annotated[Any, Depends(get_registry)]


def get_upload_limit(settings: SettingsDep) -> int:
    """The size limit of one upload in bytes (``REMARKETING_MAX_UPLOAD_BYTES``)."""
    return settings.max_upload_bytes


UploadLimitDep = Annotated[int, Depends(get_upload_limit)]


def get_reconciler() -> Any:
    """Brings an unfinished record in line with the process or KFP run behind it, when it is read."""
    from pipelines.launchers import reconcile

    return reconcile


ReconcileDep = Annotated[Any, Depends(get_reconciler)]


def get_api_key(request: Request, settings: SettingsDep) -> str:
    return _app_cached(request, "api_key", lambda: api_key(settings))


_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")
_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token")


def require_key(
    expected: Annotated[str, Depends(get_api_key)],
    key: Annotated[str | None, Security(_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    given = key or (bearer.credentials if bearer else None)
    if not given:
        raise HTTPException(
            status_code=401,
            detail="missing credentials: send the API key as 'X-API-Key: <key>' or "
            "'Authorization: Bearer <key>' (locally `remarketing up` prints it)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=401, detail="wrong API key or token", headers={"WWW-Authenticate": "Bearer"}
        )


AuthDep = Depends(require_key)


def _scheduler_identity(token: str, settings: Settings) -> str | None:
    """The service account a Google-signed ID token was minted for (Cloud Scheduler's OIDC token), if the
    token is valid for this API; None otherwise."""
    from google.auth import jwt
    from google.auth.exceptions import GoogleAuthError, TransportError
    from google.auth.transport.requests import Request as GoogleRequest
    from google.oauth2 import id_token

    if not settings.scheduler_audience:  # a token minted for any other service would do: refuse
        return None
    try:  # not even a token for the account: refused without fetching Google's certificates
        if jwt.decode(token, verify=False).get("email") != settings.scheduler_service_account:
            return None
        claims = id_token.verify_oauth2_token(token, GoogleRequest(), audience=settings.scheduler_audience)
    except TransportError as exc:
        raise Unavailable(
            "Google's token certificates",
            "https://www.googleapis.com/oauth2/v1/certs",
            "try again",
            reason=str(exc),
        ) from exc
    except (ValueError, GoogleAuthError):
        return None
    return claims.get("email") if claims.get("email_verified") else None


def require_key_or_scheduler(
    settings: SettingsDep,
    expected: Annotated[str, Depends(get_api_key)],
    key: Annotated[str | None, Security(_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """The API key, or (in the cloud) Cloud Scheduler's ID token for ``scheduler_service_account``: the
    schedule's job never has to carry the API key."""
    token = bearer.credentials if bearer else None
    account = settings.scheduler_service_account
    if account and not key and token and not hmac.compare_digest(token.encode(), expected.encode()):
        if _scheduler_identity(token, settings) == account:
            return
        raise HTTPException(
            status_code=401,
            detail=f"the bearer token is neither the API key nor an ID token of {account}",
            headers={"WWW-Authenticate": "Bearer"},
        )
    require_key(expected, key, bearer)


SchedulerAuthDep = Depends(require_key_or_scheduler)
