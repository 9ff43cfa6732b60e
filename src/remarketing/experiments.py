"""Champion against challenger, decided by conversions.

An experiment splits each scored week's customers into two arms by a keyed hash of the id and the
experiment (the same customer stays in the same arm all experiment long). Each arm's model ranks its own
customers and picks its contacts within its arm at the same budget share (holdout and explore included),
so the arms differ only in the model. When a week's outcomes come back, the monitoring pipeline adds each
arm's conversions through a call per customer with an outcome, and tests challenger > champion with a
two-proportion z-test (statsmodels). The planned sample per arm is set once the champion arm has
``MIN_PLANNING_CONVERSIONS`` conversions, from its rate and the smallest lift worth detecting
(``min_lift``), at the experiment's power. Each outcomes file is a look at the data; the boundary is
O'Brien-Fleming shaped (z at alpha / 2 divided by the square root of the share of the planned sample
seen), so early looks need stronger evidence and the false-promotion rate stays at or below the
significance however many weeks are looked at. The challenger is promoted when it crosses the
boundary; the experiment ends without a winner when the planned sample is reached, or early when the
challenger is worse beyond the same boundary. Every start, end, promotion and rollback is recorded
(:mod:`remarketing.decisions`) with its evidence.

State lives in the artifacts bucket: ``experiments/<dataset>/<id>.json`` (updated by compare-and-swap, never
once it has ended) and ``experiments/<dataset>/running.json``, written create-only after the record, so two
experiments can never run at once.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from remarketing import decisions
from remarketing.contacts import uniform
from remarketing.errors import Conflict, NotFoundError, ParameterError, PreconditionFailed, RemarketingError
from remarketing.ports import CHALLENGER, CHAMPION, Endpoint, ModelRef, Registry
from remarketing.storage import ObjectNotFound, Storage, join

ARMS = (CHAMPION, CHALLENGER)
RUNNING, PROMOTED, ENDED, STOPPED = "running", "promoted", "ended", "stopped"
MIN_PLANNING_CONVERSIONS = 30  # champion conversions the planned sample is sized from


@dataclass
class Experiment:
    experiment_id: str
    dataset: str
    model_name: str
    champion: str
    challenger: str
    share: float  # of the customers in the challenger's arm
    significance: float = 0.05
    power: float = 0.8
    min_lift: float = 1.2  # the smallest relative improvement the planned sample is sized to detect
    started: str = ""
    started_by: str = ""
    status: str = RUNNING
    planned: dict[str, int] | None = (
        None  # customers with an outcome per arm (once the champion has 30 conversions)
    )
    weeks: dict[str, dict[str, dict[str, float]]] = field(
        default_factory=dict
    )  # scoring run -> arm -> counts
    last: dict[str, Any] | None = None  # the latest look: rates, z, p-value, boundary, power
    decision: dict[str, Any] | None = None
    ended: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def version_of(self, arm: str) -> str:
        return self.champion if arm == CHAMPION else self.challenger

    def totals(self) -> dict[str, dict[str, float]]:
        """Each arm's counts over every measured week."""
        out = {arm: {"customers": 0.0, "calls": 0.0, "conversions": 0.0} for arm in ARMS}
        for week in self.weeks.values():
            for arm, counts in week.items():
                for key in out[arm]:
                    out[arm][key] += float(counts.get(key, 0))
        return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def root(artifacts_root: str, dataset: str) -> str:
    return join(artifacts_root, "experiments", dataset)


def _uri(artifacts_root: str, dataset: str, experiment_id: str) -> str:
    return join(root(artifacts_root, dataset), f"{experiment_id}.json")


def _running_uri(artifacts_root: str, dataset: str) -> str:
    return join(root(artifacts_root, dataset), "running.json")


# --- arms ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arms:
    """What a scoring run serves: the champion alone, or both arms of the running experiment."""

    models: dict[str, ModelRef]
    experiment_id: str | None = None
    share: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": {arm: asdict(m) for arm, m in self.models.items()},
            "experiment_id": self.experiment_id,
            "share": self.share,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Arms:
        models = {arm: ModelRef(**m) for arm, m in data["models"].items()}
        return cls(models, data.get("experiment_id"), float(data.get("share", 0.0)))

    def assign(self, ids: pd.Series) -> np.ndarray:
        if self.experiment_id is None:
            return np.full(len(ids), CHAMPION, dtype=object)
        return arm_of(ids, self.experiment_id, self.share)


@dataclass(frozen=True)
class Served:
    """Each arm's endpoint."""

    endpoints: dict[str, Endpoint]

    def as_dict(self) -> dict[str, Any]:
        return {"endpoints": {arm: asdict(e) for arm, e in self.endpoints.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Served:
        return cls({arm: Endpoint(**e) for arm, e in data["endpoints"].items()})


def arm_of(ids: pd.Series, experiment_id: str, share: float) -> np.ndarray:
    """``challenger`` for a ``share`` of the customers, ``champion`` for the rest: a keyed hash of the id
    and the experiment, so a customer keeps the arm week after week and the row order does not matter."""
    u = uniform(ids, 0, f"experiment:{experiment_id}")
    return np.where(u < share, CHALLENGER, CHAMPION)


def split_budget(budget: int, sizes: dict[str, int]) -> dict[str, int]:
    """The budget shared in proportion to the arms' sizes (the same budget share in each); the parts add
    up to the budget."""
    total = sum(sizes.values())
    challenger = round(budget * sizes.get(CHALLENGER, 0) / total) if total else 0
    return {CHAMPION: budget - challenger, CHALLENGER: challenger}


# --- the record ------------------------------------------------------------------------------------
def get(storage: Storage, artifacts_root: str, dataset: str, experiment_id: str) -> Experiment:
    try:
        data = storage.read_text(_uri(artifacts_root, dataset, experiment_id))
    except ObjectNotFound:
        raise NotFoundError(f"{dataset} has no experiment {experiment_id}") from None
    return Experiment.from_dict(json.loads(data))


def running(storage: Storage, artifacts_root: str, dataset: str) -> Experiment | None:
    """The experiment that runs for the dataset, if any."""
    try:
        data, generation = storage.read_with_generation(_running_uri(artifacts_root, dataset))
    except ObjectNotFound:
        return None
    try:
        return get(storage, artifacts_root, dataset, json.loads(data)["experiment_id"])
    except NotFoundError:  # a start interrupted between its two writes: no experiment runs
        storage.delete(_running_uri(artifacts_root, dataset), if_generation_match=generation)
        return None


def history(storage: Storage, artifacts_root: str, dataset: str) -> list[Experiment]:
    """Every experiment of the dataset, newest first."""
    found = [
        Experiment.from_dict(json.loads(storage.read_text(uri)))
        for uri in storage.list(root(artifacts_root, dataset) + "/")
        if uri.endswith(".json") and not uri.endswith("/running.json")
    ]
    return sorted(found, key=lambda e: e.started, reverse=True)


class NotRunning(Conflict):
    """The experiment ended meanwhile (another monitoring run decided, or someone stopped it)."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        said = (experiment.decision or {}).get("said", experiment.status)
        super().__init__(f"experiment {experiment.experiment_id} has already ended ({said})")


def _update(storage: Storage, artifacts_root: str, experiment: Experiment, change: Any) -> Experiment:
    """Read, change and write back by compare-and-swap, so concurrent monitoring runs each land; an
    experiment that is no longer running is never changed (:class:`NotRunning`)."""
    uri = _uri(artifacts_root, experiment.dataset, experiment.experiment_id)
    for _ in range(20):
        data, generation = storage.read_with_generation(uri)
        current = Experiment.from_dict(json.loads(data))
        if current.status != RUNNING:
            raise NotRunning(current)
        change(current)
        try:
            storage.write_text(
                uri,
                json.dumps(current.as_dict(), indent=2),
                if_generation_match=generation,
                content_type="application/json",
            )
        except PreconditionFailed:
            continue
        return current
    raise RemarketingError(f"experiment {experiment.experiment_id} kept changing under this update")


def start(
    storage: Storage,
    settings: Any,
    registry: Registry,
    *,
    dataset: str,
    challenger: str,
    share: float | None = None,
    significance: float | None = None,
    power: float | None = None,
    min_lift: float | None = None,
    by: str = "",
) -> Experiment:
    """Start an experiment of ``challenger`` against the champion (what is not given comes from the
    ``experiment_*`` settings); refused with the reason when the share is outside (0, 1), the version is
    unknown or is the champion, or an experiment already runs."""
    artifacts_root, model_name = settings.artifacts_root, settings.model_name(dataset)
    share = settings.experiment_share if share is None else share
    significance = settings.experiment_significance if significance is None else significance
    power = settings.experiment_power if power is None else power
    min_lift = settings.experiment_min_lift if min_lift is None else min_lift
    if not 0 < share < 1:
        raise ParameterError([f"share must be between 0 and 1 (exclusive), got {share:g}"])
    if not 0 < significance < 0.5 or not 0 < power < 1 or min_lift <= 1:
        raise ParameterError(["significance in (0, 0.5), power in (0, 1) and min_lift above 1, please"])
    champion = registry.by_alias(model_name, CHAMPION)
    if champion is None:
        raise Conflict(f"{model_name} has no champion yet: there is nothing to test a challenger against")
    version = registry.get(model_name, challenger).version  # an unknown version: ModelNotFoundError
    if version == champion.version:
        raise ParameterError([f"v{version} is the champion: a challenger must be another version"])
    already = running(storage, artifacts_root, dataset)
    if already is not None:
        raise Conflict(
            f"experiment {already.experiment_id} (v{already.challenger} against v{already.champion}) "
            "is running: stop it first (remarketing experiment stop)"
        )
    experiment = Experiment(
        experiment_id=f"exp-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-v{version}",
        dataset=dataset,
        model_name=model_name,
        champion=champion.version,
        challenger=version,
        share=share,
        significance=significance,
        power=power,
        min_lift=min_lift,
        started=_now(),
        started_by=by,
    )
    record_uri = _uri(artifacts_root, dataset, experiment.experiment_id)
    storage.write_text(
        record_uri,
        json.dumps(experiment.as_dict(), indent=2),
        if_generation_match=0,
        content_type="application/json",
    )
    marker = json.dumps({"experiment_id": experiment.experiment_id})
    try:  # create-only: of two starts at once, one wins; the marker never names a missing record
        storage.write_text(
            _running_uri(artifacts_root, dataset),
            marker,
            if_generation_match=0,
            content_type="application/json",
        )
    except PreconditionFailed:
        storage.delete(record_uri)
        raise Conflict(
            f"another {dataset} experiment has just started: see `remarketing experiment status`"
        ) from None
    registry.set_alias(model_name, CHALLENGER, version)
    decisions.record(
        storage,
        artifacts_root,
        dataset,
        action="experiment-started",
        version=version,
        by=by,
        evidence={
            "experiment_id": experiment.experiment_id,
            "champion": champion.version,
            "share": share,
            "said": f"v{version} against v{champion.version} on {share:.0%} of the customers, sized to "
            f"detect a {min_lift:g}x lift with power {power:.0%}; false promotions at most "
            f"{significance:.0%}",
        },
    )
    return experiment


def _close(
    storage: Storage, artifacts_root: str, experiment: Experiment, status: str, decision: dict[str, Any]
) -> Experiment:
    def change(e: Experiment) -> None:
        e.status, e.decision, e.ended = status, decision, _now()

    closed = _update(storage, artifacts_root, experiment, change)  # NotRunning: another run closed it
    marker = _running_uri(artifacts_root, experiment.dataset)
    try:
        data, generation = storage.read_with_generation(marker)
    except ObjectNotFound:
        return closed
    if json.loads(data).get("experiment_id") == experiment.experiment_id:
        storage.delete(marker, if_generation_match=generation)
    return closed


def stop(storage: Storage, artifacts_root: str, dataset: str, *, by: str = "") -> Experiment:
    """End the running experiment now; the champion stays. Scoring runs after this use the champion alone."""
    experiment = running(storage, artifacts_root, dataset)
    if experiment is None:
        raise Conflict(f"no {dataset} experiment is running")
    decision = {
        "outcome": "stopped",
        "by": by,
        "said": "stopped by hand: the champion stays",
        **_evidence(experiment),
    }
    closed = _close(storage, artifacts_root, experiment, STOPPED, decision)
    decisions.record(
        storage,
        artifacts_root,
        dataset,
        action="experiment-stopped",
        version=experiment.challenger,
        by=by,
        evidence=decision,
    )
    return closed


# --- judging -----------------------------------------------------------------------------------------
def arm_counts(joined: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per arm, among the customers with an outcome: how many, how many were called, and how many
    converted through a call (what the arm's model earned within its arm)."""
    called = joined["contact"].astype(str).str.lower() == "true"
    out = {}
    for arm in ARMS:
        mine = joined["arm"] == arm
        out[arm] = {
            "customers": float(mine.sum()),
            "calls": float((mine & called).sum()),
            "conversions": float((joined["label"][mine & called]).sum()),
        }
    return out


def _evidence(experiment: Experiment) -> dict[str, Any]:
    totals = experiment.totals()
    return {
        "experiment_id": experiment.experiment_id,
        "champion": experiment.champion,
        "challenger": experiment.challenger,
        "weeks": len(experiment.weeks),
        "arms": totals,
        "planned": experiment.planned,
        "last_look": experiment.last,
    }


def look(experiment: Experiment) -> dict[str, Any]:
    """The test on every week so far: each arm's conversions per customer, z and one-sided p-value
    (challenger > champion), the boundary at this share of the planned sample, and the power of the
    sample so far to detect ``min_lift`` at the final boundary."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

    t = experiment.totals()
    n_ch, n_cp = t[CHALLENGER]["customers"], t[CHAMPION]["customers"]
    c_ch, c_cp = t[CHALLENGER]["conversions"], t[CHAMPION]["conversions"]
    out: dict[str, Any] = {"customers": {CHAMPION: n_cp, CHALLENGER: n_ch}}
    if not n_ch or not n_cp:
        return {**out, "z": None, "p_value": None, "boundary": None, "power": None, "information": 0.0}
    p_ch, p_cp = c_ch / n_ch, c_cp / n_cp
    alpha = experiment.significance
    pooled = (c_ch + c_cp) / (n_ch + n_cp)
    if 0 < pooled < 1:
        z, p_value = proportions_ztest([c_ch, c_cp], [n_ch, n_cp], alternative="larger")
    else:  # no conversion (or only conversions) in either arm: no evidence either way
        z, p_value = 0.0, 0.5
    planned = experiment.planned or {}
    information = min(1.0, n_ch / planned[CHALLENGER]) if planned.get(CHALLENGER) else 0.0
    boundary = final_critical(alpha) / math.sqrt(information) if information else None
    power = None
    if 0 < p_cp and p_cp * experiment.min_lift < 1:
        effect = proportion_effectsize(p_cp * experiment.min_lift, p_cp)
        power = float(
            NormalIndPower().power(
                effect, nobs1=n_ch, alpha=alpha / 2, ratio=n_cp / n_ch, alternative="larger"
            )
        )
    return {
        **out,
        "rate": {CHAMPION: p_cp, CHALLENGER: p_ch},
        "difference": p_ch - p_cp,
        "z": float(z),
        "p_value": float(p_value),
        "boundary": boundary,
        "information": information,
        "power": power,
    }


def final_critical(significance: float) -> float:
    """The boundary at the planned sample. Looking every week at z_alpha / sqrt(t) would let the
    false-promotion rate climb towards twice the significance as the looks add up; z at alpha / 2 keeps it
    at or below the significance however many weeks are looked at (conservative)."""
    from scipy.stats import norm

    return float(norm.ppf(1 - significance / 2))


def plan_sample(experiment: Experiment, champion_rate: float) -> dict[str, int] | None:
    """Customers with an outcome per arm for ``power`` to detect ``min_lift`` over ``champion_rate`` at the
    final boundary, with the arms in the experiment's proportions."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    if not 0 < champion_rate < 1 or champion_rate * experiment.min_lift >= 1:
        return None
    effect = proportion_effectsize(champion_rate * experiment.min_lift, champion_rate)
    ratio = (1 - experiment.share) / experiment.share  # champion customers per challenger customer
    challenger = NormalIndPower().solve_power(  # sized for the final boundary (final_critical)
        effect,
        nobs1=None,
        alpha=experiment.significance / 2,
        power=experiment.power,
        ratio=ratio,
        alternative="larger",
    )
    return {CHALLENGER: math.ceil(float(challenger)), CHAMPION: math.ceil(float(challenger) * ratio)}


def judge(
    storage: Storage,
    artifacts_root: str,
    registry: Registry,
    experiment: Experiment,
    *,
    week: str,
    counts: dict[str, dict[str, float]],
) -> Experiment:
    """Add one outcomes file's counts (``week``: the scoring run and the file; the same file again
    replaces itself), look, and decide: promote the challenger, end without a winner, or go on. An
    experiment another run ended meanwhile raises :class:`NotRunning`."""

    def add(e: Experiment) -> None:
        e.weeks[week] = counts
        champion = e.totals()[CHAMPION]
        # planned once the champion's rate rests on enough conversions (one small week would mis-size it)
        if e.planned is None and champion["conversions"] >= MIN_PLANNING_CONVERSIONS:
            e.planned = plan_sample(e, champion["conversions"] / champion["customers"])
        e.last = look(e)

    experiment = _update(storage, artifacts_root, experiment, add)
    result = experiment.last or {}
    champion_now = registry.by_alias(experiment.model_name, CHAMPION)
    if champion_now is not None and champion_now.version == experiment.challenger:
        # promoted at an earlier look whose record did not land, or by hand: the promotion is recorded
        said = f"v{experiment.challenger} is the champion (promoted before this look): the experiment ends"
        return _end(storage, artifacts_root, experiment, PROMOTED, said, promoted=True)
    if champion_now is None or champion_now.version != experiment.champion:
        now = None if champion_now is None else champion_now.version
        return champion_changed(storage, artifacts_root, experiment, now)
    boundary, z = result.get("boundary"), result.get("z")
    if boundary is not None and z is not None and z >= boundary:
        registry.promote(experiment.model_name, experiment.challenger)
        said = (
            f"v{experiment.challenger} converted {result['rate'][CHALLENGER]:.2%} of its customers against "
            f"{result['rate'][CHAMPION]:.2%} for v{experiment.champion} (z {z:.2f} over the boundary "
            f"{boundary:.2f}, one-sided p {result['p_value']:.4f}): promoted"
        )
        return _end(storage, artifacts_root, experiment, PROMOTED, said, promoted=True)
    if boundary is not None and z is not None and z <= -boundary:
        said = (
            f"v{experiment.challenger} converted fewer (z {z:.2f} below -{boundary:.2f}): the champion stays"
        )
        return _end(storage, artifacts_root, experiment, ENDED, said)
    if result.get("information", 0) >= 1:
        said = (
            f"the planned sample of {experiment.planned[CHALLENGER]:,} challenger customers was reached "  # type: ignore[index]
            f"({result['customers'][CHALLENGER]:,.0f} with an outcome) without a winner (z {z:.2f}, "
            f"boundary {boundary:.2f}): the champion stays"
        )
        return _end(storage, artifacts_root, experiment, ENDED, said)
    return experiment


def champion_changed(
    storage: Storage, artifacts_root: str, experiment: Experiment, champion: str | None
) -> Experiment:
    """End an experiment whose champion is no longer the champion (promoted by the gate or by hand, rolled
    back): its arms no longer compare what it set out to compare."""
    now = "none" if champion is None else f"v{champion}"
    return _end(storage, artifacts_root, experiment, ENDED, f"the champion changed to {now} meanwhile")


def _end(
    storage: Storage,
    artifacts_root: str,
    experiment: Experiment,
    status: str,
    said: str,
    *,
    promoted: bool = False,
) -> Experiment:
    decision = {"outcome": status, "said": said, **_evidence(experiment)}
    closed = _close(storage, artifacts_root, experiment, status, decision)
    decisions.record(
        storage,
        artifacts_root,
        experiment.dataset,
        action="promoted" if promoted else "experiment-ended",
        version=experiment.challenger,
        previous=experiment.champion if promoted else None,
        by=f"experiment {experiment.experiment_id}",
        evidence=decision,
    )
    return closed


def status(storage: Storage, artifacts_root: str, dataset: str) -> dict[str, Any]:
    """The running experiment (or none), the earlier ones and the recorded decisions, newest first."""
    current = running(storage, artifacts_root, dataset)
    return {
        "dataset": dataset,
        "running": None if current is None else _shown(current),
        "experiments": [_shown(e) for e in history(storage, artifacts_root, dataset)],
        "decisions": decisions.listed(storage, artifacts_root, dataset),
    }


def _shown(experiment: Experiment) -> dict[str, Any]:
    return {**experiment.as_dict(), "totals": experiment.totals()}
