"""A real ``python -m serving`` process, started by the LocalDeployer from the bundle's gs:// address in
the storage emulator: V1 predict and explain, V2 infer over HTTP on loopback (KServe's own SDK client
too), 400s naming row and column, parity with MLflow's pyfunc loader, and start / reuse / stop by PID."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import psutil
import pytest

from remarketing import scoring
from remarketing.processes import ProcessRegistry, free_port
from serving.deployer import LocalDeployer, bundle_uri, server_name

from .conftest import MODEL, v2_inputs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(emulator_settings):
    deployer = LocalDeployer(emulator_settings, startup_seconds=60)
    endpoint = deployer.deploy(MODEL, "1", bundle_uri(emulator_settings, MODEL, "1"))
    yield deployer, endpoint
    deployer.stop(MODEL, "1")


def test_v1_predict_over_http_equals_the_mlflow_pyfunc_model(served, logreg_bundle, records, test_frame):
    import mlflow.pyfunc

    _, endpoint = served
    response = httpx.post(endpoint.predict_url, json={"instances": records}, timeout=30)
    assert response.status_code == 200, response.text
    served_p = np.asarray(response.json()["predictions"])
    # The same rows, raw, through the registered flavour (extra columns included).
    local_p = mlflow.pyfunc.load_model(str(logreg_bundle)).predict(pd.DataFrame(records)).to_numpy()
    assert served_p.shape == local_p.shape == (len(records),)
    np.testing.assert_allclose(served_p, local_p, rtol=0, atol=1e-6)


def test_v2_infer_and_v1_explain_over_http(served, records):
    _, endpoint = served
    predictions = httpx.post(endpoint.predict_url, json={"instances": records[:5]}, timeout=30).json()
    infer = httpx.post(endpoint.infer_url, json={"inputs": v2_inputs(records[:5])}, timeout=30)
    assert infer.status_code == 200, infer.text
    body = infer.json()
    assert body["id"] and body["model_version"] == "1"
    assert body["outputs"][0]["data"] == predictions["predictions"]
    explain = httpx.post(endpoint.explain_url, json={"instances": records[:5]}, timeout=30)
    assert explain.status_code == 200, explain.text
    explanations = explain.json()["explanations"]
    assert [e["probability"] for e in explanations] == predictions["predictions"]
    assert all(len(e["reasons"]) == 3 for e in explanations)


def test_malformed_rows_over_http_are_400_with_row_and_column(served, records):
    _, endpoint = served
    rows = [dict(r) for r in records[:3]]
    rows[2]["age"] = "forty"
    for url in (endpoint.predict_url, endpoint.explain_url):
        response = httpx.post(url, json={"instances": rows}, timeout=30)
        assert response.status_code == 400 and "row 2, column 'age'" in response.json()["error"]
    inputs = v2_inputs(records[:3])
    inputs[9]["data"][1] = "many"  # campaign
    response = httpx.post(endpoint.infer_url, json={"inputs": inputs}, timeout=30)
    assert response.status_code == 400 and "input 'campaign': row 1" in response.json()["error"]


def test_the_kserve_sdk_client_scores_a_file_through_the_server(served, test_frame, tmp_path):
    """KServe's own V2 REST client, with the request built from the server's metadata: binary inputs,
    the probability in binary and the first reason in JSON."""
    import asyncio

    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    _, endpoint = served
    path = tmp_path / "weekly.csv"
    test_frame.to_csv(path, index=False)
    weekly = pd.read_csv(path)
    metadata = httpx.get(f"{endpoint.base_url}/v2/models/{MODEL}", timeout=30).json()
    inputs = []
    for spec in metadata["inputs"]:
        kind = "float64" if spec["datatype"] == "FP64" else object
        tensor = InferInput(spec["name"], [len(weekly)], spec["datatype"])
        tensor.set_data_from_numpy(weekly[spec["name"]].to_numpy(dtype=kind), binary_data=True)
        inputs.append(tensor)
    request = InferRequest(
        MODEL,
        inputs,
        request_outputs=[
            RequestedOutput("probability", {"binary_data": True}),
            RequestedOutput("reason_1_field", {"binary_data": False}),
        ],
    )

    async def infer():
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
        return await client.infer(endpoint.base_url, request, model_name=MODEL)

    response = asyncio.run(infer())
    probability = response.get_output_by_name("probability").as_numpy()
    predictions = httpx.post(
        endpoint.predict_url, json={"instances": weekly.to_dict("records")}, timeout=30
    ).json()["predictions"]
    np.testing.assert_allclose(probability, predictions, rtol=0, atol=1e-12)
    fields = response.get_output_by_name("reason_1_field").data
    assert len(fields) == len(weekly) and set(fields) <= {i["name"] for i in metadata["inputs"]} | {""}


def test_the_score_steps_client_gets_the_models_explanation_and_checks_the_version(
    served, logreg_bundle, test_frame
):
    """scoring.score_chunk through the real server equals the model in-process to 1e-9; a reply from
    another version than the endpoint's is refused after its retries."""
    from remarketing import bundle
    from remarketing.ports import Endpoint
    from remarketing.reasons import reason_columns
    from remarketing.scoring import HttpScorer, WrongModelVersion, score_chunk

    from .conftest import SPEC

    _, endpoint = served
    scorer = HttpScorer(endpoint)
    try:
        scored = score_chunk(scorer, test_frame, SPEC, concurrency=2)
    finally:
        scorer.close()
    model = bundle.load(logreg_bundle)  # the bundle the server downloaded from the emulator
    rows = test_frame[SPEC.feature_names]
    explanation = model.explain(rows)
    np.testing.assert_allclose(scored["probability"], model.predict_proba(rows), rtol=0, atol=1e-9)
    for field in SPEC.feature_names:
        np.testing.assert_allclose(
            scored[f"shap_{field}"], explanation.contributions[field], rtol=0, atol=1e-9, err_msg=field
        )
    assert scored["customer_id"].tolist() == test_frame["customer_id"].tolist()
    assert (
        scored["reason_1_field"].tolist()
        == reason_columns(explanation.contributions, rows)["reason_1_field"].tolist()
    )

    other = HttpScorer(Endpoint(endpoint.base_url, endpoint.model_name, "2"), retries=1, backoff=0)
    try:
        with pytest.raises(WrongModelVersion, match="answered as remarketing-bank-marketing v1, not v2"):
            score_chunk(other, test_frame.head(3), SPEC, concurrency=1)
    finally:
        other.close()


def test_the_server_listens_on_loopback_only(served, emulator_settings):
    entry = ProcessRegistry(emulator_settings.state_dir).get(server_name(MODEL, "1"))
    port = int(entry.address.rsplit(":", 1)[1])
    process = psutil.Process(entry.pid)
    connections = getattr(process, "net_connections", None) or process.connections  # psutil < 6
    listening = [c.laddr for c in connections("inet") if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert port in {addr.port for addr in listening}  # and no gRPC port either


def test_deploy_reuses_a_running_server_and_stop_ends_it_by_pid(served, emulator_settings):
    deployer, endpoint = served
    registry = ProcessRegistry(emulator_settings.state_dir)
    entry = registry.get(server_name(MODEL, "1"))
    assert entry.kind == "model-server" and entry.alive()
    assert entry.log.startswith(str(emulator_settings.state_dir))
    again = LocalDeployer(emulator_settings).deploy(MODEL, "1", bundle_uri(emulator_settings, MODEL, "1"))
    assert again == endpoint
    assert registry.get(server_name(MODEL, "1")).pid == entry.pid  # the same process, not a new one

    assert deployer.stop(MODEL, "1") is True
    assert not psutil.pid_exists(entry.pid) or psutil.Process(entry.pid).status() == psutil.STATUS_ZOMBIE
    assert registry.get(server_name(MODEL, "1")) is None
    assert deployer.stop(MODEL, "1") is False


def test_a_bundle_that_is_not_there_is_not_found_and_starts_nothing(emulator_settings):
    from remarketing.errors import ModelNotFoundError

    deployer = LocalDeployer(emulator_settings, startup_seconds=30)
    with pytest.raises(ModelNotFoundError, match="there is no model bundle at gs://"):
        deployer.deploy(MODEL, "99", bundle_uri(emulator_settings, MODEL, "99"))
    assert ProcessRegistry(emulator_settings.state_dir).get(server_name(MODEL, "99")) is None


def test_a_server_that_does_not_start_fails_in_one_sentence_naming_its_log(emulator_settings, tmp_path):
    from remarketing.errors import ServiceError

    own = emulator_settings.model_copy(update={"state_dir": tmp_path})  # no server of v1 to reuse there
    broken = LocalDeployer(own, startup_seconds=30, python="/bin/false")
    with pytest.raises(ServiceError) as failure:
        broken.deploy(MODEL, "1", bundle_uri(emulator_settings, MODEL, "1"))
    message = str(failure.value)
    assert "did not become ready" in message and "\n" not in message
    assert message.endswith(f"its log is {tmp_path}/logs/{server_name(MODEL, '1')}.log")


def test_an_idle_server_of_a_version_no_longer_in_use_is_stopped(emulator_settings):
    import os
    import time

    from remarketing.storage import Storage

    storage = Storage(emulator_settings)
    source = bundle_uri(emulator_settings, MODEL, "1")
    for version in ("7", "8"):  # two more versions: copies of the bundle
        target = bundle_uri(emulator_settings, MODEL, version)
        for uri in storage.list(source):
            storage.write_bytes(uri.replace(source, target), storage.read_bytes(uri))
    registry = ProcessRegistry(emulator_settings.state_dir)
    live = {"1"}  # the module's own server is in use: never retired here
    asked: list[str] = []  # the registry is asked which versions are live only when a server is idle

    def live_versions(name: str) -> set[str]:
        asked.append(name)
        return set(live)

    deployer = LocalDeployer(
        emulator_settings.model_copy(update={"model_server_idle_seconds": 3600}),
        startup_seconds=60,
        live=live_versions,
    )

    def idle_for(version: str, seconds: float) -> None:
        marker = deployer._used_marker(server_name(MODEL, version))
        os.utime(marker, (time.time() - seconds, time.time() - seconds))

    try:
        deployer.deploy(MODEL, "7", bundle_uri(emulator_settings, MODEL, "7"))
        seven = registry.get(server_name(MODEL, "7"))
        deployer.deploy(MODEL, "8", bundle_uri(emulator_settings, MODEL, "8"))
        assert seven.alive() and asked == []  # not in use, but asked for a moment ago: kept
        idle_for("7", 3601)
        deployer.deploy(MODEL, "8", bundle_uri(emulator_settings, MODEL, "8"))  # reused; 7 idle an hour
        assert registry.get(server_name(MODEL, "7")) is None and not seven.alive() and asked == [MODEL]
        live.add("8")  # 8 becomes champion: idle or not, it stays
        idle_for("8", 3601)
        deployer.deploy(MODEL, "7", bundle_uri(emulator_settings, MODEL, "7"))
        assert registry.get(server_name(MODEL, "8")).alive() and registry.get(server_name(MODEL, "7")).alive()
    finally:
        deployer.stop(MODEL, "7")
        deployer.stop(MODEL, "8")


def _score_shards(settings, rows, endpoint, deployer, tmp_path, shards, retries=2):
    """The score step itself, once per shard as the pipeline's ParallelFor runs it, into shard folders."""
    from remarketing.experiments import Arms, Served
    from remarketing.ports import CHAMPION, ModelRef
    from remarketing.runs import RunRecord, Source
    from remarketing.step import Chunks, StepContext, StepSettings

    from .conftest import SPEC

    whole = settings.model_copy(update={"scoring_shards": shards, "scoring_shard_retries": retries})
    run = RunRecord(
        run_id="scoring-x", kind="scoring", dataset="bank-marketing", source=Source(uri="f", generation=1)
    )
    uri = bundle_uri(settings, MODEL, "1")
    arms = Arms({CHAMPION: ModelRef(MODEL, "1", uri)})
    results, folders = [], []
    for shard in range(shards):
        ctx = StepContext(
            StepSettings(whole, "score", ("scoring_shards", "scoring_shard_retries")),
            SPEC,
            run,
            None,
            None,
            shard,
        )
        folders.append(Chunks(tmp_path / f"scored-shard-{shard}"))
        results.append(
            scoring.score(
                ctx,
                endpoints=Served({CHAMPION: endpoint}),
                arms=arms,
                rows=rows,
                scored=folders[-1],
                deployer=deployer,
            )
        )
    return results, folders


@pytest.fixture
def chunked_rows(test_frame, tmp_path):
    from remarketing.step import Chunks

    rows = Chunks(tmp_path / "rows")
    for i, start in enumerate(range(0, len(test_frame), 700)):
        rows.write(i, test_frame.iloc[start : start + 700])
    return rows


def test_shards_score_their_own_chunks_and_merge_back_in_order(
    served, emulator_settings, chunked_rows, tmp_path
):
    from remarketing.step import MergedChunks

    deployer, endpoint = served
    _, one = _score_shards(emulator_settings, chunked_rows, endpoint, deployer, tmp_path / "one", 1)
    _, three = _score_shards(emulator_settings, chunked_rows, endpoint, deployer, tmp_path / "three", 3)
    assert [len(f.files()) for f in three] == [len(chunked_rows.files()[s::3]) for s in range(3)]
    merged = pd.concat(MergedChunks(tuple(three)).frames(), ignore_index=True)
    pd.testing.assert_frame_equal(merged, pd.concat(one[0].frames(), ignore_index=True))
    ids = pd.concat(chunked_rows.frames(), ignore_index=True)["customer_id"]
    assert merged["customer_id"].tolist() == ids.tolist()


def test_a_shard_whose_server_is_gone_redeploys_it_and_carries_on(
    served, emulator_settings, chunked_rows, tmp_path
):
    from remarketing.ports import Endpoint

    deployer, endpoint = served
    gone = Endpoint(
        f"http://127.0.0.1:{free_port()}", endpoint.model_name, endpoint.version
    )  # nothing listens
    results, folders = _score_shards(emulator_settings, chunked_rows, gone, deployer, tmp_path, 2)
    assert results[0].record.warnings == [
        "the model server of v1 stopped answering; it was redeployed and scoring resumed"
    ]
    assert sum(len(f.files()) for f in folders) == len(chunked_rows.files())


def test_a_shard_out_of_retries_fails_naming_itself_and_writes_nothing(
    served, emulator_settings, chunked_rows, tmp_path
):
    from remarketing.ports import Endpoint
    from remarketing.step import Chunks

    deployer, endpoint = served
    gone = Endpoint(f"http://127.0.0.1:{free_port()}", endpoint.model_name, endpoint.version)
    with pytest.raises(scoring.ServerUnavailable, match=r"shard 1 of 2 gave up on chunk 0 after 1 attempt;"):
        _score_shards(emulator_settings, chunked_rows, gone, deployer, tmp_path, 2, retries=0)
    assert Chunks(tmp_path / "scored-shard-0").files() == []
