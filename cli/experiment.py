"""``remarketing experiment start | status | stop``: the champion against a challenger, decided by the
conversions of each arm's customers (remarketing.experiments); and ``remarketing decisions``, the record of
every promotion, rollback and experiment."""

from __future__ import annotations

from typing import Any

import click

from cli.output import emit, err, or_fail
from remarketing.settings import Settings


def _context(settings: Settings, dataset: str | None) -> tuple[Any, Any, str, str]:
    from cli.main import _registry
    from remarketing.storage import Storage

    registry, name = _registry(settings, dataset)
    return registry, Storage(settings), name, dataset or settings.default_dataset


def _said(experiment: dict[str, Any]) -> str:
    totals = experiment["totals"]
    look = experiment.get("last") or {}
    planned = (experiment.get("planned") or {}).get("challenger")
    line = (
        f"{experiment['experiment_id']}: v{experiment['challenger']} "
        f"({experiment['share']:.0%} of customers) against v{experiment['champion']}, "
        f"{experiment['status']}; outcome files measured: {len(experiment['weeks'])}"
    )
    for arm in ("champion", "challenger"):
        t = totals[arm]
        rate = t["conversions"] / t["customers"] if t["customers"] else None
        line += (
            f"\n  {arm:<10} {t['customers']:>8,.0f} customers with an outcome, {t['calls']:,.0f} called, "
            f"{t['conversions']:,.0f} converted" + (f" ({rate:.2%} per customer)" if rate is not None else "")
        )
    if look.get("z") is not None:
        boundary = look.get("boundary")
        line += f"\n  z {look['z']:.2f}, one-sided p {look['p_value']:.4f}"
        line += f", boundary {boundary:.2f}" if boundary else ""
        power = look.get("power")
        line += (
            f", power to detect {experiment['min_lift']:g}x so far {power:.0%}" if power is not None else ""
        )
    if planned:
        line += f"\n  planned: {planned:,} challenger customers with an outcome"
    if experiment.get("decision"):
        line += f"\n  decision: {experiment['decision']['said']}"
    return line


@click.group()
def experiment() -> None:
    """Test a challenger against the champion on real conversions; promote it when it wins."""


dataset_option = click.option("--dataset", default=None, help="Dataset spec name.")


@experiment.command()
@click.option("--challenger", required=True, help="The model version to test against the champion.")
@click.option("--share", type=float, default=None, help="Share of customers in its arm, in (0, 1).")
@click.option("--significance", type=float, default=None, help="One-sided significance of the test.")
@click.option("--power", type=float, default=None, help="Power the planned sample is sized for.")
@click.option("--min-lift", type=float, default=None, help="Smallest lift worth detecting (e.g. 1.2).")
@dataset_option
@click.pass_obj
def start(
    settings: Settings,
    challenger: str,
    share: float | None,
    significance: float | None,
    power: float | None,
    min_lift: float | None,
    dataset: str | None,
) -> None:
    """Start an experiment: scoring splits each week's customers between the champion and CHALLENGER."""
    from remarketing import experiments

    registry, storage, _, ds = _context(settings, dataset)
    started = or_fail(
        lambda: experiments.start(
            storage,
            settings,
            registry,
            dataset=ds,
            challenger=challenger,
            share=share,
            significance=significance,
            power=power,
            min_lift=min_lift,
            by="cli",
        )
    )
    err.print(
        f"{started.experiment_id}: v{started.challenger} against the champion v{started.champion}, "
        f"{started.share:.0%} of each week's customers"
    )
    emit({"status": "success", "experiment": started.as_dict()})


@experiment.command()
@dataset_option
@click.pass_obj
def status(settings: Settings, dataset: str | None) -> None:
    """The running experiment (arms, sample so far, the latest test) and the earlier ones."""
    from remarketing import experiments

    _, storage, _, ds = _context(settings, dataset)
    state = or_fail(lambda: experiments.status(storage, settings.artifacts_root, ds))
    if state["running"] is None:
        err.print(f"no {ds} experiment is running")
    for shown in state["experiments"][:5]:
        err.print(_said(shown), markup=False, highlight=False)
    emit({"status": "success", **state})


@experiment.command()
@dataset_option
@click.pass_obj
def stop(settings: Settings, dataset: str | None) -> None:
    """End the running experiment now: the champion stays."""
    from remarketing import experiments

    _, storage, _, ds = _context(settings, dataset)
    stopped = or_fail(lambda: experiments.stop(storage, settings.artifacts_root, ds, by="cli"))
    err.print(f"{stopped.experiment_id} stopped: the champion v{stopped.champion} stays")
    emit({"status": "success", "experiment": stopped.as_dict()})
