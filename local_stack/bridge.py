"""The local event bridge: the emulator has no notifications, so this process notices new object
generations in the landing bucket and posts Eventarc-shaped binary CloudEvents
(``google.cloud.storage.object.v1.finalized``) to the functions.

- Like a bucket trigger, every event goes to every function; each function keeps what is its own.
- Delivery is at least once: an event is retried (with backoff) until every function answered 2xx or
  refused it as malformed (4xx). A function that is down gets its pending events when it is back.
- What was delivered is appended to ``<state>/bridge/delivered.jsonl``: after a restart the bridge does
  not re-fire those, and it delivers what arrived while it was down.
- Every few seconds it also reconciles local runs whose pipeline process died (see ``pipelines.launchers``)
  and the Pushgateway's groups with the runs (``observability.push.sweep``).
- On ``bridge_metrics_port`` it serves its ``/metrics`` and takes Alertmanager's webhook at ``/alerts``,
  appending each notification to ``<state>/alertmanager/alerts.jsonl`` (the local alert channel).

Run: ``python -m local_stack.bridge`` (settings from ``REMARKETING_*``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import Counter, Gauge

from cloud_functions import FUNCTIONS
from local_stack.http_sidecar import Sidecar
from remarketing.settings import Settings
from remarketing.storage import Storage

log = logging.getLogger("remarketing.bridge")
EVENT_TYPE = "google.cloud.storage.object.v1.finalized"
POLL_SECONDS = 0.25
RECONCILE_SECONDS = 5.0

EVENTS = Counter("remarketing_bridge_events", "Object generations queued for delivery")
DELIVERIES = Counter(
    "remarketing_bridge_deliveries", "Events acknowledged or refused by a function", ["function", "outcome"]
)
RETRIES = Counter("remarketing_bridge_delivery_retries", "Deliveries to retry", ["function", "cause"])
PENDING = Gauge("remarketing_bridge_pending_events", "Events not acknowledged by every function")
OLDEST = Gauge("remarketing_bridge_oldest_pending_seconds", "Age of the oldest pending event")
LAST_CYCLE = Gauge(
    "remarketing_bridge_last_cycle_timestamp_seconds", "The last scan-and-deliver cycle that worked"
)
FAILED_CYCLES = Counter("remarketing_bridge_failed_cycles", "Scan-and-deliver cycles that failed")


def function_urls(settings: Settings) -> dict[str, str]:
    """Each function's URL -> its name (the label of its delivery counts)."""
    return {f"http://127.0.0.1:{getattr(settings, f.port_setting)}": name for name, f in FUNCTIONS.items()}


def cloud_event(blob: Any) -> tuple[dict[str, str], bytes]:
    """Binary-mode CloudEvent headers and JSON body for a finalized object, as Eventarc sends them."""
    created = (blob.time_created or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    data = {
        "kind": "storage#object",
        "id": f"{blob.bucket.name}/{blob.name}/{blob.generation}",
        "bucket": blob.bucket.name,
        "name": blob.name,
        "generation": str(blob.generation),
        "metageneration": str(blob.metageneration or 1),
        "contentType": blob.content_type or "application/octet-stream",
        "size": str(blob.size or 0),
        "md5Hash": blob.md5_hash,
        "crc32c": blob.crc32c,
        "metadata": blob.metadata or {},
        "timeCreated": created,
        "updated": created,
        "storageClass": "STANDARD",
    }
    headers = {
        "ce-id": f"{blob.bucket.name}/{blob.name}/{blob.generation}",
        "ce-specversion": "1.0",
        "ce-type": EVENT_TYPE,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
        "ce-subject": f"objects/{blob.name}",
        "ce-time": created,
        "Content-Type": "application/json",
    }
    return headers, json.dumps(data).encode()


@dataclass
class Pending:
    headers: dict[str, str]
    body: bytes
    waiting_for: set[str]  # function URLs that have not acknowledged it yet
    attempts: int = 0
    next_try: float = field(default_factory=time.monotonic)
    queued: float = field(default_factory=time.monotonic)


class Bridge:
    def __init__(self, settings: Settings, targets: list[str] | None = None) -> None:
        self.settings = settings
        self.storage = Storage(settings)
        names = function_urls(settings)
        self.targets = targets or list(names)
        self.names = {url: names.get(url, url) for url in self.targets}
        for url in self.targets:  # every series at zero from the start
            for outcome in ("delivered", "refused"):
                DELIVERIES.labels(self.names[url], outcome)
            for cause in ("unreachable", "server_error"):
                RETRIES.labels(self.names[url], cause)
        self.folder = Path(settings.state_dir) / "bridge"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.journal = self.folder / "delivered.jsonl"
        self.delivered: set[str] = set()
        if self.journal.exists():
            self.delivered = {
                json.loads(line)["key"] for line in self.journal.read_text().splitlines() if line
            }
        self.pending: dict[str, Pending] = {}
        self.http = httpx.Client(timeout=10.0)

    def scan(self) -> None:
        """Queue an event for every object generation not delivered yet."""
        for blob in self.storage.client.list_blobs(self.settings.landing_bucket):
            key = f"{blob.bucket.name}/{blob.name}#{blob.generation}"
            if key in self.delivered or key in self.pending:
                continue
            headers, body = cloud_event(blob)
            self.pending[key] = Pending(headers, body, set(self.targets))
            EVENTS.inc()

    def deliver(self) -> None:
        now = time.monotonic()
        for key, event in list(self.pending.items()):
            if event.next_try > now:
                continue
            for url in list(event.waiting_for):
                try:
                    response = self.http.post(url, content=event.body, headers=event.headers)
                except httpx.TransportError as exc:
                    log.warning("%s: %s unreachable (%s); will retry", key, url, type(exc).__name__)
                    RETRIES.labels(self.names[url], "unreachable").inc()
                    continue
                if response.status_code < 300 or 400 <= response.status_code < 500:
                    refused = response.status_code >= 400
                    if refused:
                        log.error(
                            "%s refused by %s: %s %s", key, url, response.status_code, response.text[:200]
                        )
                    DELIVERIES.labels(self.names[url], "refused" if refused else "delivered").inc()
                    event.waiting_for.discard(url)
                else:
                    log.warning("%s: %s answered %s; will retry", key, url, response.status_code)
                    RETRIES.labels(self.names[url], "server_error").inc()
            if event.waiting_for:
                event.attempts += 1
                event.next_try = now + min(10.0, 0.25 * 2**event.attempts)
            else:
                self._done(key)

    def _done(self, key: str) -> None:
        with open(self.journal, "a") as journal:
            journal.write(json.dumps({"key": key, "at": time.time()}) + "\n")
        self.delivered.add(key)
        del self.pending[key]
        log.info("delivered %s", key)

    def heartbeat(self) -> None:
        (self.folder / "heartbeat").write_text(str(time.time()))  # the process lives (remarketing status)
        PENDING.set(len(self.pending))
        oldest = min((e.queued for e in self.pending.values()), default=None)
        OLDEST.set(time.monotonic() - oldest if oldest is not None else 0)

    def run(self) -> None:
        from observability.push import records_in, sweep
        from pipelines.launchers import reconcile_local_runs

        alerts = Path(self.settings.state_dir) / "alertmanager" / "alerts.jsonl"
        try:
            Sidecar(self.settings.bridge_metrics_port, alerts).start()
        except OSError as exc:  # observability must not stop the delivery of events
            log.error("no metrics or alert webhook on port %s: %s", self.settings.bridge_metrics_port, exc)
        last_reconcile = 0.0
        while True:
            try:
                self.scan()
                self.deliver()
                LAST_CYCLE.set(time.time())  # only a cycle that worked: a storage outage stalls it
            except Exception:  # noqa: BLE001 - the emulator restarting must not end the bridge
                FAILED_CYCLES.inc()
                log.exception("bridge cycle failed; retrying")
            if time.monotonic() - last_reconcile > RECONCILE_SECONDS:
                last_reconcile = time.monotonic()  # (before: a failure must not make it run every cycle)
                try:
                    reconcile_local_runs(self.settings, self.storage)
                    sweep(self.settings, records_in(self.storage, self.settings))
                except Exception:  # noqa: BLE001
                    log.exception("reconciling runs or sweeping the Pushgateway failed; retrying")
            self.heartbeat()
            time.sleep(POLL_SECONDS)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Bridge(Settings()).run()


if __name__ == "__main__":
    main()
