"""The scoring pipeline's steps as plain functions: validate the weekly file in chunks, score it through
the model server's V1 ``:explain`` (probabilities, contributions and reasons in one call) with bounded
concurrency and retries, then publish the scored file, rejects, contributions and manifest.

Nothing reaches ``output/<run_id>/`` until every row is scored, and ``predictions.csv`` is written last:
a partial file is never published as a success.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd

from remarketing.datasets import DatasetSpec, load_spec
from remarketing.errors import DataValidationError, RemarketingError
from remarketing.runs import step_context
from remarketing.settings import Settings
from remarketing.storage import Storage, join

CHUNK_ROWS = 50_000  # rows validated and kept in memory at once
BATCH_ROWS = 2_000  # rows per request to the model server
FORMULA_PREFIXES = ("=", "+", "-", "@")
PREDICTION_COLUMNS = [
    "customer_id",
    "probability",
    "rank",
    "decile",
    "contact",
    "reason_1",
    "reason_2",
    "reason_3",
    "model_version",
]


def chunk_files(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).glob("chunk-*.parquet"))


# --- 1. validate -------------------------------------------------------------------------------------


def validate_weekly(
    settings: Settings | dict, run_id: str, source_uri: str, dataset: str, rows_dir: str, rejects_path: str
) -> dict[str, Any]:
    """Check the weekly file against the spec without the target, chunk by chunk: typed rows to
    ``rows_dir/chunk-*.parquet``, rejected cells to ``rejects_path``."""
    from remarketing.validation import Purpose, summarise, validate_file

    s, storage, store = step_context(settings)
    with store.step(run_id, "validate"):
        spec = load_spec(dataset)
        record = store.get(run_id)
        out = Path(rows_dir)
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "weekly.csv"
            generation = record.source.generation if source_uri.startswith("gs://") else None
            digest, size = storage.download_file(source_uri, local, generation=generation)
            warnings: list[str] = []
            rejects: list[pd.DataFrame] = []
            unseen: dict[str, int] = {}
            scored, id_generated = 0, False
            for i, chunk in enumerate(
                validate_file(local, spec, Purpose.SCORING, chunk_rows=CHUNK_ROWS, source=source_uri)
            ):
                warnings.extend(chunk.warnings)
                rejects.append(chunk.rejects)
                for column, count in chunk.unseen_categories.items():
                    unseen[column] = unseen.get(column, 0) + count
                id_generated = chunk.id_generated
                scored += len(chunk.frame)
                chunk.frame.to_parquet(out / f"chunk-{i:05d}.parquet", index=False)
        all_rejects = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame()
        rejected_rows = int(all_rejects["row"].nunique()) if len(all_rejects) else 0
        if scored == 0:
            from remarketing.validation import describe_failures

            cases = all_rejects.rename(columns={"reason": "check", "value": "failure_case"})
            cases["index"] = cases["row"] - 2
            raise DataValidationError(
                ["every row was rejected:", *describe_failures(cases, spec.id_column)], source=source_uri
            )
        warnings += summarise(spec, rejected_rows, unseen, id_generated, scored + rejected_rows)
        Path(rejects_path).parent.mkdir(parents=True, exist_ok=True)
        all_rejects.to_parquet(rejects_path, index=False)
        summary = {
            "rows_read": scored + rejected_rows,
            "rows_valid": scored,
            "rows_rejected": rejected_rows,
            "unseen_categories": unseen,
        }

        def note(r):
            r.warnings.extend(w for w in warnings if w not in r.warnings)
            r.source.sha256, r.source.size = digest, size
            r.metrics.update(
                {
                    "rows_read": summary["rows_read"],
                    "rows_rejected": rejected_rows,
                    "unseen_categories": unseen,
                }
            )

        store.update(run_id, note)
    return summary


# --- 2. resolve -------------------------------------------------------------------------------------


def resolve_model(settings: Settings | dict, run_id: str, dataset: str) -> dict[str, str]:
    """The champion, or the version asked for in the run's parameters."""
    from remarketing.registry import Registry

    s, _, store = step_context(settings)
    with store.step(run_id, "resolve-model"):
        name = s.model_name(dataset)
        asked = store.get(run_id).params.get("model_version")
        info = Registry(s.tracking_uri).resolve(name, str(asked) if asked else None)

        def note(r):
            r.model_name, r.model_version = name, info.version

        store.update(run_id, note)
    return {"model_name": name, "version": info.version, "uri": info.source}


# --- 3. deploy (the adapter passes the deployer) --------------------------------------------------------


def record_deploy(
    settings: Settings | dict, run_id: str, deploy: Callable[[], dict[str, str]]
) -> dict[str, str]:
    _, _, store = step_context(settings)
    with store.step(run_id, "deploy"):
        endpoint = deploy()
        store.update(run_id, lambda r: r.pipeline_run.update({"endpoint": endpoint}))
    return endpoint


# --- 4. score -------------------------------------------------------------------------------------------


class ServerUnavailable(RemarketingError):
    """The model server did not answer after every retry."""


@dataclass
class HttpScorer:
    """KServe V1 ``:explain`` over HTTP, with retries on transient errors (connection refused or reset,
    timeouts, 5xx). A 4xx is the request's fault and is not retried."""

    base_url: str
    model_name: str
    retries: int = 4
    backoff: float = 0.5
    timeout: float = 120.0

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=self.timeout, headers={"Content-Type": "application/json"})

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/v1/models/{self.model_name}:explain"

    def explain(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = orjson.dumps({"instances": records}, option=orjson.OPT_SERIALIZE_NUMPY)
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self.url, content=body)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code < 500:
                    if response.status_code >= 400:
                        raise RemarketingError(f"the model server refused a batch: {response.text[:500]}")
                    return orjson.loads(response.content)["explanations"]
                last = RemarketingError(f"HTTP {response.status_code}: {response.text[:200]}")
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise ServerUnavailable(
            f"the model server at {self.base_url} did not answer after {self.retries + 1} attempts: {last}"
        )

    def close(self) -> None:
        self._client.close()


def _batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def score_chunk(scorer: HttpScorer, rows: pd.DataFrame, spec: DatasetSpec, concurrency: int) -> pd.DataFrame:
    """Probabilities, contributions (one column per field) and reasons for one chunk of typed rows."""
    batches = list(_batches(rows, BATCH_ROWS))
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(lambda b: scorer.explain(b[spec.feature_names].to_dict("records")), batches))
    explained = [e for answer in answers for e in answer]
    if len(explained) != len(rows):
        raise RemarketingError(f"the model server answered {len(explained)} rows for {len(rows)}")
    out = pd.DataFrame({"customer_id": rows[spec.id_column].to_numpy()})
    out["probability"] = [e["probability"] for e in explained]
    out["base_value"] = [e["base_value"] for e in explained]
    contributions = pd.DataFrame([e["contributions"] for e in explained], columns=spec.feature_names)
    for k in range(3):
        out[f"reason_{k + 1}"] = [e["reasons"][k] if len(e["reasons"]) > k else "" for e in explained]
    return pd.concat([out, contributions.add_prefix("shap_")], axis=1)


def score_rows(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    endpoint: dict[str, str],
    rows_dir: str,
    scored_dir: str,
    *,
    redeploy: Callable[[], dict[str, str]] | None = None,
    concurrency: int = 4,
) -> dict[str, Any]:
    """Stream every chunk through the endpoint. When the server stops answering, ``redeploy`` (if given)
    is called once to bring it back, and the chunk is retried; then the run fails clearly."""
    s, _, store = step_context(settings)
    with store.step(run_id, "score"):
        spec = load_spec(dataset)
        out = Path(scored_dir)
        out.mkdir(parents=True, exist_ok=True)
        scorer = HttpScorer(endpoint["base_url"], endpoint["model_name"])
        redeployed = False
        scored = 0
        started = time.perf_counter()
        try:
            for path in chunk_files(rows_dir):
                rows = pd.read_parquet(path)
                try:
                    result = score_chunk(scorer, rows, spec, concurrency)
                except ServerUnavailable:
                    if redeploy is None or redeployed:
                        raise
                    redeployed = True
                    scorer.close()
                    endpoint = redeploy()
                    scorer = HttpScorer(endpoint["base_url"], endpoint["model_name"])
                    store.update(
                        run_id,
                        lambda r: r.warnings.append(
                            "the model server stopped answering; it was redeployed and scoring resumed"
                        ),
                    )
                    result = score_chunk(scorer, rows, spec, concurrency)
                result.to_parquet(out / path.name, index=False)
                scored += len(rows)
        finally:
            scorer.close()
        seconds = time.perf_counter() - started
    return {
        "rows_scored": scored,
        "seconds": seconds,
        "rows_per_second": scored / seconds if seconds else None,
    }


# --- 5. publish -----------------------------------------------------------------------------------------


def escape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (= + - @) get a leading apostrophe; numbers
    are left alone."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            text = frame[column].astype(str)
            frame[column] = text.where(~text.str.startswith(FORMULA_PREFIXES), "'" + text)
    return frame


def rank_customers(probabilities: np.ndarray, budget: int) -> pd.DataFrame:
    """Rank 1 is the most likely to subscribe; decile 1 is the top 10%; the top ``budget`` are called."""
    order = np.argsort(-probabilities, kind="stable")
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(1, len(order) + 1)
    decile = np.minimum(10, (rank - 1) * 10 // len(rank) + 1)
    return pd.DataFrame({"rank": rank, "decile": decile, "contact": rank <= budget})


def budget_for(settings: Settings, params: dict[str, Any], rows: int) -> int:
    def given(key: str) -> Any:
        return params.get(key) if params.get(key) not in (None, "") else None

    return settings.budget_for(rows, budget=given("budget"), share=given("budget_share"))


def publish(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    model: dict[str, str],
    rows_dir: str,
    scored_dir: str,
    rejects_path: str,
) -> dict[str, Any]:
    """Rank, write predictions.csv, rejects.csv, contributions.parquet and manifest.json to
    ``output/<run_id>/`` (predictions.csv last), and close the run record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from remarketing.drift import DriftCounter

    s, storage, store = step_context(settings)
    with store.step(run_id, "publish"):
        spec = load_spec(dataset)
        record = store.get(run_id)
        files = chunk_files(scored_dir)
        head = ["customer_id", "probability", "reason_1", "reason_2", "reason_3"]
        scored = pd.concat([pd.read_parquet(f, columns=head) for f in files], ignore_index=True)
        budget = budget_for(s, record.params, len(scored))
        ranked = pd.concat([scored, rank_customers(scored["probability"].to_numpy(), budget)], axis=1)
        ranked["model_version"] = model["version"]
        ranked = ranked.sort_values("rank")[PREDICTION_COLUMNS]
        contacted = ranked["probability"].head(budget)
        expected: dict[str, float] = {
            "contacted": budget,
            "expected_conversions": float(contacted.sum()),
            "expected_conversion_rate": float(contacted.mean()),
            "base_rate": float(ranked["probability"].mean()),
        }
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp)
            meta = _model_metadata(storage, model["uri"])
            drift = DriftCounter(meta.get("training_profile", {}))
            writer = None
            for rows_file, scored_file in zip(chunk_files(rows_dir), files, strict=True):
                drift.add(pd.read_parquet(rows_file, columns=spec.feature_names))
                part = pd.read_parquet(scored_file).drop(columns=head[1:])
                table = pa.Table.from_pandas(part, preserve_index=False)
                writer = writer or pq.ParquetWriter(local / "contributions.parquet", table.schema)
                writer.write_table(table)
            if writer:
                writer.close()
            rejects = pd.read_parquet(rejects_path)
            escape_cells(rejects).to_csv(local / "rejects.csv", index=False)
            escape_cells(ranked).to_csv(local / "predictions.csv", index=False, float_format="%.6f")
            out = join(s.artifacts_root, "output", run_id)
            asked: dict[str, Any] = {
                k: record.params[k] for k in ("budget", "budget_share") if k in record.params
            }
            manifest = {
                "run_id": run_id,
                "dataset": dataset,
                "source": record.source.model_dump(),
                "model": {
                    "name": model["model_name"],
                    "version": model["version"],
                    "uri": model["uri"],
                    "family": meta.get("family"),
                    "trained_on": meta.get("training_data"),
                },
                "counts": {
                    "rows_read": record.metrics.get("rows_read"),
                    "rows_scored": len(ranked),
                    "rows_rejected": record.metrics.get("rows_rejected", 0),
                },
                "budget": {"contacted": budget, **asked},
                **{k: v for k, v in expected.items() if k != "contacted"},
                "calibration": {
                    "method": "Platt scaling on the most recent labelled slice seen in training",
                    "slice": meta.get("calibrated_on"),
                    "coefficients": meta.get("calibration"),
                },
                "unseen_categories": record.metrics.get("unseen_categories", {}),
                "drift": drift.summary(),
                "warnings": record.warnings,
                "files": {
                    n: join(out, n) for n in ("predictions.csv", "rejects.csv", "contributions.parquet")
                },
            }
            (local / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
            for name in ("contributions.parquet", "rejects.csv", "manifest.json", "predictions.csv"):
                storage.write_bytes(
                    join(out, name), (local / name).read_bytes(), content_type=_content_type(name)
                )
        metrics = {
            "rows_scored": len(ranked),
            "rows_rejected": record.metrics.get("rows_rejected", 0),
            **expected,
        }
    store.finish(
        run_id,
        predictions_uri=join(out, "predictions.csv"),
        manifest_uri=join(out, "manifest.json"),
        metrics={**record.metrics, **metrics},
    )
    return metrics


def _content_type(name: str) -> str:
    return {"csv": "text/csv", "json": "application/json"}.get(
        name.rsplit(".", 1)[1], "application/octet-stream"
    )


def _model_metadata(storage: Storage, uri: str) -> dict[str, Any]:
    return json.loads(storage.read_text(join(uri, "metadata.json")))
