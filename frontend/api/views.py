"""What the API answers, built from run records, receipts, scored outputs and the registry.

Plain functions over the core (no FastAPI), so the routes stay thin and these are testable alone.
"""

from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from remarketing import datasets, flow, uploads
from remarketing.contact_file import unescape
from remarketing.errors import ModelNotFoundError, NotFoundError, StorageError
from remarketing.lookup_table import Lookup
from remarketing.runs import RunRecord, RunStore, outcome
from remarketing.settings import Settings
from remarketing.storage import Storage, join
from remarketing.validation import csv_options

PLOTS = {
    "backtest": "plots/backtest.png",
    "roc": "plots/roc.png",
    "pr": "plots/pr.png",
    "lift": "plots/lift.png",
    "calibration": "plots/calibration.png",
    "shap_summary": "shap/shap_summary.png",
    "shap_importance": "shap/shap_importance.png",
}


# --- a small cache for immutable things (published outputs, MLflow artifacts) -------------------------
T = TypeVar("T")


class _Cache:
    def __init__(self, size: int = 16) -> None:
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


_outputs = _Cache(8)
_artifacts = _Cache(64)


# --- runs ------------------------------------------------------------------------------------------
def links(settings: Settings, record: RunRecord) -> dict[str, str | None]:
    tracking = settings.tracking_uri.rstrip("/")
    mlflow_link = None
    if record.mlflow_run_id:
        mlflow_link = f"{tracking}/#/runs/{record.mlflow_run_id}"
    elif record.model_name and record.model_version:
        mlflow_link = f"{tracking}/#/models/{record.model_name}/versions/{record.model_version}"
    kubeflow = record.pipeline_run.get("ui")
    if not kubeflow and settings.kfp_host and record.pipeline_run.get("kfp_run_id"):
        kubeflow = f"{settings.kfp_host.rstrip('/')}/#/runs/details/{record.pipeline_run['kfp_run_id']}"
    return {"mlflow": mlflow_link, "kubeflow": kubeflow}


def run_view(settings: Settings, storage: Storage, record: RunRecord, *, full: bool = True) -> dict[str, Any]:
    """The record as a person reads it: the status, the predictions URL minted now, the details."""
    out: dict[str, Any] = json.loads(record.model_dump_json())
    out["planned_steps"] = flow.PIPELINES[record.kind].step_names()
    out["file"] = uploads.shown_name(record.source)
    details = outcome(settings, record, storage=storage, mint=full)
    # The mission's key for the link; the CLI's JSON line spells it predictions_url (both documented).
    out["predictions URL"] = details.pop("predictions_url", None)
    if "predictions_url_expires" in details:
        out["predictions_url_expires"] = details.pop("predictions_url_expires")
    out["details"] = {**details, "error": record.error.model_dump() if record.error else None}
    out["links"] = links(settings, record)
    return out


def queued_view(receipt: dict[str, Any]) -> dict[str, Any]:
    """An upload that no launcher has picked up yet."""
    return {
        "run_id": receipt["run_id"],
        "kind": "scoring",
        "dataset": receipt["dataset"],
        "status": "queued",
        "source": {
            "uri": receipt["object"],
            "generation": receipt["generation"],
            "sha256": receipt["sha256"],
            "size": receipt["size"],
        },
        "params": receipt["params"],
        "warnings": receipt.get("warnings", []),
        "steps": [],
        "planned_steps": flow.SCORING.step_names(),
        "file": uploads.given_name(receipt["filename"]),
        "error": None,
        "created": receipt["uploaded_at"],
        "updated": receipt["uploaded_at"],
        "predictions URL": None,
        "details": {"model_version": None, "error": None},
        "links": {"mlflow": None, "kubeflow": None},
        "upload": {"filename": receipt["filename"], "uploaded_at": receipt["uploaded_at"]},
    }


def get_run(
    settings: Settings, storage: Storage, run_id: str, *, reconcile: Callable | None = None, mint: bool = True
) -> dict:
    """The run; ``mint=False`` (a viewer) leaves the predictions URL out and says so."""
    store = RunStore(storage, settings.artifacts_root)
    try:
        record = store.get(run_id)
    except NotFoundError:  # storage that does not answer is Unavailable, raised as it is (503)
        receipt = uploads.read_receipt(storage, settings, run_id)
        if receipt is None:
            raise NotFoundError(f"no run {run_id!r}: check the id (GET /runs lists them)") from None
        return queued_view(receipt)
    if reconcile is not None:
        record = reconcile(settings, store, record)
    view = run_view(settings, storage, record, full=mint)
    if not mint and record.kind == "scoring" and record.status == "success":
        view["predictions_url_withheld"] = "the link opens the contact list: it needs the analyst role"
    return view


def list_runs(
    settings: Settings,
    storage: Storage,
    *,
    kind: str | None,
    status: str | None,
    limit: int,
    dataset: str | None = None,
) -> list[dict[str, Any]]:
    """Run summaries, newest first, with uploads not yet picked up as ``queued``."""
    store = RunStore(storage, settings.artifacts_root)
    views = [run_view(settings, storage, r, full=False) for r in store.list()]
    known = {v["run_id"] for v in views}
    for uri in storage.list(join(settings.artifacts_root, "uploads") + "/"):
        run_id = uri.rsplit("/", 1)[-1].removesuffix(".json")
        if run_id not in known:
            receipt = uploads.read_receipt(storage, settings, run_id)
            if receipt is not None:
                views.append(queued_view(receipt))
    asked = {"kind": kind, "status": status, "dataset": dataset}
    views = [v for v in views if all(want is None or v[key] == want for key, want in asked.items())]
    views.sort(key=lambda v: v["created"], reverse=True)
    return views[:limit]


def performance(settings: Settings, storage: Storage, run_id: str) -> dict[str, Any]:
    """A finished monitoring run's performance.json."""
    try:
        record = RunStore(storage, settings.artifacts_root).get(run_id)
    except NotFoundError:
        raise NotFoundError(f"no run {run_id!r}") from None
    uri = record.metrics.get("performance_uri")
    if record.kind != "monitoring" or not uri:
        raise NotFoundError(f"run {run_id} has no measured week (it is a {record.status} {record.kind} run)")
    return dict(json.loads(storage.read_text(uri)))


# --- scored outputs --------------------------------------------------------------------------------
def _finished_scoring(settings: Settings, storage: Storage, run_id: str) -> RunRecord:
    try:
        record = RunStore(storage, settings.artifacts_root).get(run_id)
    except NotFoundError:
        raise NotFoundError(f"no run {run_id!r}") from None
    if record.kind != "scoring" or record.status != "success" or not record.predictions_uri:
        raise NotFoundError(
            f"run {run_id} has no scored customers (it is a {record.status} {record.kind} run)"
        )
    return record


def _predictions(storage: Storage, record: RunRecord) -> pd.DataFrame:
    uri = record.predictions_uri or ""
    return _outputs.get(
        ("predictions", uri),
        lambda: pd.read_csv(
            io.BytesIO(storage.read_bytes(uri)), dtype={"customer_id": str}, keep_default_na=False
        ),
    )


def predictions(
    settings: Settings, storage: Storage, run_id: str, *, limit: int, contacted_only: bool
) -> dict[str, Any]:
    record = _finished_scoring(settings, storage, run_id)
    frame = _predictions(storage, record)
    if contacted_only:
        frame = frame[frame["contact"].astype(str).isin(["True", "true", "1"])]
    rows = json.loads(frame.head(limit).to_json(orient="records"))
    return {"run_id": run_id, "total": int(len(frame)), "rows": rows, "metrics": record.metrics}


def explanation(settings: Settings, storage: Storage, run_id: str, customer_id: str) -> dict[str, Any]:
    """One customer's probability, reason codes, every SHAP contribution and the base value."""
    record = _finished_scoring(settings, storage, run_id)
    base = join(settings.artifacts_root, "output", run_id)
    contributions = _outputs.get(
        ("contributions", base),
        lambda: pd.read_parquet(io.BytesIO(storage.read_bytes(join(base, "contributions.parquet")))),
    )
    ids = contributions["customer_id"].astype(str)
    match = contributions[ids == customer_id]
    if match.empty:
        raise NotFoundError(
            f"customer {customer_id!r} is not among the {len(contributions):,} scored in {run_id}"
        )
    row = match.iloc[0]
    scored = _predictions(storage, record)
    ranked = scored[scored["customer_id"].map(unescape) == customer_id]
    prediction = ranked.iloc[0] if not ranked.empty else None
    shap_cols = [c for c in contributions.columns if c.startswith("shap_")]
    contribs = {c.removeprefix("shap_"): float(row[c]) for c in shap_cols}
    reasons = [
        {
            "text": unescape(str(prediction[f"reason_{i}"])),
            "field": str(prediction[f"reason_{i}_field"]),
            "value": unescape(str(prediction[f"reason_{i}_value"])),
        }
        for i in (1, 2, 3)
        if prediction is not None and str(prediction[f"reason_{i}"])
    ]
    return {
        "run_id": run_id,
        "customer_id": customer_id,
        "probability": float(prediction["probability"]) if prediction is not None else None,
        "rank": int(prediction["rank"]) if prediction is not None else None,
        "contact": bool(str(prediction["contact"]) in ("True", "true", "1"))
        if prediction is not None
        else None,
        "group": str(prediction["group"]) if prediction is not None else None,
        "reasons": reasons,
        "base_value": float(row["base_value"]),
        "contributions": contribs,
        "values": _customer_values(settings, storage, record, customer_id, list(contribs)),
        "units": "calibrated log-odds: base_value + sum(contributions) = logit(probability)",
        # the version that scored this customer (its arm's, in an experiment)
        "model_version": str(prediction["model_version"])
        if prediction is not None and "model_version" in prediction
        else record.model_version,
        "arm": str(prediction["arm"]) if prediction is not None and "arm" in prediction else "champion",
    }


def _customer_values(
    settings: Settings, storage: Storage, record: RunRecord, customer_id: str, fields: list[str]
) -> dict[str, Any]:
    """The customer's own field values, from the exact uploaded generation (best effort)."""
    try:
        spec = datasets.load_spec(record.dataset)
        frame = _outputs.get(
            ("source", record.source.uri, record.source.generation),
            lambda: pd.read_csv(
                io.BytesIO(storage.read_bytes(record.source.uri, generation=record.source.generation)),
                **csv_options(spec),
                encoding="utf-8-sig",
            ),
        )
        frame.columns = [str(c).strip() for c in frame.columns]
        if spec.id_column in frame.columns:
            hit = frame[frame[spec.id_column].str.strip() == customer_id]
        else:  # the id was generated from the row number
            hit = frame.iloc[[int(customer_id) - 1]] if customer_id.isdigit() else frame.iloc[[]]
        if hit.empty:
            return {}
        return {f: hit.iloc[0][f] for f in fields if f in hit.columns}
    except (StorageError, ValueError, IndexError, pd.errors.ParserError):
        return {}


# --- models ----------------------------------------------------------------------------------------
def models(settings: Settings, registry: Any, storage: Storage, dataset: str | None) -> dict[str, Any]:
    """Every version with its aliases and what it was judged on: the backtests' mean and worst per metric,
    each period's figures, and the rows the deployed model was fitted on (from the bundle's metadata)."""
    names = [dataset] if dataset else datasets.available()
    out = []
    for ds in names:
        name = settings.model_name(ds)
        versions = registry.versions(name)
        for info in versions:
            item = info.as_dict()
            item["dataset"] = ds
            item.update(_judged_on(storage, info.source))
            item["plots"] = {p: f"/models/{info.version}/plots/{p}?dataset={ds}" for p in PLOTS}
            item["shap_importance"] = f"/models/{info.version}/shap?dataset={ds}"
            out.append(item)
    return {"models": out}


def _judged_on(storage: Storage, bundle_uri: str) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        try:
            meta = json.loads(storage.read_text(join(bundle_uri, "metadata.json")))
        except StorageError:
            return {"metrics": {}, "worst": {}, "backtest": [], "fitted_on": None}
        backtest = meta.get("backtest") or {}
        summary = backtest.get("summary") or {"mean": {}, "worst": {}}
        periods = [
            {"period": p["index"], "first_row": p["start"] + 1, "last_row": p["end"], **p["metrics"]}
            for p in backtest.get("periods", [])
        ]
        return {
            "metrics": summary["mean"],
            "worst": summary["worst"],
            "backtest": periods,
            "fitted_on": meta.get("fitted_on"),
            "selection": meta.get("selection"),
            "gate": meta.get("gate"),
        }

    return _artifacts.get(("judged_on", bundle_uri), fetch)


def _version(settings: Settings, registry: Any, dataset: str, version: str) -> Any:
    if dataset not in datasets.available():
        raise NotFoundError(f"unknown dataset {dataset!r}; known: {', '.join(datasets.available())}")
    info = registry.get(settings.model_name(dataset), version)  # ModelNotFoundError -> 404
    if not info.run_id:
        raise ModelNotFoundError(f"{info.name} v{version} has no MLflow run, so no plots")
    return info


def artifact(settings: Settings, registry: Any, dataset: str, version: str, path: str) -> bytes:
    info = _version(settings, registry, dataset, version)

    def fetch() -> bytes:
        try:
            return bytes(registry.artifact(info.run_id, path))
        except NotFoundError:
            raise NotFoundError(f"{info.name} v{version} has no {path}") from None

    return _artifacts.get(("artifact", info.run_id, path), fetch)


def plot(settings: Settings, registry: Any, dataset: str, version: str, name: str) -> bytes:
    if name not in PLOTS:
        raise NotFoundError(f"no plot {name!r}; known: {', '.join(PLOTS)}")
    return artifact(settings, registry, dataset, version, PLOTS[name])


def shap_importance(settings: Settings, registry: Any, dataset: str, version: str) -> dict[str, Any]:
    data = artifact(settings, registry, dataset, version, "shap/shap_importance.json")
    return {"version": version, "dataset": dataset, **json.loads(data)}


_SUCCEEDED: set[str] = set()  # scoring runs known to have succeeded (a success never changes)


def _succeeded(settings: Settings, storage: Storage, run_id: str) -> bool:
    if run_id not in _SUCCEEDED:
        try:
            if RunStore(storage, settings.artifacts_root).get(run_id).status != "success":
                return False
        except NotFoundError:
            return False
        _SUCCEEDED.add(run_id)
    return True


def customer(
    settings: Settings, storage: Storage, lookup: Lookup, dataset: str, customer_id: str, *, history: int = 12
) -> dict[str, Any]:
    """One customer from the lookup table (``remarketing.lookup_table``: SQLite locally, Cloud SQL in the
    cloud): the latest score with its reasons, every contribution and the customer's values (the
    explanation's shape), and the scores of the runs before. Only runs that succeeded count: a publish
    whose run then failed to finish leaves rows no one is shown."""
    runs = lookup.history(dataset, customer_id, limit=settings.lookup_runs_kept)
    runs = [r for r in runs if _succeeded(settings, storage, r["run_id"])]
    latest = lookup.of_run(dataset, customer_id, runs[0]["run_id"]) if runs else None
    if latest is None:
        raise NotFoundError(
            f"customer {customer_id!r} is not among the {dataset} customers of the last "
            f"{settings.lookup_runs_kept} scoring runs: check the id and the dataset"
        )
    earlier = runs[1 : history + 1]
    detail = latest.pop("detail")
    reasons = [
        {
            "text": detail[f"reason_{i}"],
            "field": detail[f"reason_{i}_field"],
            "value": detail[f"reason_{i}_value"],
        }
        for i in (1, 2, 3)
        if detail.get(f"reason_{i}")
    ]
    return {
        **latest,
        "contact": detail.get("contact"),
        "decile": detail.get("decile"),
        "arm": detail.get("arm", "champion"),
        "reasons": reasons,
        "base_value": detail.get("base_value"),
        "contributions": {k.removeprefix("shap_"): v for k, v in detail.items() if k.startswith("shap_")},
        "values": _typed_values(dataset, detail),
        "units": "calibrated log-odds: base_value + sum(contributions) = logit(probability)",
        "history": earlier,
    }


def _typed_values(dataset: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The customer's values as the spec types them (an integer field's 5, not 5.0)."""
    features = datasets.load_spec(dataset).features
    values = {k.removeprefix("value_"): v for k, v in detail.items() if k.startswith("value_")}
    return {
        k: int(v)
        if k in features and features[k].type == "integer" and isinstance(v, float) and v.is_integer()
        else v
        for k, v in values.items()
    }
