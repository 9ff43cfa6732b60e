"""FastAPI dependencies as ``Annotated[..., Depends()]`` aliases, so tests swap any of them with
``app.dependency_overrides`` (settings, storage, registry, the access book, the upload limit).

Every route but the public ones (``/download``, ``/healthz``, ``/metrics``) declares the role it needs
(:data:`VIEWER`, :data:`ANALYST`, :data:`ADMIN`, ``remarketing.access``); the check leaves the principal
(or the refused one) on ``request.state`` for the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from remarketing.access import AccessBook, Principal, Role, allows, key_hash
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


def get_access(
    request: Request,
    settings: SettingsDep,
    storage: StorageDep,
    operator_key: Annotated[str, Depends(get_api_key)],
) -> AccessBook:
    return _app_cached(request, "access", lambda: AccessBook(storage, settings.artifacts_root, operator_key))


AccessDep = Annotated[AccessBook, Depends(get_access)]

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the principal's key")
_bearer = HTTPBearer(auto_error=False, description="the principal's key as a bearer token")
KeyHeader = Annotated[str | None, Security(_key_header)]
BearerHeader = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def _refused(request: Request, status: int, detail: str, who: str, role: str | None = None) -> HTTPException:
    """The refusal, named for the audit trail (the middleware appends it with the answer's status)."""
    request.state.principal = Principal(who, role or "")
    return HTTPException(
        status_code=status, detail=detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None
    )


def _principal(request: Request, book: AccessBook, given: str | None, needed: Role) -> Principal:
    if not given:
        raise _refused(
            request,
            401,
            "missing credentials: send your key as 'X-API-Key: <key>' or 'Authorization: Bearer <key>' "
            "(locally `remarketing up` prints the operator's; `remarketing keys create` makes others)",
            "anonymous",
        )
    principal = book.authenticate(given)
    if principal is None:
        raise _refused(request, 401, "wrong key or token", f"unknown key sha256:{key_hash(given)[:12]}")
    if principal.revoked:
        raise _refused(
            request, 401, f"the key of {principal.name!r} was revoked", principal.name, principal.role
        )
    if not allows(principal.role, needed):
        raise _refused(
            request,
            403,
            f"{principal.name!r} is a {principal.role}: this needs the {needed} role",
            principal.name,
            principal.role,
        )
    request.state.principal = principal
    return principal


def requires(needed: Role) -> Any:
    """The dependency of a route that needs ``needed`` (or a role that includes it)."""

    def check(request: Request, book: AccessDep, key: KeyHeader, bearer: BearerHeader) -> Principal:
        return _principal(request, book, key or (bearer.credentials if bearer else None), needed)

    check.__name__ = f"requires_{needed}"
    return Depends(check)


VIEWER, ANALYST, ADMIN = requires("viewer"), requires("analyst"), requires("admin")


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


def require_admin_or_scheduler(
    request: Request, settings: SettingsDep, book: AccessDep, key: KeyHeader, bearer: BearerHeader
) -> Principal:
    """An admin's key, or (in the cloud) Cloud Scheduler's ID token for ``scheduler_service_account``: the
    schedule's job never has to carry a key."""
    token = bearer.credentials if bearer else None
    account = settings.scheduler_service_account
    if account and not key and token and book.authenticate(token) is None:
        if _scheduler_identity(token, settings) == account:
            request.state.principal = Principal(f"scheduler {account}", "scheduler")
            return request.state.principal
        raise _refused(
            request, 401, f"the bearer token is neither a key nor an ID token of {account}", "unknown token"
        )
    return _principal(request, book, key or token, "admin")


ADMIN_OR_SCHEDULER = Depends(require_admin_or_scheduler)
