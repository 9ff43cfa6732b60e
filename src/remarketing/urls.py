"""The predictions URL, minted by one function when someone reads a run (never stored in a record).

- gcp: a V4 signed URL of the object (short expiry), signed by IAM as ``signing_service_account`` or by
  the client's own key.
- local: ``<api>/download?uri=...&generation=...&expires=...&signature=...`` on the project's API process,
  an HMAC-SHA256 over the address, generation and expiry. The signature is the credential: the URL alone
  downloads the file, and it stops working after expiry, after any change to its query, or once the
  object is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from remarketing.errors import RemarketingError
from remarketing.secrets import url_signing_key
from remarketing.settings import Settings
from remarketing.storage import Storage, split_gs


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires: int  # unix seconds


class InvalidSignature(RemarketingError):
    """The download link is wrong, tampered with, expired, or its file has changed."""


def _signature(key: bytes, uri: str, generation: int, expires: int) -> str:
    return hmac.new(key, f"{uri}\n{generation}\n{expires}".encode(), hashlib.sha256).hexdigest()


def mint(
    settings: Settings, uri: str, *, storage: Storage | None = None, ttl: int | None = None
) -> SignedUrl:
    storage = storage or Storage(settings)
    ttl = ttl or settings.predictions_url_ttl_seconds
    expires = int(time.time()) + ttl
    if settings.mode == "gcp":
        bucket, name = split_gs(uri)
        blob = storage.client.bucket(bucket).blob(name)
        kwargs: dict = {"version": "v4", "expiration": timedelta(seconds=ttl), "method": "GET"}
        if settings.signing_service_account:  # no key on Cloud Run: IAM signs with the account's token
            import google.auth
            import google.auth.transport.requests

            credentials, _ = google.auth.default()
            credentials.refresh(google.auth.transport.requests.Request())
            kwargs |= {
                "service_account_email": settings.signing_service_account,
                "access_token": credentials.token,
            }
        return SignedUrl(blob.generate_signed_url(**kwargs), expires)
    generation = storage.stat(uri).generation
    query = {
        "uri": uri,
        "generation": generation,
        "expires": expires,
        "signature": _signature(url_signing_key(settings), uri, generation, expires),
    }
    return SignedUrl(f"http://127.0.0.1:{settings.api_port}/download?{urlencode(query)}", expires)


def verify(settings: Settings, uri: str, generation: int, expires: int, signature: str) -> None:
    """Raise :class:`InvalidSignature` unless the query is exactly one that :func:`mint` made, unexpired."""
    expected = _signature(url_signing_key(settings), uri, generation, expires)
    if len(signature) < len(expected):  # lengths are public: this tells nothing about the signature
        raise InvalidSignature(
            "this download link is incomplete (its signature is cut short): copy the whole predictions URL"
        )
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignature("this download link is not valid (it was changed or not issued here)")
    if expires < time.time():
        raise InvalidSignature("this download link has expired: ask for the run again to get a fresh one")
