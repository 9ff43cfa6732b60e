"""The app's only way to the system: the project's API over HTTP (httpx), with the API key.

The API address comes from ``REMARKETING_API_URL`` (default ``http://127.0.0.1:<api_port>``) and the key
from ``remarketing.secrets.api_key(Settings())``: ``REMARKETING_API_KEY``, or the key generated in the
state folder that ``remarketing up`` shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx

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


class ApiClient:
    def __init__(self, base_url: str | None = None, key: str | None = None, timeout: float = 60.0) -> None:
        settings = Settings()
        self.base_url = (base_url or api_url(settings)).rstrip("/")
        self._key = key if key is not None else api_key(settings)
        self._timeout = timeout

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self._key, **kwargs.pop("headers", {})}
        try:
            response = httpx.request(
                method, self.base_url + path, headers=headers, timeout=self._timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise ApiError(
                0, f"the API at {self.base_url} cannot be reached ({exc}): is `remarketing up` running?"
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
        )
        return dict(response.json())

    # --- the routes the pages use ------------------------------------------------------------------
    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}"))

    def runs(self, kind: str | None = None, status: str | None = None, limit: int = 200) -> list[dict]:
        return list(self.get("/runs", kind=kind, status=status, limit=limit)["runs"])

    def predictions(self, run_id: str, limit: int = 20) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}/predictions", limit=limit))

    def explanation(self, run_id: str, customer_id: str) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}/explanations", customer_id=customer_id))

    def models(self, dataset: str | None = None) -> list[dict[str, Any]]:
        return list(self.get("/models", dataset=dataset)["models"])

    def plot(self, version: str, name: str, dataset: str) -> bytes:
        return self.get_bytes(f"/models/{version}/plots/{name}", dataset=dataset)

    def shap(self, version: str, dataset: str) -> dict[str, Any]:
        return dict(self.get(f"/models/{version}/shap", dataset=dataset))

    def download(self, url: str) -> bytes:
        """The predictions file by its URL (signed: no key needed, none is sent)."""
        response = httpx.get(url, timeout=self._timeout)
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        return response.content
