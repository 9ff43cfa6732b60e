"""The release's smoke test (``remarketing smoke``, run by cloudbuild-deploy.yaml after each deploy) against
the local stack: the real CLI in a subprocess, the real API process, the real weekly function and the
scoring pipeline it launches, on the session's champion.

The session's stack has no event bridge (it would deliver every object other tests leave in the landing
bucket), so the test stands in for the trigger, for this one object only: when the smoke test says what it
uploaded, the test sends the on_weekly_file function the CloudEvent the bridge (and Eventarc) would.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import functions_framework
import pandas as pd
import pytest

from local_stack.bridge import cloud_event
from remarketing.settings import Settings
from remarketing.storage import Storage

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UPLOADED = re.compile(
    r"^uploaded gs://(?P<bucket>[^/]+)/(?P<name>\S+)#(?P<generation>\d+) as run (?P<run>\S+)$"
)


def start_smoke(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "smoke", "--api-url", f"http://127.0.0.1:{settings.api_port}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **settings.to_env()},
    )


def deliver_its_upload(settings: Settings, smoke: subprocess.Popen[str]) -> tuple[dict[str, str], list[str]]:
    """Read the smoke test's progress up to the line naming what it uploaded, then deliver that object's
    finalize event to on_weekly_file, as the trigger would."""
    said = []
    assert smoke.stderr is not None
    for line in smoke.stderr:  # ends if the smoke test exits before it uploaded anything
        said.append(line)
        found = UPLOADED.match(line.strip())
        if found:
            break
    else:
        smoke.wait(timeout=30)
        pytest.fail(
            f"the smoke test uploaded nothing:\n{''.join(said)}{smoke.stdout.read() if smoke.stdout else ''}"
        )
    blob = Storage(settings).client.bucket(found["bucket"]).get_blob(found["name"])
    assert blob is not None and str(blob.generation) == found["generation"]
    headers, body = cloud_event(blob)
    function = functions_framework.create_app(
        target="on_weekly_file",
        source=str(REPO / "cloud_functions" / "on_weekly_file" / "main.py"),
        signature_type="cloudevent",
    ).test_client()
    answer = function.post("/", headers=headers, data=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return found.groupdict(), said


def finish(smoke: subprocess.Popen[str], said: list[str]) -> tuple[int, dict, str]:
    out, rest = smoke.communicate(timeout=300)
    lines = out.strip().splitlines()
    return smoke.returncode, (json.loads(lines[-1]) if lines else {}), "".join(said) + rest


def test_the_smoke_test_uploads_waits_and_downloads_the_predictions(trained, settings):
    smoke = start_smoke(settings, "--rows", "60", "--budget", "10", "--every", "0.5", "--timeout", "240")
    uploaded, said = deliver_its_upload(settings, smoke)
    code, result, log = finish(smoke, said)
    assert code == 0, log
    assert result["status"] == "success", result
    assert result["run_id"] == uploaded["run"]
    assert result["object"] == f"gs://{uploaded['bucket']}/{uploaded['name']}"
    assert uploaded["name"].startswith("weekly/smoke-weekly")
    assert result["rows_scored"] + result["rows_rejected"] == 60
    assert result["rows_scored"] > 0 and result["model_version"]
    assert "succeeded" in log and "success" in log


def test_a_failed_run_fails_the_smoke_test_with_the_runs_error(stack, settings, bank_bytes, tmp_path):
    """Two customers with one id: the API takes the file (its header fits), the run fails at validate."""
    frame = pd.read_csv(io.BytesIO(bank_bytes), sep=";", dtype=str).tail(20).drop(columns="y")
    frame.insert(0, "customer_id", [f"D{i:03d}" for i in range(len(frame))])
    frame.iloc[1, 0] = frame.iloc[0, 0]
    path = tmp_path / "duplicate-ids.csv"
    frame.to_csv(path, sep=";", index=False)

    smoke = start_smoke(settings, "--file", str(path), "--every", "0.5", "--timeout", "120")
    uploaded, said = deliver_its_upload(settings, smoke)
    code, result, log = finish(smoke, said)
    assert code == 1, log
    assert result["status"] == "failed" and result["run_id"] == uploaded["run"]
    assert result["run_error"]["step"] == "validate", result
    assert result["error"]["message"].startswith(f"run {uploaded['run']} failed at step validate: ")
    assert "D000" in result["error"]["message"], result  # the run's own words: the repeated id


def test_bad_input_is_refused_before_anything_is_uploaded(settings, tmp_path):
    not_csv = tmp_path / "week.csv"
    not_csv.write_text("customer_id;age\nC1;40\n")  # a header that fits no dataset
    smoke = start_smoke(settings, "--file", str(not_csv), "--timeout", "5")
    code, result, log = finish(smoke, [])
    assert code == 1, log
    assert result["error"]["message"].startswith("POST /uploads at http://127.0.0.1:"), result
    assert "422" in result["error"]["message"]
    assert "uploaded gs://" not in log

    smoke = start_smoke(settings, "--dataset", "no-such-dataset")
    code, result, log = finish(smoke, [])
    assert code == 2 and "unknown dataset 'no-such-dataset'" in log
