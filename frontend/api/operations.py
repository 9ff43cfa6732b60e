"""``GET /operations``: the dashboards' key panels over the last minutes, Prometheus's scrape targets and the
firing alerts, read from Prometheus's HTTP API at ``settings.prometheus_url`` (the app's Operations page
draws them; Grafana draws every panel from the same declarations, ``observability.dashboards``)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query

from frontend.api.deps import VIEWER, SettingsDep
from observability.dashboards import DASHBOARDS, KEY_PANELS, UNIT_WORDS, Panel
from remarketing.errors import Unavailable
from remarketing.settings import Settings

# Shorter than the app's 30 s: a Prometheus that hangs is named by the API, not reported as the API's own
# silence.
TIMEOUT = httpx.Timeout(10.0, connect=2.0)
POINTS = 240  # per series: enough for a line chart, far below Prometheus's 11,000-point limit
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
DASHBOARD_TITLES = {d.name: d.title for d in DASHBOARDS}

router = APIRouter(
    dependencies=[VIEWER], responses={401: {"description": "no key, or a wrong or revoked one"}}
)


class QueryFailed(Exception):
    """Prometheus answered, but refused or could not run one query (only that panel goes without)."""


def _unavailable(settings: Settings, reason: str) -> Unavailable:
    local = settings.mode == "local"
    what_to_do = (
        "start the local stack with `remarketing up` (`remarketing status` says what runs)"
        if local
        else "check the Managed Prometheus frontend that REMARKETING_PROMETHEUS_URL names"
    )
    return Unavailable("Prometheus", settings.prometheus_url or "(no address set)", what_to_do, reason=reason)


async def _get(http: httpx.AsyncClient, settings: Settings, path: str, **params: Any) -> Any:
    """The ``data`` of one Prometheus API answer; Unavailable when Prometheus does not answer at all."""
    try:
        response = await http.get(path, params=params)
    except httpx.ConnectError:
        raise _unavailable(settings, "down: nothing answers there") from None
    except httpx.TimeoutException:
        raise _unavailable(settings, f"it did not answer within {TIMEOUT.read:.0f} s") from None
    except httpx.HTTPError as exc:
        raise _unavailable(settings, f"it cannot be reached: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        raise _unavailable(
            settings, f"it answered {response.status_code} without Prometheus's JSON"
        ) from None
    if body.get("status") != "success":
        raise QueryFailed(f"Prometheus answered {response.status_code}: {body.get('error') or body}")
    return body["data"]


def _number(value: str) -> float | None:
    """A sample's value; NaN and infinities (a quantile of no requests) as gaps, which JSON can carry."""
    number = float(value)
    return number if math.isfinite(number) else None


def _name(legend: str, labels: dict[str, str]) -> str:
    named = LEGEND_LABEL.sub(lambda m: labels.get(m.group(1), ""), legend).strip()
    return named or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


async def _panel(
    http: httpx.AsyncClient, settings: Settings, panel: Panel, span: dict[str, float]
) -> dict[str, Any]:
    series, errors = [], []
    for query in panel.queries:
        try:
            data = await _get(http, settings, "/api/v1/query_range", query=query.expr, **span)
        except QueryFailed as exc:
            errors.append(str(exc))
            continue
        series.extend(
            {
                "name": _name(query.legend, result["metric"]),
                "labels": result["metric"],
                "points": [[float(t), _number(v)] for t, v in result["values"]],
            }
            for result in data["result"]
        )
    return {
        "id": panel.slug,
        "dashboard": panel.dashboard,
        "dashboard_title": DASHBOARD_TITLES[panel.dashboard],
        "title": panel.title,
        "description": panel.description,
        "unit": panel.unit,
        "unit_text": UNIT_WORDS.get(panel.unit, panel.unit),
        "threshold": panel.threshold,
        "queries": [query.expr for query in panel.queries],
        "series": sorted(series, key=lambda s: s["name"]),
        "error": "; ".join(errors) or None,
    }


async def _targets(http: httpx.AsyncClient, settings: Settings) -> list[dict[str, Any]]:
    data = await _get(http, settings, "/api/v1/targets", state="active")
    targets = [
        {
            "job": target["labels"].get("job", ""),
            "instance": target["labels"].get("instance", ""),
            "health": target["health"],  # up, down or unknown (not scraped yet)
            "last_error": target.get("lastError") or None,
            "last_scrape": target.get("lastScrape"),
            "scrape_url": target.get("scrapeUrl"),
        }
        for target in data["activeTargets"]
    ]
    return sorted(targets, key=lambda t: (t["job"], t["instance"]))


async def _alerts(http: httpx.AsyncClient, settings: Settings) -> list[dict[str, Any]]:
    data = await _get(http, settings, "/api/v1/alerts")
    firing = [
        {
            "name": alert["labels"].get("alertname", ""),
            "severity": alert["labels"].get("severity"),
            "summary": alert.get("annotations", {}).get("summary"),
            "description": alert.get("annotations", {}).get("description"),
            "active_at": alert.get("activeAt"),
            "labels": alert["labels"],
        }
        for alert in data["alerts"]
        if alert.get("state") == "firing"
    ]
    return sorted(firing, key=lambda a: (a["name"], sorted(a["labels"].items())))


def window(minutes: int, scrape_interval: int, now: float) -> dict[str, float]:
    """``start``, ``end``, ``step`` of ``minutes`` up to now: about POINTS points (a step below the scrape
    interval only repeats samples), the last one at ``now`` itself."""
    step = max(scrape_interval, math.ceil(minutes * 60 / POINTS))
    return {"start": now - (minutes * 60 // step) * step, "end": now, "step": step}


@router.get(
    "/operations",
    tags=["operations"],
    summary="The key dashboard panels over the last minutes, Prometheus's scrape targets, firing alerts",
    responses={503: {"description": "Prometheus does not answer"}},
)
async def get_operations(
    settings: SettingsDep,
    minutes: Annotated[int, Query(ge=5, le=7 * 24 * 60, description="how far back the panels go")] = 60,
) -> dict[str, Any]:
    """Each key panel with its series (labels and ``[[unix seconds, value], ...]``, null where there is
    no value); a panel whose query Prometheus refused carries ``error`` instead of failing the answer."""
    if not settings.prometheus_url:
        raise _unavailable(settings, "no address: set REMARKETING_PROMETHEUS_URL")
    span = window(minutes, settings.scrape_interval_seconds, time.time())
    async with httpx.AsyncClient(base_url=settings.prometheus_url, timeout=TIMEOUT) as http:
        # every call finishes before the client closes; the first failure is the answer
        answers = await asyncio.gather(
            _targets(http, settings),
            _alerts(http, settings),
            *(_panel(http, settings, panel, span) for panel in KEY_PANELS),
            return_exceptions=True,
        )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise _unavailable(settings, str(answer)) if isinstance(answer, QueryFailed) else answer
    targets, alerts, *panels = answers
    return {
        "prometheus": settings.prometheus_url,
        "minutes": minutes,
        "step_seconds": span["step"],
        "panels": panels,
        "targets": targets,
        "alerts": alerts,
    }
