"""While the audit trail cannot be written, the API does nothing that needs a key: 503 naming the trail,
before any handler runs (no upload stored, no experiment started); the public routes still answer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from frontend.api.main import create_app
from remarketing.settings import Settings


def test_nothing_that_needs_a_key_is_done_while_the_trail_cannot_be_written(tmp_path):
    app = create_app(Settings(state_dir=tmp_path, api_key="k"))
    client = TestClient(app, headers={"X-API-Key": "k"})
    app.state.audit.failing = "storage at http://127.0.0.1:1 is unavailable"
    for method, path in [("GET", "/runs"), ("POST", "/uploads"), ("GET", "/customers/C1")]:
        answer = client.request(method, path)
        assert answer.status_code == 503, path
        assert answer.json()["detail"].startswith("the audit trail cannot be written (storage at")
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    app.state.audit.failing = None
    assert (
        client.get("/customers/C1").status_code != 503
        or "audit trail" not in client.get("/customers/C1").text
    )
