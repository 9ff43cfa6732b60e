"""A pipeline's task reads the secrets its settings name (the pseudonym key, the lookup table's password)
from Secret Manager itself, as its own identity: they are never pipeline parameters (KFP shows and keeps
those). Secret Manager and Google's token service are faked at the outermost client (httpx's transport,
google.auth.default); the storage emulator, the run record and the step's settings are real."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import httpx
import pytest

from components import runner
from pipelines.launchers import run_arguments
from remarketing.errors import RemarketingError
from remarketing.personal_data import Pseudonyms, pseudonyms
from remarketing.runs import RunRecord, RunStore, Source
from remarketing.step import StepResult
from remarketing.storage import Storage

KEY_SECRET = "projects/rmk-dev/secrets/rmk-dev-pseudonym-key"
DB_SECRET = "projects/rmk-dev/secrets/rmk-dev-lookup-db"
API = "https://secretmanager.googleapis.com/v1"


def secret_manager(values: dict[str, str]):
    """Secret Manager's ``:access`` answers: the latest version of each secret given, 403 for others."""

    def answer(request: httpx.Request) -> httpx.Response:
        name = request.url.path.removeprefix("/v1/").removesuffix("/versions/latest:access")
        if name not in values:
            return httpx.Response(403, json={"error": {"code": 403, "status": "PERMISSION_DENIED"}})
        data = base64.b64encode(values[name].encode()).decode()
        return httpx.Response(200, json={"name": f"{name}/versions/3", "payload": {"data": data}})

    return answer


def scoring_run(settings, name: str) -> RunRecord:
    record = RunRecord(
        run_id=f"scoring-{name}",
        kind="scoring",
        dataset="bank-marketing",
        source=Source(uri=f"{settings.landing_root}/weekly/{name}.csv", generation=1),
    )
    RunStore(Storage(settings), settings.artifacts_root).create(record)
    return record


def run_validate(arguments: dict, tmp_path, monkeypatch) -> list:
    """The scoring pipeline's first task, as KFP runs it (its arguments and artifacts' paths), with a
    stand-in for the step's work that keeps the settings the step was given."""
    seen: list = []
    original = runner._resolve
    step = runner.flow.PIPELINES["scoring"].step("validate")

    def stand_in(ctx, **_):
        seen.append(ctx.settings.whole)
        return StepResult()

    monkeypatch.setattr(runner, "_resolve", lambda ref: stand_in if ref == step.function else original(ref))
    artifacts = {name: SimpleNamespace(path=str(tmp_path / name)) for name in step.outputs}
    runner.run_step("scoring", "validate", {**arguments, **artifacts, "metrics": None})
    return seen


def test_a_task_reads_the_keys_its_settings_name_never_its_parameters(
    emulator, google_identity, httpx_transport, tmp_path, monkeypatch
):
    launcher = emulator.model_copy(  # the API or a function, which launch runs: they hold the secrets
        update={
            "customer_id_key": "the-deployments-key",
            "customer_id_key_secret": KEY_SECRET,
            "lookup_db_host": "10.20.0.3",
            "lookup_db_password": "the-lookups-password",
            "lookup_db_password_secret": DB_SECRET,
        }
    )
    arguments = run_arguments(scoring_run(emulator, "week-1"), launcher)  # what KFP is given, and shows
    shown = json.dumps(arguments)
    assert "the-deployments-key" not in shown and "the-lookups-password" not in shown
    assert arguments["settings"]["customer_id_key_secret"] == KEY_SECRET

    httpx_transport.answer = secret_manager(
        {KEY_SECRET: "the-deployments-key", DB_SECRET: "the-lookups-password"}
    )
    (task,) = run_validate(arguments, tmp_path, monkeypatch)

    assert task.lookup_db_password == "the-lookups-password"
    # the task names a customer as the API does: one pseudonym in every part and run
    assert pseudonyms(task).of("C1") == Pseudonyms(b"the-deployments-key").of("C1")
    requests = httpx_transport.requests
    assert sorted(str(r.url) for r in requests) == [
        f"{API}/{DB_SECRET}/versions/latest:access",
        f"{API}/{KEY_SECRET}/versions/latest:access",
    ]
    assert {r.headers["Authorization"] for r in requests} == {"Bearer access#1"}  # its own identity's


def test_a_secret_the_task_may_not_read_fails_its_step_saying_which(
    emulator, google_identity, httpx_transport, tmp_path, monkeypatch
):
    launcher = emulator.model_copy(update={"customer_id_key_secret": KEY_SECRET})
    record = scoring_run(emulator, "week-2")
    httpx_transport.answer = secret_manager({})  # not granted
    with pytest.raises(RemarketingError, match="Secret Manager refused"):
        run_validate(run_arguments(record, launcher), tmp_path, monkeypatch)
    failed = RunStore(Storage(emulator), emulator.artifacts_root).get(record.run_id)
    assert failed.status == "failed"
    assert f"{KEY_SECRET}/versions/latest (HTTP 403)" in failed.error.message


def test_a_secret_manager_that_does_not_answer_is_unavailable(google_identity, httpx_transport):
    from cloud_auth.secret_manager import secret_value
    from remarketing.errors import Unavailable

    httpx_transport.answer = lambda request: httpx.Response(503)
    with pytest.raises(Unavailable, match="Secret Manager at .*pseudonym-key/versions/latest is unavailable"):
        secret_value(KEY_SECRET)
