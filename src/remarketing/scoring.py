"""The scoring pipeline's steps as plain functions: validate the weekly file in chunks, score it through
the model server's V2 ``infer`` (probabilities, contributions and reasons as one tensor each, column by
column) with bounded concurrency and retries, then publish the scored file, rejects, contributions and
manifest.

Nothing reaches ``output/<run_id>/`` until every row is scored, and ``predictions.csv`` is written last:
a partial file is never published as a success.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from remarketing import contact_file, contacts, parameters, tensors
from remarketing.contact_file import REASON_PARTS, write_csv
from remarketing.datasets import DatasetSpec
from remarketing.drift import overview as drift_overview
from remarketing.errors import DataValidationError, RemarketingError, Unavailable
from remarketing.expectation import ScoreBands
from remarketing.ports import CHALLENGER, CHAMPION, Deployer, Endpoint, ModelRef, Registry
from remarketing.settings import Settings
from remarketing.step import Chunks, MergedChunks, RecordChange, StepContext, StepResult
from remarketing.storage import Storage, join
from remarketing.streamed_plan import ARMS, StreamedPlan, plan_file

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
    """The scoring pipeline's ``deploy`` task: :func:`resolve` the arms, then :func:`deploy` them."""
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


# --- 4. publish -----------------------------------------------------------------------------------------


def contact_policy(settings: Settings, params: dict[str, Any], rows: int, key: str = "") -> contacts.Policy:
    """The run's contact policy: its own parameters (an upload's) win over the settings. ``key`` (the
    file's sha256) makes each file's random draws its own."""
    given = parameters.parse(params)
    asked = given.get("budget")
    budget = settings.budget_for(
        rows, budget=None if asked is None else int(asked), share=given.get("budget_share")
    )
    by_value = "call_cost" in given
    return contacts.Policy(
        budget=int(budget),
        call_cost=given["call_cost"] if by_value else settings.call_cost,
        conversion_value=given["conversion_value"] if by_value else settings.conversion_value,
        holdout_share=float(given.get("holdout_share", settings.holdout_share)),
        explore_share=float(given.get("explore_share", settings.explore_share)),
        seed=settings.seed,
        key=key,
    )


def expectations(
    backtest: pd.DataFrame | None, totals: contacts.Totals, scores: ScoreBands
) -> dict[str, Any]:
    """The expected conversion rate of the targeted customers with its interval (from the backtests'
    calibration errors at the same share of the file), and whether the file's scores have shifted."""
    from remarketing.expectation import backtest_errors, rate_interval, score_shift

    if backtest is None:
        return {"interval": None, "prior_shift": None}
    targeted = totals.count("targeted")
    interval = None
    if targeted:  # no one targeted (nobody worth a call, or all held out): nothing is promised
        share = totals.count("targeted", "holdout") / int(totals.customers.sum())
        errors = backtest_errors(backtest, share)
        interval = rate_interval(totals.expected("targeted") / targeted, targeted, errors).as_dict()
    return {"interval": interval, "prior_shift": score_shift(backtest, scores)}


def publish(
    ctx: StepContext,
    *,
    model: ModelRef,
    arms: Any,
    rows: Chunks,
    scored: Chunks | MergedChunks,
    rejects: pd.DataFrame,
) -> StepResult:
    """Choose the contact list (targeted, holdout, explore), write predictions.csv, rejects.csv,
    contributions.parquet and manifest.json to ``output/<run_id>/`` (predictions.csv last); the run is
    then finished."""
    s, spec, storage, record = ctx.settings, ctx.spec, ctx.storage, ctx.run
    _check_every_chunk_scored(rows, scored)
    n_scored = scored.rows()
    policy = contact_policy(s.whole, record.params, n_scored, key=record.source.sha256 or "")
    meta = _model_metadata(storage, model.uri)
    out = join(s.artifacts_root, "output", ctx.run_id)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ThreadPoolExecutor(max_workers=1) as uploads,
        _lookup_writer(ctx, model) as lookup,  # its run commits after predictions.csv is uploaded
        _LookupInBackground(lookup) as background,  # ... once its worker is done
    ):
        local = Path(tmp)
        plan = plan_file(
            lambda: scored.frames(columns=["customer_id", "arm", "probability"]), n_scored, policy, local
        )
        listed = _list_chunks(spec, meta, policy, plan, rows, scored, local, background)
        plan.close()
        # uploaded while predictions.csv is written (predictions.csv itself still goes last)
        contributions = uploads.submit(
            storage.upload_file,
            join(out, "contributions.parquet"),
            local / "contributions.parquet",
            content_type=_content_type("contributions.parquet"),
        )
        totals = sum(listed.totals.values(), contacts.Totals())
        outlook = {
            **contacts.summary(totals, policy),
            **expectations(_model_backtest(storage, model.uri), totals, listed.scores),
        }
        experiment = contact_file.experiment_summary(arms, listed.totals)
        outlook["drift"] = drift_overview(listed.drift, meta.get("backtest_drift"))
        warnings = _outlook_warnings(outlook)
        manifest = _manifest(ctx.run_id, ctx.dataset, record, model, meta, outlook, policy, warnings, out)
        manifest["drift"] = listed.drift
        manifest["experiment"] = experiment
        write_csv(rejects, local / "rejects.csv")
        listed.csv.write(local / "predictions.csv")
        (local / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        contributions.result()
        for name in ("rejects.csv", "manifest.json", "predictions.csv"):
            storage.upload_file(join(out, name), local / name, content_type=_content_type(name))
        background.finish()  # every chunk in the table (an error here rolls the run's rows back)
    return StepResult(
        record=RecordChange(
            warnings=warnings,
            metrics={
                **_run_metrics(record, n_scored, outlook),
                "experiment": experiment,
                # each feature's PSI against training (exported to Prometheus; the manifest has the rest)
                "feature_psi": {c: d["psi"] for c, d in listed.drift.items() if d.get("psi") is not None},
            },
            fields={
                "predictions_uri": join(out, "predictions.csv"),
                "manifest_uri": join(out, "manifest.json"),
            },
            finish=True,
        ),
        metrics={"rows_scored": float(n_scored), "contacted": float(outlook["calls"])},
    )


def _check_every_chunk_scored(rows: Chunks, scored: Chunks | MergedChunks) -> None:
    """Nothing is published from part of the file: every validated chunk has its scored chunk."""
    missing = sorted({f.name for f in rows.files()} - {f.name for f in scored.files()})
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise RemarketingError(
            f"{len(missing)} of {len(rows.files())} chunks of the file were not scored ({shown}): "
            "nothing is published from part of the file"
        )


def _outlook_warnings(outlook: dict[str, Any]) -> list[str]:
    shift = outlook.get("prior_shift") or {}
    warnings = [shift["message"]] if shift.get("detected") else []
    if outlook["drift"].get("message"):
        warnings.append(outlook["drift"]["message"])
    selected = outlook["groups"]["targeted"] + outlook["groups"]["holdout"]
    if outlook.get("break_even_probability") is not None and selected < outlook["budget"]:
        warnings.append(
            f"only {outlook['worth_calling']:,} customers are worth a call (probability above the "
            f"break-even {outlook['break_even_probability']:.1%}): the list is shorter than the budget "
            f"of {outlook['budget']:,}"
        )
    return warnings


def _run_metrics(record: Any, rows_scored: int, outlook: dict[str, Any]) -> dict[str, Any]:
    """The run record's figures: counts, the groups, the expectation and its interval, the profit."""
    from remarketing.runs import SCORING_METRICS

    interval = outlook.get("interval") or {}
    metrics: dict[str, Any] = {
        **{key: outlook.get(key) for key in SCORING_METRICS},  # profit, break-even, cost and value
        **outlook["groups"],
        "rows_read": record.metrics.get("rows_read"),
        "rows_scored": rows_scored,
        "rows_rejected": record.metrics.get("rows_rejected", 0),
        "contacted": outlook["calls"],
        "expected_conversion_rate_low": interval.get("low"),
        "expected_conversion_rate_high": interval.get("high"),
        "interval_level": interval.get("level"),
        "prior_shift": (outlook.get("prior_shift") or {}).get("detected"),
        "drift_level": outlook["drift"]["level"],
        "drifted_features": outlook["drift"]["major"],
        "drift_beyond_backtests": outlook["drift"]["beyond_backtests"],
        "drift_message": outlook["drift"].get("message"),
    }
    return metrics


def _manifest(
    run_id: str,
    dataset: str,
    record: Any,
    model: ModelRef,
    meta: dict[str, Any],
    outlook: dict[str, Any],
    policy: contacts.Policy,
    warnings: list[str],
    out: str,
) -> dict[str, Any]:
    asked = {k: record.params[k] for k in parameters.PARAMETERS if k in record.params}
    return {
        "run_id": run_id,
        "dataset": dataset,
        "source": record.source.model_dump(),
        "model": {
            "name": model.name,
            "version": model.version,
            "uri": model.uri,
            "family": meta.get("family"),
            "trained_on": meta.get("training_data"),
            "fitted_on": meta.get("fitted_on"),
        },
        "counts": {
            "rows_read": record.metrics.get("rows_read"),
            "rows_scored": sum(outlook["groups"].values()),
            "rows_rejected": record.metrics.get("rows_rejected", 0),
        },
        "contact_list": {
            "asked": asked,
            "rule": "p * conversion_value - call_cost > 0, best first, up to the budget"
            if policy.by_value
            else "the top of the ranking, up to the budget",
            **{k: v for k, v in outlook.items() if k not in ("interval", "prior_shift", "drift")},
        },
        "expected_conversion_rate": outlook["expected_conversion_rate"],
        "expected_conversions": outlook["expected_conversions"],
        "base_rate": outlook["base_rate"],
        "interval": outlook.get("interval"),
        "prior_shift": outlook.get("prior_shift"),
        "drift_overview": outlook["drift"],
        "calibration": {
            "method": (meta.get("calibrated_on") or {}).get("method"),
            "rows": (meta.get("calibrated_on") or {}).get("rows"),
            "coefficients": meta.get("calibration"),
        },
        "unseen_categories": record.metrics.get("unseen_categories", {}),
        "warnings": [*record.warnings, *(w for w in warnings if w not in record.warnings)],
        "files": {n: join(out, n) for n in ("predictions.csv", "rejects.csv", "contributions.parquet")},
    }


def _lookup_writer(ctx: StepContext, model: ModelRef) -> Any:
    """The run's rows of the customer lookup table (remarketing.customer_lookup): SQLite in the state
    folder; in the cloud none yet (the table there would be Cloud SQL), so nothing is written."""
    from contextlib import nullcontext

    from remarketing.customer_lookup import LookupWriter

    s = ctx.settings
    if s.mode != "local":
        return nullcontext(None)
    return LookupWriter(
        s.lookup_path,
        dataset=ctx.dataset,
        run_id=ctx.run_id,
        scored_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_version=str(model.version),
        keep_runs=s.lookup_runs_kept,
    )


@dataclass
class _Listed:
    """What publish learns from reading the scored file once, chunk by chunk."""

    csv: contact_file.RankedCsv  # predictions.csv's rows, spilled by line, to be written
    totals: dict[str, contacts.Totals]  # each arm's groups
    scores: ScoreBands
    drift: dict[str, Any]  # each feature's drift against training


def _list_chunks(
    spec: DatasetSpec,
    meta: dict[str, Any],
    policy: contacts.Policy,
    plan: StreamedPlan,
    rows: Chunks,
    scored: Chunks | MergedChunks,
    folder: Path,
    lookup: _LookupInBackground,
) -> _Listed:
    """Each chunk once: its plan and predictions.csv rows (to :class:`contact_file.RankedCsv`), its
    contributions (into contributions.parquet), its lookup rows; the list's totals, the scores' bands and
    the drift on the way."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from remarketing.drift import DriftCounter

    listed = _Listed(
        contact_file.RankedCsv(folder, len(plan)),
        {arm: contacts.Totals() for arm in ARMS},
        ScoreBands(),
        {},
    )
    drift = DriftCounter(meta.get("training_profile", {}))
    skip = ["probability", *REASON_PARTS]
    writer, start = None, 0
    for features, result in zip(rows.frames(columns=spec.feature_names), scored.frames(), strict=True):
        chunk_plan, lines = plan.of_rows(start, start + len(result))
        predictions = contact_file.rows_of(spec, result, chunk_plan)
        listed.csv.add(predictions, lines)
        probability, arm = result["probability"].to_numpy(dtype="float64"), result["arm"].to_numpy()
        for name, totals in listed.totals.items():
            mine = arm == name
            totals.add(chunk_plan["group"][mine], probability[mine], policy)
        listed.scores.add(probability)
        drift.add(features)
        table = pa.Table.from_pandas(result.drop(columns=skip), preserve_index=False)
        writer = writer or pq.ParquetWriter(folder / "contributions.parquet", table.schema)
        writer.write_table(table)
        lookup.add(predictions, features, result)
        start += len(result)
    if writer:
        writer.close()
    listed.drift = drift.summary()
    return listed


class _LookupInBackground:
    """The lookup table's rows built and written in a thread of their own while publish writes its files
    (at a million customers the table takes about as long as predictions.csv); at most two chunks wait.
    Without a table (the cloud) it does nothing."""

    def __init__(self, lookup: Any) -> None:
        from collections import deque

        self.lookup = lookup
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookup")
        self.pending: Any = deque()

    def add(self, predictions: pd.DataFrame, features: pd.DataFrame, result: pd.DataFrame) -> None:
        if self.lookup is None:
            return
        while len(self.pending) >= 2:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._write, predictions, features, result))

    def _write(self, predictions: pd.DataFrame, features: pd.DataFrame, result: pd.DataFrame) -> None:
        self.lookup.add(_lookup_rows(predictions, features, result))

    def finish(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def __enter__(self) -> _LookupInBackground:
        return self

    def __exit__(self, *_: object) -> None:
        """After an error too: the worker stops before the table's transaction is rolled back."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def _lookup_rows(predictions: pd.DataFrame, features: pd.DataFrame, result: pd.DataFrame) -> pd.DataFrame:
    """A chunk's rows of the lookup table: its predictions.csv rows (worded reasons, rank, group), the
    base value, every contribution and the customer's own values."""
    values = features.reset_index(drop=True).add_prefix("value_")
    extra = result[["base_value", *(c for c in result.columns if c.startswith("shap_"))]].reset_index(
        drop=True
    )
    return pd.concat([predictions.reset_index(drop=True), extra, values], axis=1)


def _content_type(name: str) -> str:
    return {"csv": "text/csv", "json": "application/json"}.get(
        name.rsplit(".", 1)[1], "application/octet-stream"
    )


def _model_metadata(storage: Storage, uri: str) -> dict[str, Any]:
    return json.loads(storage.read_text(join(uri, "metadata.json")))


def _model_backtest(storage: Storage, uri: str) -> pd.DataFrame | None:
    """The bundle's out-of-time backtest predictions (none in bundles made before backtests)."""
    import io

    from remarketing.errors import StorageError

    try:
        return pd.read_parquet(io.BytesIO(storage.read_bytes(join(uri, "backtest.parquet"))))
    except StorageError:
        return None
