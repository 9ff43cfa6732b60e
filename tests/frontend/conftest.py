# ruff: noqa: F811  (the imported session fixtures are parameters of the fixtures below)
"""Frontend tests on the real local stack: the storage emulator, MLflow, the API process (uvicorn) and a
real champion, from the integration suite's session fixtures; two real scoring runs shared by the module
tests (the same file uploaded twice at once, with formula-like ids)."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from frontend.api.main import create_app
from remarketing.runs import RunRecord, RunStore
from remarketing.secrets import api_key
from remarketing.settings import Settings
from remarketing.storage import Storage

# The integration suite's session fixtures (real emulator + MLflow + API; a trained champion).

FORMULA_IDS = ["=HYPERLINK(A1)", "+1+1", "-2+3", "@SUM(A1)"]


def weekly_frame(bank_bytes: bytes, step: int = 40, formulas: bool = False) -> pd.DataFrame:
    """Later customers (the last 20% of bank-full, every ``step``-th row) with ids; the target kept in."""
    frame = pd.read_csv(io.BytesIO(bank_bytes), sep=";")
    later = frame.iloc[int(len(frame) * 0.8) :: step].copy()
    later.insert(0, "customer_id", [f"C{i:06d}" for i in later.index])
    if formulas:
        later.iloc[: len(FORMULA_IDS), 0] = FORMULA_IDS
    return later


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(sep=";", index=False).encode()


def wait_finished(settings: Settings, run_id: str, timeout: float = 300) -> RunRecord:
    store = RunStore(Storage(settings), settings.artifacts_root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = store.get(run_id)
        if record.finished:
            return record
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s: {store.get(run_id).status}")


@pytest.fixture(scope="session")
def key(stack: Settings) -> str:
    return api_key(stack)


@pytest.fixture(scope="session")
def app(stack: Settings):
    return create_app(stack)


@pytest.fixture(scope="session")
def client(app, key: str) -> TestClient:
    """The app in-process (coverage, dependency overrides), on the real emulator and MLflow."""
    return TestClient(app, headers={"X-API-Key": key})


@pytest.fixture(scope="session")
def anonymous(app) -> TestClient:
    return TestClient(app)


@dataclass
class Scored:
    uploads: list[dict[str, Any]]
    records: list[RunRecord]
    data: bytes


@dataclass
class Monitored:
    answer: dict[str, Any]  # POST /runs/{id}/outcomes
    record: RunRecord
    outcomes: bytes


@pytest.fixture(scope="session")
def monitored(scored: Scored, stack: Settings, client: TestClient) -> Monitored:
    """The first scored week's true outcomes through POST /runs/{id}/outcomes, launched as the storage
    trigger's function would, and measured."""
    from pipelines.launchers import launcher_for
    from remarketing.launch import launch

    frame = pd.read_csv(io.BytesIO(scored.data), sep=";", dtype={"customer_id": str})
    text = frame[["customer_id", "y"]].to_csv(sep=";", index=False).encode()
    run_id = scored.uploads[0]["run_id"]
    response = client.post(
        f"/runs/{run_id}/outcomes", files={"file": ("week-outcomes.csv", text, "text/csv")}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    bucket, name = body["object"].removeprefix("gs://").split("/", 1)
    launch(bucket, name, body["generation"], settings=stack, launcher=launcher_for(stack))
    return Monitored(body, wait_finished(stack, body["run_id"]), text)


@pytest.fixture(scope="session")
def scored(trained, stack: Settings, client: TestClient, bank_bytes: bytes) -> Scored:
    """The same file uploaded twice at the same moment: two objects, two runs, launched as the storage
    trigger's function would (``remarketing.launch.launch``, the real entry point), both finished."""
    from pipelines.launchers import launcher_for
    from remarketing.launch import launch

    data = csv_bytes(weekly_frame(bank_bytes, formulas=True))
    answers: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def post(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = client.post(
                "/uploads", files={"file": ("weekly-same.csv", data, "text/csv")}, data={"budget": "25"}
            )
        except Exception as exc:  # shown by the assertion below, not lost in the thread
            answers[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [getattr(a, "status_code", None) for a in answers] == [202, 202], [
        getattr(a, "text", repr(a)) for a in answers
    ]
    uploads = [a.json() for a in answers]
    for up in uploads:
        bucket, name = up["object"].removeprefix("gs://").split("/", 1)
        launch(bucket, name, up["generation"], settings=stack, launcher=launcher_for(stack))
    records = [wait_finished(stack, up["run_id"]) for up in uploads]
    return Scored(uploads, records, data)
