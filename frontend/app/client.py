"""The app's only way to the system: the project's API over HTTP (httpx), as the person using the app.

The API address comes from ``REMARKETING_API_URL`` (default ``http://127.0.0.1:<api_port>``). Who calls:

- in the cloud, behind Identity-Aware Proxy (``REMARKETING_IAP_AUDIENCE`` set): the person signed in. IAP
  signs an assertion of who they are for the page's request (``X-Goog-IAP-JWT-Assertion``); the app
  verifies it (:mod:`cloud_auth.iap`) and forwards it to the API (``X-Remarketing-IAP-Assertion``), which
  verifies it again and acts with the role bound to that email. No key is sent, and none is held: without
  a valid assertion nothing is called. IAP signs for 10 minutes; a page open longer is loaded again.
- locally (no IAP): the operator, with ``remarketing.secrets.api_key(Settings())``:
  ``REMARKETING_API_KEY``, or the key generated in the state folder that ``remarketing up`` shows.

On Cloud Run the API lets in only its invokers: each request also carries the app's Google ID token for
the API (``X-Serverless-Authorization``, :mod:`cloud_auth`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from cloud_auth.iap import (
    ASSERTION_HEADER,
    FORWARDED_HEADER,
    IapUser,
    IapVerifier,
    InvalidAssertion,
    verifier,
)
from cloud_auth.tokens import cloud_run_headers
from remarketing.errors import RemarketingError, Unavailable
from remarketing.secrets import api_key
from remarketing.settings import Settings

FINISHED = ("success", "failed")


@dataclass
class ApiError(Exception):
    status: int
    detail: str
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.detail


def api_url(settings: Settings | None = None) -> str:
    settings = settings or Settings()
    return os.environ.get("REMARKETING_API_URL", f"http://127.0.0.1:{settings.api_port}").rstrip("/")


# The API names a service of its own that is down: at once when it refuses connections, after its own
# bounded retries (storage 8 s, the registry 3 x 5 s) when it hangs; this waits longer than those, so the
# page says which service it was. Only an upload, which carries the whole file, may take longer.
TIMEOUT = httpx.Timeout(30.0, connect=3.0)
UPLOAD_TIMEOUT = httpx.Timeout(300.0, connect=3.0)


def signed_in(headers: Mapping[str, str], audience: str, check: IapVerifier | None = None) -> IapUser:
    """The person IAP let through to this page, from the assertion it signed for the page's request
    (``headers``: the request's, as ``st.context.headers`` gives them), verified by ``check`` (default:
    the process's verifier of ``audience``); :class:`InvalidAssertion` when there is none or it does not
    verify."""
    assertion = headers.get(ASSERTION_HEADER)
    if not assertion:
        raise InvalidAssertion(
            "this page came without IAP's signed assertion: the app is set up for Identity-Aware Proxy "
            "(REMARKETING_IAP_AUDIENCE) and acts only as a person IAP signed in; open it at its address"
        )
    return (check or verifier(audience)).verify(assertion)


def _page_user(audience: str) -> IapUser:
    import streamlit as st

    return signed_in(st.context.headers, audience)


class ApiClient:
    """``user``: the person IAP signed in (forwarded to the API); ``key``: an API key. Neither given: the
    person of this page when the app is behind IAP (``REMARKETING_IAP_AUDIENCE``), else the operator's
    key."""

    def __init__(
        self,
        base_url: str | None = None,
        key: str | None = None,
        timeout: httpx.Timeout = TIMEOUT,
        *,
        user: IapUser | None = None,
    ) -> None:
        settings = Settings()
        self.base_url = (base_url or api_url(settings)).rstrip("/")
        self._timeout = timeout
        self._key, self.user = key, user
        self._refused: ApiError | None = None
        if key is None and user is None:
            if settings.iap_audience:  # never the operator's key: who is signed in, or no one
                try:
                    self.user = _page_user(settings.iap_audience)
                except InvalidAssertion as exc:
                    self._refused = ApiError(401, f"you are not signed in through IAP: {exc}")
                except Unavailable as exc:
                    self._refused = ApiError(503, f"your IAP sign-in cannot be checked now: {exc}")
            else:
                self._key = api_key(settings)

    def _credentials(self) -> dict[str, str]:
        if self._refused:
            raise ApiError(self._refused.status, self._refused.detail)
        if self.user is not None:
            if self.user.expired():
                raise ApiError(
                    401,
                    "your sign-in on this page is over 10 minutes old (IAP signs it for 10 minutes): load "
                    "the page again",
                )
            return {FORWARDED_HEADER: self.user.assertion}
        return {"X-API-Key": self._key or ""}

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        credentials = self._credentials()
        try:
            identity = cloud_run_headers(self.base_url)
        except RemarketingError as exc:  # no ID token, no way past Cloud Run: said like an API that is down
            raise ApiError(0, f"the API at {self.base_url} cannot be called: {exc}") from None
        headers = {**credentials, **identity, **kwargs.pop("headers", {})}
        timeout = kwargs.pop("timeout", self._timeout)
        try:
            response = httpx.request(method, self.base_url + path, headers=headers, timeout=timeout, **kwargs)
        except httpx.ConnectError:
            raise ApiError(
                0,
                f"the API at {self.base_url} is down (nothing answers there): start it with `remarketing up`",
            ) from None
        except httpx.TimeoutException:
            raise ApiError(
                0, f"the API at {self.base_url} did not answer in time: see `remarketing status` and its log"
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(
                0, f"the API at {self.base_url} cannot be reached ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
            detail = body.get("detail")
            if not isinstance(detail, str):  # FastAPI's own validation errors
                detail = "; ".join(
                    f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in detail or []
                )
            raise ApiError(response.status_code, detail, list(body.get("problems") or []))
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def get_bytes(self, path: str, **params: Any) -> bytes:
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None}).content

    def upload(self, name: str, data: bytes, *, dry_run: bool = False, **form: Any) -> dict[str, Any]:
        fields = {k: str(v) for k, v in form.items() if v not in (None, "")}
        response = self._request(
            "POST",
            "/uploads",
            params={"dry_run": "true"} if dry_run else None,
            files={"file": (name, data, "text/csv")},
            data=fields,
            timeout=UPLOAD_TIMEOUT,
        )
        return dict(response.json())

    # --- the routes the pages use ------------------------------------------------------------------
    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}"))

    def runs(
        self, kind: str | None = None, status: str | None = None, dataset: str | None = None, limit: int = 200
    ) -> list[dict]:
        return list(self.get("/runs", kind=kind, status=status, dataset=dataset, limit=limit)["runs"])

    def send_outcomes(self, run_id: str, name: str, data: bytes) -> dict[str, Any]:
        response = self._request(
            "POST",
            f"/runs/{run_id}/outcomes",
            files={"file": (name, data, "text/csv")},
            timeout=UPLOAD_TIMEOUT,
        )
        return dict(response.json())

    def performance(self, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}/performance"))

    def predictions(self, run_id: str, limit: int = 20) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}/predictions", limit=limit))

    def explanation(self, run_id: str, customer_id: str) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}/explanations", customer_id=customer_id))

    def customer(self, customer_id: str, dataset: str, history: int = 12) -> dict[str, Any]:
        from urllib.parse import quote

        return self.get(f"/customers/{quote(customer_id, safe='')}", dataset=dataset, history=history)

    def rules(self) -> dict[str, Any]:
        """The datasets with their file rules, the upload limit and the budget's rules."""
        return dict(self.get("/datasets"))

    def models(self, dataset: str | None = None) -> list[dict[str, Any]]:
        return list(self.get("/models", dataset=dataset)["models"])

    def plot(self, version: str, name: str, dataset: str) -> bytes:
        return self.get_bytes(f"/models/{version}/plots/{name}", dataset=dataset)

    def shap(self, version: str, dataset: str) -> dict[str, Any]:
        return dict(self.get(f"/models/{version}/shap", dataset=dataset))

    def experiments(self, dataset: str) -> dict[str, Any]:
        return self.get("/experiments", dataset=dataset)

    def start_experiment(self, dataset: str, challenger: str, share: float) -> dict[str, Any]:
        body = {"dataset": dataset, "challenger": challenger, "share": share}
        return self._request("POST", "/experiments", json=body).json()

    def stop_experiment(self, dataset: str) -> dict[str, Any]:
        return self._request("POST", "/experiments/stop", params={"dataset": dataset}).json()

    def operations(self, minutes: int = 60) -> dict[str, Any]:
        """The key dashboard panels over the last ``minutes``, the scrape targets, the firing alerts."""
        return dict(self.get("/operations", minutes=minutes))

    def download(self, url: str) -> bytes:
        """The predictions file by its URL (signed: no key needed, none is sent)."""
        try:
            response = httpx.get(url, timeout=UPLOAD_TIMEOUT)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"the predictions link cannot be reached ({type(exc).__name__})") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, str(detail))
        return response.content
