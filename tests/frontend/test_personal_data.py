"""No raw customer id outside the files the bank gives and gets back and the lookup table: every file the
stack's state folder holds after two scoring runs, a monitoring run and their lookups (the emulator's
buckets, run records, manifests, reports, MLflow's database and artifacts, the logs, the audit trail) and
the metrics Prometheus scraped and the Pushgateway holds are scanned for the scored customers' ids."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.frontend.conftest import FORMULA_IDS

pytestmark = pytest.mark.integration

# Where raw ids belong (docs/personal-data.md): the bank's own files, the files it gets back, the table.
ALLOWED = [
    r"(^|/)weekly/",  # the uploads, as the bank sent them
    r"(^|/)outcomes/",
    r"(^|/)input/",
    r"(^|/)output/[^/]+/(predictions\.csv|rejects\.csv|contributions\.parquet)$",
    r"^lookup/customers\.sqlite(-wal|-shm)?$",
    r"^pipeline-root/",  # the pipeline's hand-offs between its tasks: the uploaded rows, validated
]


def offending(root: Path, ids: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or any(re.search(p, relative) for p in ALLOWED):
            continue
        data = path.read_bytes()
        if any(i in data for i in ids):
            found.append(relative)
    return sorted(found)


def test_no_raw_customer_id_is_left_outside_the_scored_files_and_the_lookup(
    scored, monitored, client, app, stack
):
    frame = pd.read_csv(io.BytesIO(scored.data), sep=";", dtype={"customer_id": str})
    ids = [i for i in frame["customer_id"] if i not in FORMULA_IDS]
    # a lookup and an explanation of some of them, so that their traces are in the logs and the trail
    for customer_id in ids[:3]:
        assert client.get(f"/customers/{customer_id}").status_code == 200
        run_id = scored.uploads[0]["run_id"]
        explained = client.get(f"/runs/{run_id}/explanations", params={"customer_id": customer_id})
        assert explained.status_code == 200
    assert app.state.audit.settle()  # the API's audit records of those requests written too
    encoded = [i.encode() for i in ids]
    assert offending(Path(stack.state_dir), encoded) == []
    for url in (f"{stack.pushgateway_url}/metrics", f"{stack.prometheus_url}/federate?match[]={{job=~'.+'}}"):
        text = httpx.get(url, timeout=10).text
        assert not [i for i in ids if i in text], url
