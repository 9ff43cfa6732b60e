"""The monitoring pipeline's steps (declared in ``remarketing.flow``): a campaign's outcomes against what
its scoring run promised, and the labelled rows added to the dataset's history.

    validate (the outcomes, and the scoring run they belong to) > measure > judge-experiment
    > extend-history > decide-retraining (remarketing.retraining)

An outcomes file is the bank's id column and the target (``customer_id;y``), in the spec's format. The
scoring run is named in the object's metadata (``scoring_run``: the CLI's ``--run``, the API's route), or
found by the ids: the one successful scoring run of the dataset that scored every id (ambiguous or none:
the run fails saying so).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd

from remarketing.contact_file import unescape
from remarketing.errors import DataValidationError, NotFoundError, PreconditionFailed, RemarketingError
from remarketing.personal_data import pseudonyms
from remarketing.ports import ExperimentLog, Registry, Tracker
from remarketing.runs import RunRecord, RunStore
from remarketing.step import RecordChange, StepContext, StepResult
from remarketing.storage import Storage, join, sha256_bytes
from remarketing.validation import csv_options, decode

SHOWN = 5  # ids or rows named in an error, beside the count
LEVEL = 0.9  # the confidence level of the incremental conversion's interval


def _capped(values: list[Any]) -> str:
    shown = ", ".join(map(str, values[:SHOWN]))
    return shown + (f" and {len(values) - SHOWN:,} more" if len(values) > SHOWN else "")


# --- 1. validate ----------------------------------------------------------------------------------------
def read_outcomes(data: bytes, spec: Any, source: str) -> pd.DataFrame:
    """``customer_id`` (text) and ``label`` (0/1) from an outcomes file; every problem named at once."""
    text = decode(data, spec)
    frame = pd.read_csv(io.StringIO(text), **csv_options(spec))
    frame.columns = [c.strip() for c in frame.columns]
    problems = []
    missing = [c for c in (spec.id_column, spec.target.column) if c not in frame.columns]
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}")
        raise DataValidationError(problems, source=source)
    if frame.empty:
        raise DataValidationError(["the file has a header but no outcome rows"], source=source)
    target = frame[spec.target.column].str.strip()
    allowed = {spec.target.positive, spec.target.negative}
    bad = frame.index[~target.isin(allowed)]
    if len(bad):
        rows = [f"line {i + 2} ({target[i]!r})" for i in bad]
        problems.append(f"{len(bad):,} outcomes are not one of {sorted(allowed)}: {_capped(rows)}")
    ids = frame[spec.id_column].str.strip()
    repeated = sorted(ids[ids.duplicated()].unique())
    if repeated:
        problems.append(f"{len(repeated):,} ids appear more than once: {_capped(repeated)}")
    if problems:
        raise DataValidationError(problems, source=source)
    return pd.DataFrame({"customer_id": ids, "label": (target == spec.target.positive).astype(int)})


def scored_ids(storage: Storage, record: RunRecord) -> pd.DataFrame:
    """A successful scoring run's predictions (ids as the customer gave them)."""
    if record.kind != "scoring":
        raise NotFoundError(f"run {record.run_id} is a {record.kind} run, not a scoring run")
    if record.status != "success" or not record.predictions_uri:
        raise NotFoundError(
            f"scoring run {record.run_id} did not succeed ({record.status}): it scored no one"
        )
    frame = pd.read_csv(io.BytesIO(storage.read_bytes(record.predictions_uri)), dtype={"customer_id": str})
    frame["customer_id"] = frame["customer_id"].map(unescape)
    return frame


def _find_scoring_run(store: RunStore, storage: Storage, dataset: str, ids: set[str]) -> RunRecord:
    candidates = [
        r for r in store.list() if r.kind == "scoring" and r.status == "success" and r.dataset == dataset
    ]
    matching = [r for r in candidates if ids <= set(scored_ids(storage, r)["customer_id"])]
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise DataValidationError(
            [f"no successful {dataset} scoring run scored all these ids: name the run (--run RUN_ID)"]
        )
    raise DataValidationError(
        [
            f"{len(matching)} scoring runs scored all these ids ({_capped([r.run_id for r in matching])}): "
            "name the one these outcomes belong to (--run RUN_ID)"
        ]
    )


def validate(ctx: StepContext, *, source_uri: str) -> StepResult:
    """The outcomes, checked against the spec and against the scoring run they belong to."""
    storage, spec = ctx.storage, ctx.spec
    data = storage.read_bytes(source_uri, generation=ctx.run.source.generation)
    outcomes = read_outcomes(data, spec, source_uri)
    store = RunStore(storage, ctx.settings.artifacts_root)
    asked = ctx.run.params.get("scoring_run")
    ids = set(outcomes["customer_id"])
    if asked:
        scoring, how = store.get(str(asked)), "named in the upload"
    else:
        scoring, how = _find_scoring_run(store, storage, ctx.dataset, ids), "found by the ids"
    if scoring.dataset != ctx.dataset:
        raise DataValidationError(
            [f"scoring run {scoring.run_id} is a {scoring.dataset} run, these outcomes are {ctx.dataset}"]
        )
    unknown = sorted(ids - set(scored_ids(storage, scoring)["customer_id"]))
    if unknown:
        raise DataValidationError(
            [f"{len(unknown):,} ids were never scored by run {scoring.run_id}: {_capped(unknown)}"],
            source=source_uri,
        )
    return StepResult(
        outputs={"outcomes": outcomes, "scoring": {"run_id": scoring.run_id}},
        record=RecordChange(
            warnings=[f"outcomes of scoring run {scoring.run_id} ({how})"],
            metrics={"scoring_run": scoring.run_id, "outcomes": len(outcomes)},
            fields={"model_name": scoring.model_name, "model_version": scoring.model_version},
            source={"sha256": sha256_bytes(data), "size": len(data)},
        ),
    )


# --- 2. measure ------------------------------------------------------------------------------------------
def _rate(labels: pd.Series) -> float | None:
    return float(labels.mean()) if len(labels) else None


def incremental(targeted: pd.Series, holdout: pd.Series, level: float = LEVEL) -> dict[str, Any]:
    """Conversion of the targeted against the held out (who were selected alike and not called): the
    difference, its Newcombe interval (hybrid Wilson score: sound for the small holdouts of a week and at
    rates of 0 or 1, where Wald's collapses), and the conversions it adds over the targeted with an
    outcome."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    out: dict[str, Any] = {"targeted": len(targeted), "holdout": len(holdout), "level": level}
    if not len(targeted) or not len(holdout):
        return {**out, "difference": None, "low": None, "high": None, "incremental_conversions": None}
    p1, p0 = float(targeted.mean()), float(holdout.mean())
    low, high = confint_proportions_2indep(
        int(targeted.sum()),
        len(targeted),
        int(holdout.sum()),
        len(holdout),
        method="newcomb",
        compare="diff",
        alpha=1 - level,
    )
    return {
        **out,
        "targeted_rate": p1,
        "holdout_rate": p0,
        "difference": p1 - p0,
        "low": float(low),
        "high": float(high),
        "method": "newcombe",
        "incremental_conversions": (p1 - p0) * len(targeted),
    }


MIN_REFERENCE = 30  # outcomes of customers called at random it takes to measure the lift against them


def realized_lift(figures: dict[str, Any]) -> tuple[float, str] | None:
    """The targeted's realized conversion over the reference's, and the reference in words: those called
    at random (the explore group) when there are enough of them, else the whole week."""
    targeted = (figures.get("promise") or {}).get("actual_conversion_rate")
    explore = (figures.get("groups") or {}).get("explore") or {}
    if (explore.get("outcomes") or 0) >= MIN_REFERENCE:
        base, against = explore["conversion_rate"], "the rate of those called at random"
    else:
        base, against = figures.get("conversion_rate"), "the week's rate"
    if targeted is None or not base:
        return None
    return targeted / base, against


def calibration_error(deciles: list[dict[str, Any]]) -> float | None:
    """Mean absolute gap between expected and actual conversion over the score deciles, weighted by their
    customers."""
    customers = sum(d["customers"] for d in deciles)
    if not customers:
        return None
    return sum(d["customers"] * abs(d["expected"] - d["actual"]) for d in deciles) / customers


def calibration_by_decile(joined: pd.DataFrame) -> list[dict[str, Any]]:
    """Deciles of the score among the customers with an outcome: expected against actual conversion."""
    ranked = joined.sort_values("probability", ascending=False).reset_index(drop=True)
    deciles = np.minimum(ranked.index * 10 // max(len(ranked), 1), 9) + 1
    rows = []
    for decile, part in ranked.groupby(deciles):
        rows.append(
            {
                "decile": int(decile),
                "customers": len(part),
                "expected": float(part["probability"].mean()),
                "actual": float(part["label"].mean()),
            }
        )
    return rows


def performance(joined: pd.DataFrame, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the outcomes say about the week (``joined``: the predictions of the customers with an outcome
    and their ``label``)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels, scores = joined["label"].to_numpy(), joined["probability"].to_numpy()
    both = len(set(labels)) == 2
    groups = {g: joined.loc[joined["group"] == g, "label"] for g in ("targeted", "holdout", "explore")}
    contacted = joined.loc[joined["contact"].astype(str).str.lower() == "true", "label"]
    asked = (manifest.get("contact_list") or {}).get("asked") or {}
    cost, value = asked.get("call_cost"), asked.get("conversion_value")
    interval = manifest.get("interval") or {}
    actual_targeted = _rate(groups["targeted"])
    out: dict[str, Any] = {
        "outcomes": len(joined),
        "conversion_rate": _rate(joined["label"]),
        "roc_auc": float(roc_auc_score(labels, scores)) if both else None,
        "pr_auc": float(average_precision_score(labels, scores)) if both else None,
        "groups": {
            g: {"outcomes": len(s), "conversions": int(s.sum()), "conversion_rate": _rate(s)}
            for g, s in groups.items()
        },
        "incremental": incremental(groups["targeted"], groups["holdout"]),
        "promise": {
            "expected_conversion_rate": manifest.get("expected_conversion_rate"),
            "interval": [interval.get("low"), interval.get("high")] if interval else None,
            "actual_conversion_rate": actual_targeted,
            "gap": None
            if actual_targeted is None or manifest.get("expected_conversion_rate") is None
            else actual_targeted - manifest["expected_conversion_rate"],
            "inside": None
            if actual_targeted is None or not interval
            else bool(interval["low"] <= actual_targeted <= interval["high"]),
        },
        "arms": arm_figures(joined, cost, value),
        "calibration_by_decile": calibration_by_decile(joined),
        "drift": manifest.get("drift_overview"),
        "score_shift": manifest.get("prior_shift"),
    }
    if cost is not None and value is not None:
        out["realized_profit"] = float(value) * float(contacted.sum()) - float(cost) * len(contacted)
    return out


def arm_figures(joined: pd.DataFrame, cost: Any, value: Any) -> dict[str, Any] | None:
    """In an experiment's week: each arm's conversions through a call per customer with an outcome (and
    the profit per customer, with a cost and value)."""
    if "arm" not in joined or joined["arm"].nunique() < 2:
        return None
    from remarketing.experiments import arm_counts

    out = {}
    for arm, counts in arm_counts(joined).items():
        n = counts["customers"]
        versions = joined.loc[joined["arm"] == arm, "model_version"].astype(str).unique()
        figures = {
            **counts,
            "version": versions[0] if len(versions) == 1 else None,
            "conversions_per_customer": counts["conversions"] / n if n else None,
        }
        if cost is not None and value is not None and n:
            profit = float(value) * counts["conversions"] - float(cost) * counts["calls"]
            figures["profit_per_customer"] = profit / n
        out[arm] = figures
    return out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def report(scoring_run: str, model: str, figures: dict[str, Any]) -> str:
    """The week in words (performance.md beside performance.json)."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    promise, inc = figures["promise"], figures["incremental"]
    lines = [
        f"# Outcomes of scoring run {scoring_run} ({model})",
        "",
        f"- {figures['outcomes']:,} outcomes; {pct(figures['conversion_rate'])} converted.",
        f"- ROC-AUC {_num(figures['roc_auc'])}, PR-AUC {_num(figures['pr_auc'])}.",
        f"- Targeted: {pct(promise['actual_conversion_rate'])} converted against "
        f"{pct(promise['expected_conversion_rate'])} expected"
        + (
            f" (interval {pct(promise['interval'][0])}-{pct(promise['interval'][1])}: "
            f"{'inside' if promise['inside'] else 'OUTSIDE'})."
            if promise["interval"]
            else "."
        ),
    ]
    if inc["difference"] is not None:
        lines.append(
            f"- Against the holdout ({inc['holdout']} not called): {inc['difference'] * 100:+.1f} points "
            f"({inc['level']:.0%} interval {inc['low'] * 100:+.1f} to {inc['high'] * 100:+.1f}), about "
            f"{inc['incremental_conversions']:.0f} conversions added by calling."
        )
    for arm, a in (figures.get("arms") or {}).items():
        lines.append(
            f"- Experiment arm {arm}: {a['customers']:,.0f} customers, {a['calls']:,.0f} called, "
            f"{a['conversions']:,.0f} converted ({pct(a['conversions_per_customer'])} per customer)."
        )
    if "realized_profit" in figures:
        lines.append(f"- Realized profit of the calls with an outcome: {figures['realized_profit']:,.0f}.")
    drift = figures.get("drift") or {}
    if drift:  # the scoring run's reading, aggregates only (remarketing.drift)
        said = f": {drift['message']}" if drift.get("message") else ""
        lines.append(f"- Drift of the week's customers from the training rows: {drift['level']}{said}.")
        if drift.get("suppressed"):
            lines.append(f"- Aggregates only: {drift['suppressed']}.")
    lines += ["", "| decile | customers | expected | actual |", "|---|---|---|---|"]
    lines += [
        f"| {d['decile']} | {d['customers']} | {pct(d['expected'])} | {pct(d['actual'])} |"
        for d in figures["calibration_by_decile"]
    ]
    return "\n".join(lines) + "\n"


def measure(
    ctx: StepContext, *, outcomes: pd.DataFrame, scoring: dict[str, Any], tracker: Tracker
) -> StepResult:
    """Join the outcomes to the scored file and measure the week: ``output/<scoring run>/performance.json``
    and ``performance.md``; the figures are logged to the tracker against the model version."""
    storage = ctx.storage
    record = RunStore(storage, ctx.settings.artifacts_root).get(scoring["run_id"])
    predictions = scored_ids(storage, record)
    manifest = json.loads(storage.read_text(record.manifest_uri)) if record.manifest_uri else {}
    joined = predictions.merge(outcomes, on="customer_id", how="inner")
    figures = performance(joined, manifest)
    figures = {
        "scoring_run": record.run_id,
        "monitoring_run": ctx.run_id,
        "model_version": record.model_version,
        "outcomes_sha256": ctx.run.source.sha256,
        **figures,
    }
    # one folder per monitoring run: outcomes sent again for the same week never overwrite a measurement
    out = join(ctx.settings.artifacts_root, "output", record.run_id, "monitoring", ctx.run_id)
    document = json.dumps(figures, indent=2, default=float)
    storage.write_text(join(out, "performance.json"), document, content_type="application/json")
    model = f"{record.model_name} v{record.model_version}"
    storage.write_text(join(out, "performance.md"), report(record.run_id, model, figures))
    headline = {
        k: v
        for k, v in {
            "realized_roc_auc": figures["roc_auc"],
            "realized_pr_auc": figures["pr_auc"],
            "realized_conversion_rate_targeted": figures["promise"]["actual_conversion_rate"],
            "expected_conversion_rate_targeted": figures["promise"]["expected_conversion_rate"],
            "incremental_conversion_rate": figures["incremental"]["difference"],
            "realized_profit": figures.get("realized_profit"),
            "realized_lift": (realized_lift(figures) or (None,))[0],
            "calibration_error": calibration_error(figures["calibration_by_decile"]),
        }.items()
        if v is not None
    }
    tracker.log(
        ExperimentLog(
            experiment=str(record.model_name),
            run_name=ctx.run_id,
            tags={
                "kind": "monitoring",
                "model_version": str(record.model_version),
                "scoring_run": record.run_id,
            },
            metrics={k: float(v) for k, v in headline.items()},
            documents={"performance.json": json.loads(document)},
        )
    )
    return StepResult(
        record=RecordChange(
            metrics={
                **headline,
                "promise_inside": figures["promise"]["inside"],
                "performance_uri": join(out, "performance.json"),
            },
        ),
        metrics={k: float(v) for k, v in headline.items()},
    )


# --- 3. judge-experiment ----------------------------------------------------------------------------
def judge_experiment(
    ctx: StepContext, *, outcomes: pd.DataFrame, scoring: dict[str, Any], registry: Registry
) -> StepResult:
    """When the week was scored in an experiment: add each arm's conversions to it and let the test decide
    (the challenger promoted, the experiment ended, or on). Any other week passes through."""
    from remarketing import experiments

    storage, root = ctx.storage, ctx.settings.artifacts_root
    record = RunStore(storage, root).get(scoring["run_id"])
    manifest = json.loads(storage.read_text(record.manifest_uri)) if record.manifest_uri else {}
    scored_in = manifest.get("experiment")
    if not scored_in:
        return StepResult(record=RecordChange(metrics={"experiment_id": None}))
    experiment = experiments.get(storage, root, ctx.dataset, scored_in["experiment_id"])
    joined = scored_ids(storage, record).merge(outcomes, on="customer_id", how="inner")
    week = f"{record.run_id}:{(ctx.run.source.sha256 or ctx.run_id)[:12]}"  # this file of this week
    try:
        after = experiments.judge(
            storage, root, registry, experiment, week=week, counts=experiments.arm_counts(joined)
        )
    except experiments.NotRunning as exc:
        said = f"{exc}: these outcomes are not counted in it"
        return StepResult(
            record=RecordChange(warnings=[said], metrics={"experiment_id": experiment.experiment_id})
        )
    look = after.last or {}
    if after.decision:
        said = f"experiment {after.experiment_id}: {after.decision['said']}"
    else:
        planned = (after.planned or {}).get(experiments.CHALLENGER)
        z, boundary = look.get("z"), look.get("boundary")
        least = experiments.MIN_PLANNING_CONVERSIONS
        sample = (
            f"of the {planned:,} planned"
            if planned
            else f"(the sample is planned once the champion arm has {least} conversions)"
        )
        said = (
            f"experiment {after.experiment_id} goes on: {look['customers'][experiments.CHALLENGER]:,.0f} "
            f"challenger customers {sample}"
            + (f", z {z:.2f} against the boundary {boundary:.2f}" if z is not None and boundary else "")
        )
    return StepResult(
        record=RecordChange(
            warnings=[said],
            metrics={
                "experiment_id": after.experiment_id,
                "experiment_status": after.status,
                "experiment_look": look,
            },
        )
    )


# --- 4. extend-history -------------------------------------------------------------------------------
def history_root(settings: Any, dataset: str) -> str:
    return join(settings.artifacts_root, "history", dataset)


def history_versions(storage: Storage, root: str) -> list[dict[str, Any]]:
    """Every version's manifest, oldest first."""
    manifests = [u for u in storage.list(root + "/") if u.endswith("/manifest.json")]
    found = [json.loads(storage.read_text(u)) for u in manifests]
    return sorted(found, key=lambda m: int(m["version"]))


def labelled_rows(storage: Storage, spec: Any, record: RunRecord, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The scored weekly file's rows that have an outcome, as a history file has them (the target filled
    in with the spec's values)."""
    data = storage.read_bytes(record.source.uri, generation=record.source.generation)
    raw = pd.read_csv(io.StringIO(decode(data, spec)), **csv_options(spec))
    if spec.id_column not in raw.columns:  # scoring generated ids from the row number (1..N)
        raw.insert(0, spec.id_column, [str(i + 1) for i in range(len(raw))])
    raw = raw.drop(columns=[spec.target.column], errors="ignore")
    raw[spec.id_column] = raw[spec.id_column].str.strip()  # as scoring and the outcomes read them
    labels = outcomes.set_index("customer_id")["label"]
    rows = raw[raw[spec.id_column].isin(labels.index)].copy()
    values = rows[spec.id_column].map(labels)
    rows[spec.target.column] = np.where(values == 1, spec.target.positive, spec.target.negative)
    return rows


def trainable(rows: pd.DataFrame, spec: Any) -> tuple[pd.DataFrame, int]:
    """The rows a training run accepts: scoring takes categories the spec does not list (and says so),
    training refuses them; such rows stay out of the history (counted), or every later retraining fails."""
    keep = pd.Series(True, index=rows.index)
    for name, feature in spec.features.items():
        if feature.type == "category" and feature.categories and name in rows.columns:
            keep &= rows[name].str.strip().isin(feature.categories)
    return rows[keep], int((~keep).sum())


def extend_history(ctx: StepContext, *, outcomes: pd.DataFrame, scoring: dict[str, Any]) -> StepResult:
    """Add the labelled rows to the dataset's history as a new immutable version
    (``history/<dataset>/<version>/``: ``part.csv`` and ``manifest.json`` listing every part with its sha256
    and where it came from), each customer's id as its pseudonym. The same outcomes again add nothing."""
    storage, spec = ctx.storage, ctx.spec
    record = RunStore(storage, ctx.settings.artifacts_root).get(scoring["run_id"])
    root = history_root(ctx.settings, ctx.dataset)
    origin = {"outcomes_sha256": ctx.run.source.sha256, "scoring_run": record.run_id}
    pseudonymous = pseudonyms(ctx.settings.whole)
    for _attempt in range(5):
        versions = history_versions(storage, root)
        for version in versions:
            if any(p.get("from") == origin for p in version["parts"]):
                return _history_result(version["version"], added=False)
        rows, left_out = trainable(labelled_rows(storage, spec, record, outcomes), spec)
        # the history keeps customers by pseudonym (training never reads the id; the count-once rule does)
        rows[spec.id_column] = rows[spec.id_column].map(pseudonymous.of)
        known = _already_in(storage, spec, versions[-1] if versions else None, record.run_id)
        repeated = int(rows[spec.id_column].isin(known).sum())
        rows = rows[~rows[spec.id_column].isin(known)]  # a customer's outcome of a week counts once
        if repeated and rows.empty:
            return _history_result(versions[-1]["version"], added=False, repeated=repeated)
        text = rows.to_csv(sep=spec.separator, index=False)
        number = (int(versions[-1]["version"]) if versions else 0) + 1
        # the part first, at a path of this run's own: a manifest never names a file not yet written
        part = join(root, "parts", f"{ctx.run_id}.csv")
        storage.write_text(part, text, content_type="text/csv")
        parts = list(versions[-1]["parts"]) if versions else _base_parts(storage, ctx.settings, record)
        parts.append({"uri": part, "sha256": sha256_bytes(text.encode()), "rows": len(rows), "from": origin})
        manifest = {"version": number, "dataset": ctx.dataset, "parts": parts, "created_by": ctx.run_id}
        where = join(root, str(number), "manifest.json")
        try:  # create-only: a version, once written, never changes; a concurrent run takes the next number
            storage.write_text(
                where, json.dumps(manifest, indent=2), if_generation_match=0, content_type="application/json"
            )
        except PreconditionFailed:
            if json.loads(storage.read_text(where)).get("created_by") != ctx.run_id:
                continue  # another run's version: take the next number
            # ours: a retried write whose first answer was lost
        return _history_result(number, added=True, rows=len(rows), left_out=left_out, repeated=repeated)
    raise RemarketingError("could not write a new history version after 5 attempts: try again")


def _already_in(storage: Storage, spec: Any, version: dict[str, Any] | None, scoring_run: str) -> set[str]:
    """The ids (pseudonyms) of this scoring run's customers whose outcomes an earlier file already added."""
    ids: set[str] = set()
    for part in (version or {}).get("parts", []):
        if (part.get("from") or {}).get("scoring_run") == scoring_run:
            text = decode(storage.read_bytes(part["uri"]), spec)
            frame = pd.read_csv(io.StringIO(text), **csv_options(spec), usecols=[spec.id_column])
            ids |= set(frame[spec.id_column].str.strip())
    return ids


def _base_parts(storage: Storage, settings: Any, record: RunRecord) -> list[dict[str, Any]]:
    """The first version starts from the file the scoring model was trained on (referenced, not copied)."""
    bundle = settings.bundle_uri(record.model_name, record.model_version)
    try:
        meta = json.loads(storage.read_text(join(bundle, "metadata.json")))
    except (NotFoundError, ValueError):
        meta = {}
    trained = meta.get("training_data") or {}
    if not trained.get("uri"):
        return []
    return [{"uri": trained["uri"], "sha256": trained.get("sha256"), "from": {"training_file": True}}]


def _history_result(
    version: int, *, added: bool, rows: int = 0, left_out: int = 0, repeated: int = 0
) -> StepResult:
    said = (
        f"history version {version}: {rows:,} labelled rows added"
        if added
        else f"these outcomes are already in history version {version}: nothing added"
    )
    if repeated:
        said += f" ({repeated:,} customers' outcomes of this week were added by an earlier file)"
    warnings = [said]
    if left_out:
        warnings.append(
            f"{left_out:,} labelled rows left out of the history: categories the spec does not list"
        )
    metrics = {"history_version": version, "history_rows_added": rows, "history_rows_left_out": left_out}
    return StepResult(record=RecordChange(warnings=warnings, metrics=metrics))
