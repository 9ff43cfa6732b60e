"""FastAPI dependencies as ``Annotated[..., Depends()]`` aliases, so tests swap any of them with
``app.dependency_overrides`` (settings, storage, registry, the customer lookup, the access book, IAP's
verifier, the upload limit).

Every route but the public ones (``/download``, ``/healthz``, ``/metrics``) declares the role it needs
(:data:`VIEWER`, :data:`ANALYST`, :data:`ADMIN`, ``remarketing.access``); the check leaves the principal
(or the refused one) on ``request.state`` for the audit trail.

Who calls is one of: a key (``X-API-Key`` or ``Authorization: Bearer``: a named principal, or the
operator's), or, in the cloud, a person signed in to the app through Identity-Aware Proxy, whose assertion
the app forwards (``X-Remarketing-IAP-Assertion``): verified here for the app's IAP audience
(``REMARKETING_IAP_AUDIENCE``, ``cloud_auth.iap``) and mapped to the role the access book binds the
email to. Never both at once; never an identity read from a plain header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cloud_auth.iap import FORWARDED_HEADER, IapVerifier, InvalidAssertion, verifier
from remarketing.access import AccessBook, Principal, Role, allows, key_hash
from remarketing.errors import Unavailable
from remarketing.lookup_table import Lookup, customer_lookup
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


def get_lookup(request: Request, settings: SettingsDep) -> Lookup:
    """The customer lookup table's reader (remarketing.lookup_table), one per app: a kept connection."""
    return _app_cached(request, "lookup", lambda: customer_lookup(settings))


LookupDep = Annotated[Lookup, Depends(get_lookup)]


def close_lookup(app: Any) -> None:
    """Close the reader, if one was made (the app's stop)."""
    lookup = app.state.__dict__.get("_deps", {}).pop("lookup", None)
    if lookup is not None:
        lookup.close()


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


def get_iap(settings: SettingsDep) -> IapVerifier | None:
    """The verifier of the app's IAP assertions; None where there is no IAP (locally)."""
    return verifier(settings.iap_audience) if settings.iap_audience else None


IapDep = Annotated[IapVerifier | None, Depends(get_iap)]

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the principal's key")
_bearer = HTTPBearer(auto_error=False, description="the principal's key as a bearer token")
_assertion = APIKeyHeader(
    name=FORWARDED_HEADER,
    scheme_name="IAPAssertion",  # its own name: two APIKeyHeader schemes would be one in the OpenAPI document
    auto_error=False,
    description="in the cloud: the IAP assertion of the person signed in to the app, forwarded by the app",
)
KeyHeader = Annotated[str | None, Security(_key_header)]
BearerHeader = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
AssertionHeader = Annotated[str | None, Security(_assertion)]


def _a(role: str) -> str:
    return f"{'an' if role[:1] in 'aeiou' else 'a'} {role}"


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
            f"{principal.name!r} is {_a(principal.role)}: this needs the {needed} role",
            principal.name,
            principal.role,
        )
    request.state.principal = principal
    return principal


def _person(
    request: Request, book: AccessBook, iap: IapVerifier | None, assertion: str, needed: Role
) -> Principal:
    """The person an IAP assertion forwarded by the app names, verified, with the role bound to them."""
    if iap is None:
        raise _refused(
            request,
            401,
            "this API takes no IAP assertion (REMARKETING_IAP_AUDIENCE is not set: there is no IAP here): "
            "send a key",
            "unverified IAP assertion",
        )
    try:
        person = iap.verify(assertion)
    except InvalidAssertion as exc:
        raise _refused(
            request, 401, f"the IAP assertion was refused: {exc}", "invalid IAP assertion"
        ) from None
    principal = book.identify(person.email)
    if principal is None:
        raise _refused(
            request,
            403,
            f"{person.email} has no role in this deployment: an admin grants one "
            f"(`remarketing identities grant {person.email} --role viewer|analyst|admin`)",
            person.email,
        )
    if principal.revoked:
        raise _refused(request, 403, f"the role of {person.email} was revoked", person.email, principal.role)
    if not allows(principal.role, needed):
        raise _refused(
            request,
            403,
            f"{person.email!r} is {_a(principal.role)}: this needs the {needed} role",
            person.email,
            principal.role,
        )
    request.state.principal = principal
    return principal


def _caller(
    request: Request,
    book: AccessBook,
    iap: IapVerifier | None,
    key: str | None,
    assertion: str | None,
    needed: Role,
) -> Principal:
    if assertion is not None:
        if key:
            raise _refused(
                request, 401, "send a key or an IAP assertion, not both: each names who calls", "anonymous"
            )
        return _person(request, book, iap, assertion, needed)
    return _principal(request, book, key, needed)


def requires(needed: Role) -> Any:
    """The dependency of a route that needs ``needed`` (or a role that includes it)."""

    def check(
        request: Request,
        book: AccessDep,
        iap: IapDep,
        key: KeyHeader,
        bearer: BearerHeader,
        assertion: AssertionHeader,
    ) -> Principal:
        return _caller(request, book, iap, key or (bearer.credentials if bearer else None), assertion, needed)

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
    request: Request,
    settings: SettingsDep,
    book: AccessDep,
    iap: IapDep,
    key: KeyHeader,
    bearer: BearerHeader,
    assertion: AssertionHeader,
) -> Principal:
    """An admin (a key, or a person through IAP), or (in the cloud) Cloud Scheduler's ID token for
    ``scheduler_service_account``: the schedule's job never has to carry a key."""
    token = bearer.credentials if bearer else None
    account = settings.scheduler_service_account
    if account and not key and not assertion and token and book.authenticate(token) is None:
        if _scheduler_identity(token, settings) == account:
            request.state.principal = Principal(f"scheduler {account}", "scheduler")
            return request.state.principal
        raise _refused(
            request, 401, f"the bearer token is neither a key nor an ID token of {account}", "unknown token"
        )
    return _caller(request, book, iap, key or token, assertion, "admin")


ADMIN_OR_SCHEDULER = Depends(require_admin_or_scheduler)
