"""The bridge's small HTTP side: ``GET /metrics`` for Prometheus and ``POST /alerts``, Alertmanager's webhook,
written one JSON line per notification to a log file (the local stack's alert channel; the cloud routes to a
notification channel instead)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

MAX_BODY = 1 << 20  # an Alertmanager notification is a few KB


class Sidecar:
    def __init__(self, port: int, alerts_log: Path, host: str = "127.0.0.1") -> None:
        alerts_log.parent.mkdir(parents=True, exist_ok=True)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/metrics":
                    return self._answer(404, b"only /metrics and POST /alerts here\n", "text/plain")
                self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/alerts":
                    return self._answer(404, b"only POST /alerts here\n", "text/plain")
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    return self._answer(413, b"notification too large\n", "text/plain")
                try:
                    notification = json.loads(self.rfile.read(length))
                except ValueError:
                    return self._answer(400, b"not a JSON Alertmanager notification\n", "text/plain")
                line = json.dumps({"received": time.time(), **notification})
                with lock, open(alerts_log, "a") as out:
                    out.write(line + "\n")
                self._answer(200, b"ok\n", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # scrapes every few seconds: not worth a log line
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="sidecar", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
