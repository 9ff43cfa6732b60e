"""The scoring pipeline's first steps as plain functions: validate the weekly file in chunks, deploy the
model (and an experiment's challenger), and score it through the model server's V2 ``infer``
(probabilities, contributions and reasons as one tensor each, column by column) with bounded concurrency
and retries. :mod:`remarketing.publish` is the last step.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from remarketing import parameters, tensors
from remarketing.contact_file import REASON_PARTS
from remarketing.datasets import DatasetSpec
from remarketing.errors import DataValidationError, RemarketingError, Unavailable
from remarketing.ports import CHALLENGER, CHAMPION, Deployer, Endpoint, ModelRef, Registry
from remarketing.step import Chunks, RecordChange, StepContext, StepResult

BATCH_ROWS = 10_000  # rows per request to the model server (its explainer works 5,000 at a time)


# --- 1. validate -------------------------------------------------------------------------------------


def validate(ctx: StepContext, *, source_uri: str, rows: Chunks) -> StepResult:
    """Check the weekly file against the spec without the target, chunk by chunk: typed rows to ``rows``
    (memory stays flat), the rejected cells as the ``rejects`` table."""
    from remarketing.validation import Purpose, summarise, validate_file

    spec = ctx.spec
    parameters.parse(ctx.run.params)  # a bad parameter fails the run before anything is scored
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "weekly.csv"
        generation = ctx.run.source.generation if source_uri.startswith("gs://") else None
        digest, size = ctx.storage.download_file(source_uri, local, generation=generation)
        warnings: list[str] = []
        rejects: list[pd.DataFrame] = []
        unseen: dict[str, int] = {}
        valid, id_generated = 0, False
        for i, chunk in enumerate(
            validate_file(
                local, spec, Purpose.SCORING, chunk_rows=ctx.settings.scoring_chunk_rows, source=source_uri
            )
        ):
            warnings.extend(chunk.warnings)
            rejects.append(chunk.rejects)
            for column, count in chunk.unseen_categories.items():
                unseen[column] = unseen.get(column, 0) + count
            id_generated = chunk.id_generated
            valid += len(chunk.frame)
            rows.write(i, chunk.frame)
    all_rejects = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame()
    rejected_rows = int(all_rejects["row"].nunique()) if len(all_rejects) else 0
    if valid == 0:
        from remarketing.validation import describe_failures

        cases = all_rejects.rename(columns={"reason": "check", "value": "failure_case"})
        cases["index"] = cases["row"] - 2
        raise DataValidationError(
            ["every row was rejected:", *describe_failures(cases, spec.id_column)], source=source_uri
        )
    warnings += summarise(spec, rejected_rows, unseen, id_generated, valid + rejected_rows)
    counts = {"rows_read": valid + rejected_rows, "rows_rejected": rejected_rows, "unseen_categories": unseen}
    return StepResult(
        outputs={"rejects": all_rejects},
        record=RecordChange(warnings=warnings, metrics=counts, source={"sha256": digest, "size": size}),
        metrics={"rows_valid": valid, "rows_rejected": rejected_rows},
    )


# --- 2. deploy: resolve the arms, then serve them -----------------------------------------------------


def resolve(ctx: StepContext, *, registry: Registry) -> StepResult:
    """The champion, or the version asked for in the run's parameters; with an experiment running (and no
    version asked for), the challenger too, as the other arm."""
    from remarketing.experiments import Arms, champion_changed, running

    name = ctx.settings.model_name(ctx.dataset)
    asked = ctx.run.params.get("model_version")
    info = registry.resolve(name, str(asked) if asked else None)
    model = ModelRef(name, info.version, info.source)
    root = ctx.settings.artifacts_root
    experiment = None if asked else running(ctx.storage, root, ctx.dataset)
    fields: dict[str, Any] = {"model_name": name, "model_version": info.version}
    metrics: dict[str, Any] = {}
    warnings = []
    if experiment is not None and experiment.champion != info.version:
        ended = champion_changed(ctx.storage, root, experiment, info.version)
        warnings.append(f"experiment {ended.experiment_id} ended: {ended.decision['said']}")  # type: ignore[index]
        experiment = None
    if experiment is None:
        arms = Arms({CHAMPION: model})
    else:
        challenger = registry.get(name, experiment.challenger)
        arms = Arms(
            {CHAMPION: model, CHALLENGER: ModelRef(name, challenger.version, challenger.source)},
            experiment.experiment_id,
            experiment.share,
        )
        metrics["experiment"] = {
            "experiment_id": experiment.experiment_id,
            "champion": info.version,
            "challenger": challenger.version,
            "share": experiment.share,
        }
    return StepResult(
        outputs={"model": model, "arms": arms},
        record=RecordChange(fields=fields, metrics=metrics, warnings=warnings),
    )


# --- 2. deploy, continued -------------------------------------------------------------------------------


def deploy(ctx: StepContext, *, arms: Any, deployer: Deployer) -> StepResult:
    """Serve each arm's version (started or reused locally; on KServe the challenger as the canary of
    the champion's InferenceService) and wait for it."""
    from remarketing.experiments import Served

    if CHALLENGER in arms.models:
        endpoints = deployer.deploy_experiment(
            arms.models[CHAMPION], arms.models[CHALLENGER], round(arms.share * 100)
        )
    else:
        m = arms.models[CHAMPION]
        endpoints = {CHAMPION: deployer.deploy(m.name, m.version, m.uri)}
    served = Served(endpoints)
    return StepResult(outputs={"endpoints": served}, record=RecordChange(pipeline_run=served.as_dict()))


def resolve_and_deploy(ctx: StepContext, *, registry: Registry, deployer: Deployer) -> StepResult:
    """The scoring pipeline's ``deploy`` step (in validate's task): :func:`resolve` the arms, then
    :func:`deploy` them."""
    resolved = resolve(ctx, registry=registry)
    try:
        deployed = deploy(ctx, arms=resolved.outputs["arms"], deployer=deployer)
    except RemarketingError as exc:
        exc.found = resolved.record  # the record still names the version, and an experiment ended
        raise
    record = resolved.record
    record.pipeline_run = deployed.record.pipeline_run
    return StepResult(outputs={**resolved.outputs, **deployed.outputs}, record=record)


# --- 3. score -------------------------------------------------------------------------------------------


class ServerUnavailable(Unavailable):
    """The model server did not answer after every retry."""


class WrongModelVersion(RemarketingError):
    """The server kept answering as another model version than the run deployed (on KServe, another run
    moved the InferenceService to its version): nothing is scored by a model the run did not choose."""


@dataclass
class HttpScorer:
    """KServe V2 ``infer`` over HTTP, one tensor per column. Numbers travel as binary tensors and text as
    JSON in the same body (the protocol's binary extension allows both): a million-row column of numbers
    is a memory copy each way, while text read from binary takes a Python loop per value on the server
    (docs/serving.md has the measured figures). Every reply must come from ``endpoint.version``.

    Transient errors are retried with backoff: connection refused or reset, timeouts, 5xx, and a reply
    from another version. A 4xx is the request's fault and is not retried."""

    endpoint: Endpoint
    retries: int = 4
    backoff: float = 0.5
    timeout: float = 120.0

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=self.timeout)
        self._binary_outputs: set[str] | None = None

    @property
    def url(self) -> str:
        return self.endpoint.infer_url

    def explain(self, columns: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """``outputs`` (V2 output names) for the rows given as ``columns``, as arrays."""
        numbers = {name for name, values in columns.items() if values.dtype.kind in "iuf"}
        body, json_length = tensors.write_request(
            columns, outputs=outputs, binary_inputs=numbers, binary_outputs=self._binary(outputs)
        )
        headers = {"Content-Type": "application/json"}
        if json_length is not None:
            headers = {"Content-Type": "application/octet-stream", tensors.HEADER: str(json_length)}

        def infer() -> httpx.Response:
            return self._client.post(self.url, content=body, headers=headers)

        def answer(response: httpx.Response) -> dict[str, np.ndarray]:
            reply = self._read(response)
            if reply.model_version != self.endpoint.version:
                raise WrongModelVersion(
                    f"{self.url} answered as {self.endpoint.model_name} v{reply.model_version}, "
                    f"not v{self.endpoint.version}: another run may have deployed its version there; "
                    "score again once it has finished"
                )
            return reply.tensors

        return self._retrying(infer, answer, "a batch")

    def _retrying(self, send: Any, accept: Any, what: str) -> Any:
        """``accept(send())``, retried with backoff on transport errors, 5xx and a wrong version; a 4xx is
        the request's fault and raised at once."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = send()
            except httpx.TransportError as exc:
                last = exc
            else:
                if 400 <= response.status_code < 500:
                    raise RemarketingError(f"the model server refused {what}: {response.text[:500]}")
                if response.status_code < 400:
                    try:
                        return accept(response)
                    except WrongModelVersion as exc:
                        last = exc
                else:
                    last = RemarketingError(f"HTTP {response.status_code}: {response.text[:200]}")
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        if isinstance(last, WrongModelVersion):
            raise last
        raise ServerUnavailable(
            "the model server",
            self.endpoint.base_url,
            "the score step redeploys it and retries; if that fails too, see `remarketing status` and "
            "its log",
            reason=f"no answer after {self.retries + 1} attempts: {type(last).__name__}",
        )

    def _binary(self, outputs: list[str]) -> set[str]:
        """The outputs that are numbers, from the model's V2 metadata (asked once; threads that ask at the
        same moment may each fetch it, which is harmless)."""
        if self._binary_outputs is None:
            url = f"{self.endpoint.base_url}/v2/models/{self.endpoint.model_name}"

            def numbers(response: httpx.Response) -> set[str]:
                try:
                    described = response.json()["outputs"]
                    return {o["name"] for o in described if o["datatype"] != tensors.BYTES}
                except (ValueError, KeyError, TypeError) as exc:
                    raise RemarketingError(f"the model server's metadata at {url} cannot be read") from exc

            self._binary_outputs = self._retrying(lambda: self._client.get(url), numbers, "its metadata")
        return {name for name in outputs if name in self._binary_outputs}

    def _read(self, response: httpx.Response) -> tensors.Body:
        length = response.headers.get(tensors.HEADER)
        try:
            return tensors.read_response(response.content, int(length) if length else None)
        except tensors.TensorError as exc:
            raise RemarketingError(f"the model server's answer cannot be read: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def _batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def explanation_outputs(spec: DatasetSpec) -> list[str]:
    """The V2 outputs the score step asks for: probability, base value, a contribution per field, reasons."""
    return ["probability", "base_value", *(f"contribution_{c}" for c in spec.feature_names), *REASON_PARTS]


def score_chunk(scorer: HttpScorer, rows: pd.DataFrame, spec: DatasetSpec, concurrency: int) -> pd.DataFrame:
    """Probabilities, contributions (one ``shap_<field>`` column per field) and reasons for one chunk of
    typed rows, batch by batch, ``concurrency`` requests at a time; column by column throughout."""
    outputs = explanation_outputs(spec)
    numeric = set(spec.numeric)

    def one(batch: pd.DataFrame) -> dict[str, np.ndarray]:
        columns = {
            c: batch[c].to_numpy(dtype="float64" if c in numeric else object) for c in spec.feature_names
        }
        answer = scorer.explain(columns, outputs)
        for name in outputs:
            size = 1 if name == "base_value" else len(batch)
            if name not in answer or len(answer[name]) != size:
                raise RemarketingError(f"the model server's answer lacks {name} for its {len(batch)} rows")
        return answer

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(one, _batches(rows, BATCH_ROWS)))
    out: dict[str, Any] = {"customer_id": rows[spec.id_column].to_numpy()}
    out["probability"] = np.concatenate([a["probability"] for a in answers])
    out["base_value"] = np.concatenate([np.repeat(a["base_value"], len(a["probability"])) for a in answers])
    for part in REASON_PARTS:
        out[part] = np.concatenate([a[part] for a in answers])
    for c in spec.feature_names:
        out[f"shap_{c}"] = np.concatenate([a[f"contribution_{c}"] for a in answers])
    return pd.DataFrame(out)


def score(
    ctx: StepContext,
    *,
    endpoints: Any,
    arms: Any,
    rows: Chunks,
    scored: Chunks,
    deployer: Deployer,
    concurrency: int = 4,
) -> StepResult:
    """Score this shard's chunks (every ``scoring_shards``-th, :meth:`Chunks.owned`) through each row's
    arm's endpoint into ``scored``, under the chunk's own number (each row keeps its arm and the model
    version that scored it). A server that stops answering is deployed again and the chunk retried, up
    to ``scoring_shard_retries`` times; then the shard fails, naming itself, and the run with it (publish
    never runs on part of the file)."""
    spec, shards = ctx.spec, ctx.settings.scoring_shards
    shard = ctx.shard or 0
    retries = ctx.settings.scoring_shard_retries
    scorers = {arm: HttpScorer(e) for arm, e in endpoints.endpoints.items()}
    warnings: list[str] = []
    count = 0
    started = time.perf_counter()

    def redeploy(arm: str) -> None:
        model = arms.models[arm]
        for scorer in scorers.values():
            scorer.close()
        if CHALLENGER in arms.models:  # both arms again: on KServe the pair is one InferenceService
            again = deployer.deploy_experiment(
                arms.models[CHAMPION], arms.models[CHALLENGER], round(arms.share * 100)
            )
        else:
            again = {CHAMPION: deployer.deploy(model.name, model.version, model.uri)}
        scorers.update({a: HttpScorer(e) for a, e in again.items()})
        message = (
            f"the model server of v{model.version} stopped answering; it was redeployed and scoring resumed"
        )
        if message not in warnings:
            warnings.append(message)

    def arm_scores(arm: str, frame: pd.DataFrame, chunk: int) -> pd.DataFrame:
        for _ in range(retries):
            try:
                return score_chunk(scorers[arm], frame, spec, concurrency)
            except ServerUnavailable:
                redeploy(arm)
        try:
            return score_chunk(scorers[arm], frame, spec, concurrency)
        except ServerUnavailable as exc:
            where = f"shard {shard + 1} of {shards}" if shards > 1 else "the score step"
            tries = f"{retries + 1} attempts, redeploying it between them" if retries else "1 attempt"
            raise ServerUnavailable(
                "the model server",
                scorers[arm].endpoint.base_url,
                f"{where} gave up on chunk {chunk} after {tries}; nothing was published",
                reason=exc.reason,
            ) from exc

    try:
        for index, path in rows.owned(shard, shards):
            frame = pd.read_parquet(path)
            assigned = arms.assign(frame[spec.id_column])
            parts = []
            for arm in arms.models:
                mine = frame[assigned == arm]
                if len(mine):
                    part = arm_scores(arm, mine, index).set_index(mine.index)
                    part.insert(1, "arm", arm)
                    part.insert(2, "model_version", arms.models[arm].version)
                    parts.append(part)
            scored.write(index, pd.concat(parts).loc[frame.index].reset_index(drop=True))
            count += len(frame)
    finally:
        for scorer in scorers.values():
            scorer.close()
    seconds = time.perf_counter() - started
    return StepResult(
        record=RecordChange(warnings=warnings),
        metrics={"rows_scored": count, "rows_per_second": count / seconds if seconds else 0.0},
    )
