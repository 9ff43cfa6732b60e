"""The scoring pipeline's last step as plain functions: choose the contact list (targeted, holdout,
explore) and write ``output/<run_id>/``: predictions.csv best first, rejects.csv, contributions.parquet and
manifest.json, with the run's figures and the customer lookup table's rows.

Nothing reaches ``output/<run_id>/`` until every chunk is scored, and ``predictions.csv`` is written last:
a partial file is never published as a success. Memory stays flat whatever the file's size: the ranking
is made out of memory (:mod:`remarketing.streamed_plan`) and each scored chunk is read once.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from remarketing import contact_file, contacts, parameters
from remarketing.contact_file import REASON_PARTS, write_csv
from remarketing.datasets import DatasetSpec
from remarketing.drift import overview as drift_overview
from remarketing.errors import RemarketingError
from remarketing.expectation import ScoreBands
from remarketing.ports import ModelRef
from remarketing.settings import Settings
from remarketing.step import Chunks, MergedChunks, RecordChange, StepContext, StepResult
from remarketing.storage import Storage, join
from remarketing.streamed_plan import ARMS, StreamedPlan, plan_file


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
    """The run's rows of the customer lookup table (remarketing.lookup_table: SQLite in the state folder
    locally, PostgreSQL on Cloud SQL in the cloud)."""
    from remarketing.lookup_table import run_writer

    return run_writer(
        ctx.settings,
        dataset=ctx.dataset,
        run_id=ctx.run_id,
        scored_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_version=str(model.version),
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
    """The lookup table's rows built and written in a thread of their own while publish writes its files;
    at most two chunks wait."""

    def __init__(self, lookup: Any) -> None:
        from collections import deque

        self.lookup = lookup
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookup")
        self.pending: Any = deque()

    def add(self, predictions: pd.DataFrame, features: pd.DataFrame, result: pd.DataFrame) -> None:
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
