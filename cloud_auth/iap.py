"""Who the person behind Identity-Aware Proxy is, verified: IAP signs every request it lets through to the
app with a JWT in ``X-Goog-IAP-JWT-Assertion`` (ES256, issuer ``https://cloud.google.com/iap``, audience
the app's: ``/projects/<number>/locations/<region>/services/<name>`` when IAP is on the Cloud Run service
itself, ``/projects/<number>/global/backendServices/<id>`` behind a load balancer; it lasts 10 minutes).

The app verifies the assertion of its page's request and forwards it to the API in
``X-Remarketing-IAP-Assertion`` (a name of the project's own: the ``X-Goog-`` names belong to Google's
front ends); the API verifies it again, for the same audience, and maps the email to a role
(``remarketing.access``). Nothing is read from IAP's unsigned headers (``X-Goog-Authenticated-User-*``).

Verification is google-auth's (``google.oauth2.id_token.verify_token``) against IAP's keys in PEM
(``https://www.gstatic.com/iap/verify/public_key``, the format of Google's own Python sample): that path
checks the signature, requires ``iat`` and ``exp`` with the 30 s of skew IAP's documentation allows, and
the audience. (Its JWK path hands the token to PyJWT without the skew and without requiring ``exp``.)
The keys are kept for as long as their response's ``Cache-Control`` allows (at most an hour), and fetched
again when an assertion names a key not among them (at most once a minute), so a request does not wait on
gstatic.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from remarketing.errors import RemarketingError, Unavailable

ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"  # what IAP adds to each request it lets through
FORWARDED_HEADER = "X-Remarketing-IAP-Assertion"  # the same assertion, from the app to the API
CERTS_URL = "https://www.gstatic.com/iap/verify/public_key"
ISSUER = "https://cloud.google.com/iap"
ALGORITHM = "ES256"
CLOCK_SKEW_SECONDS = 30
KEYS_KEPT_SECONDS = 3600  # at most, whatever Cache-Control says
KEYS_KEPT_DEFAULT_SECONDS = 300  # when it says nothing
REFETCH_AFTER_SECONDS = 60  # an unknown key id fetches the keys again, not more often than this
FETCH_TIMEOUT_SECONDS = 10
MAX_AGE = re.compile(r"max-age=(\d+)")


class InvalidAssertion(RemarketingError):
    """The assertion is not one IAP signed for this app now. ``expired``: it was, but its 10 minutes are
    over (the page must be loaded again for IAP to sign a new one)."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        self.expired = expired
        super().__init__(reason)


@dataclass(frozen=True)
class IapUser:
    """A person IAP let through, as its signed assertion names them."""

    email: str  # lower case
    subject: str  # IAP's stable id of the account (accounts.google.com:<number>)
    expires: float  # unix seconds
    assertion: str = field(repr=False)

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires + CLOCK_SKEW_SECONDS


class CachedKeys:
    """google-auth's transport for the keys' fetch (``transport(url, method=...)`` returning a response
    with ``status``, ``headers`` and ``data``), keeping a good answer for as long as its ``Cache-Control``
    allows (at most :data:`KEYS_KEPT_SECONDS`)."""

    def __init__(
        self, transport: Callable[..., Any] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._transport, self._clock = transport, clock
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[Any, float, float]] = {}  # url -> (response, fetched at, kept for)

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        with self._lock:
            kept = self._kept.get(url)
            if kept and self._clock() - kept[1] < kept[2]:
                return kept[0]
            if self._transport is None:
                from google.auth.transport.requests import Request

                self._transport = Request()
            kwargs.setdefault("timeout", FETCH_TIMEOUT_SECONDS)
            response = self._transport(url, method=method, **kwargs)
            if response.status == 200:
                control = str((response.headers or {}).get("cache-control", ""))
                age = MAX_AGE.search(control)
                kept_for = min(int(age[1]), KEYS_KEPT_SECONDS) if age else KEYS_KEPT_DEFAULT_SECONDS
                self._kept[url] = (response, self._clock(), kept_for)
            return response

    def forget(self, url: str) -> bool:
        """Drop the kept answer for ``url`` if it is older than :data:`REFETCH_AFTER_SECONDS` (an assertion
        named a key it does not hold: IAP may have published a new one). True when dropped."""
        with self._lock:
            kept = self._kept.get(url)
            if kept and self._clock() - kept[1] >= REFETCH_AFTER_SECONDS:
                del self._kept[url]
                return True
            return False


def _reason(exc: Exception) -> InvalidAssertion:
    """google-auth's finding in words a person can act on (never the token, which some of its messages
    quote)."""
    text = str(exc)
    if text.startswith("Token expired"):
        return InvalidAssertion(
            "it expired (IAP signs one for 10 minutes: load the page again for a new one)", expired=True
        )
    if text.startswith("Token used too early"):
        return InvalidAssertion("it is dated in the future (are the clocks apart?)")
    if "wrong audience" in text:
        return InvalidAssertion("it was signed for another application than this deployment's app")
    if text.startswith("Certificate for key id"):
        return InvalidAssertion("it names a key IAP does not publish")
    if "Could not verify token signature" in text:
        return InvalidAssertion("its signature does not verify")
    return InvalidAssertion("it is not a JWT signed by IAP")


class IapVerifier:
    """Verifies IAP's assertions for one audience (the app's)."""

    def __init__(self, audience: str, *, keys: CachedKeys | None = None, certs_url: str = CERTS_URL) -> None:
        self.audience, self.certs_url = audience, certs_url
        self.keys = keys or CachedKeys()

    def _claims(self, assertion: str) -> Any:
        from google.auth import exceptions, jwt
        from google.oauth2 import id_token

        try:
            algorithm = jwt.decode_header(assertion).get("alg")
        except (ValueError, TypeError, exceptions.GoogleAuthError):
            raise InvalidAssertion("it is not a JWT signed by IAP") from None
        if algorithm != ALGORITHM:
            raise InvalidAssertion(f"it is signed with {algorithm!r}, not {ALGORITHM} as IAP signs")
        for attempt in (1, 2):
            try:
                return id_token.verify_token(
                    assertion,
                    self.keys,
                    audience=self.audience,
                    certs_url=self.certs_url,
                    clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
                )
            except exceptions.TransportError as exc:
                raise Unavailable(
                    "IAP's public keys", self.certs_url, "try again in a moment", reason=str(exc)
                ) from exc
            except (ValueError, TypeError, exceptions.GoogleAuthError) as exc:
                unknown_key = str(exc).startswith("Certificate for key id")
                if attempt == 1 and unknown_key and self.keys.forget(self.certs_url):
                    continue
                raise _reason(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def verify(self, assertion: str) -> IapUser:
        """The person ``assertion`` names, or :class:`InvalidAssertion` saying why not;
        :class:`~remarketing.errors.Unavailable` when IAP's keys cannot be fetched."""
        claims = self._claims(assertion)
        if claims.get("iss") != ISSUER:
            raise InvalidAssertion(f"it was issued by {claims.get('iss')!r}, not IAP")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise InvalidAssertion("it names no email")
        return IapUser(
            email=email.strip().lower(),
            subject=str(claims.get("sub", "")),
            expires=float(claims["exp"]),
            assertion=assertion,
        )


@lru_cache(maxsize=4)
def verifier(audience: str) -> IapVerifier:
    """The process's verifier for ``audience`` (one key cache for every request and page)."""
    return IapVerifier(audience)
