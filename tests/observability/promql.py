"""Ask a live Prometheus over its HTTP API, and wait for exactly what a test asserts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"Prometheus refused {expr!r}: {body.get('error')}")
    return body["data"]["result"]


def targets(prometheus_url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus_url}/api/v1/targets", params={"state": "active"}, timeout=10)
    return response.json()["data"]["activeTargets"]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    """``check()``'s first truthy value; fails naming ``what`` and the last value seen."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        seen = check()
        if seen:
            return seen
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last seen: {seen!r})")
