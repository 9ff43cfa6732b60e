"""SIMULATION (an experiment in one process, not a figure of the shipped path): the outcomes loop over the
last 40% of bank-full, week by week, under three retraining strategies.

    .venv/bin/python benchmarks/simulation.py [--data PATH] [--week-rows 1500] [--history-share 0.6]

The first 60% of bank-full (time order) is the initial history; the rest is cut into consecutive weeks of
about 1,500 customers. Each week, for each strategy:

1. the week's customers are scored with the strategy's current model;
2. the contact list is built as the scoring pipeline builds it (``publish.contact_policy`` with the default
   settings: 10% budget, 5% holdout, 1% explore, seed 42; the draw's key is the sha256 of the week's
   file, as scoring keys it), with the expected conversion of the targeted and its interval from the
   model's backtests (``publish.expectations``);
3. the week's real labels come back as outcomes for every customer, and the week's figures are computed by
   ``monitoring.performance`` on a minimal manifest (no feature drift);
4. the strategy decides: (a) ``policy``: ``retraining.reasons`` on those figures with the default settings;
   (b) ``never``; (c) ``every_week``. The labelled week joins the history whatever the strategy; a retrain
   fits on the history so far (the initial 60% and every week seen).

The model is what the training pipeline would deploy on these histories, as far as is affordable: the
logistic family (the one the pipeline chooses at every bank-full cut-off from 60% on,
``results/decision_quality.json``), fitted by the pipeline's own ``training.split`` and ``training.train``
step functions called in-process (four backtest periods, the fit on every row, calibration on the last
period's out-of-time scores). Skipped: the other families' backtests and the family choice, SHAP,
registration; the promotion gate is evaluated on each refit (``gate.decide`` against the model it would
replace) and recorded, but a refit is deployed whatever it says, so each strategy is what it says it is.
The same rows give the same model, so a refit on the same history is shared between strategies.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS, example, record  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402

STRATEGIES = ("policy", "never", "every_week")
FAMILY = "logreg"
LABEL = (
    "SIMULATION: an in-process experiment on bank-full, not a figure of the shipped path (no stack, no "
    "MLflow, no KServe; the logistic family only, its backtests run, the family choice skipped, the gate "
    "recorded but not applied)"
)


@dataclass
class Trained:
    weeks: int  # history = the initial rows plus this many weeks
    rows: int
    model: Any
    backtest: Any  # remarketing.backtest.FamilyBacktest
    seconds: float


def fit(settings: Any, spec: Any, rows: pd.DataFrame, weeks: int, workdir: Path) -> Trained:
    """The training pipeline's split and train-logreg steps, called in-process on ``rows``."""
    from remarketing import bundle, flow, training
    from remarketing.runs import RunRecord, Source
    from remarketing.step import Folder, StepContext, StepSettings

    run = RunRecord(
        run_id=f"simulation-{weeks}",
        kind="training",
        dataset=spec.name,
        source=Source(uri=f"simulation://history-{weeks}.csv", generation=1),
    )

    def context(step: str, family: str | None = None) -> StepContext:
        declared = flow.TRAINING.step(step).settings
        name = f"{step}-{family}" if family else step
        storage = None  # the split and train steps never touch storage
        return StepContext(StepSettings(settings, name, declared), spec, run, storage, family)  # type: ignore[arg-type]

    started = time.perf_counter()
    plan = training.split(context("split"), rows=rows).outputs["plan"]
    candidate = Folder(workdir / f"candidate-{weeks}")
    training.train(context("train", FAMILY), rows=rows, plan=plan, candidate=candidate)
    model = bundle.load(candidate.path)
    backtest = training.read_backtest(candidate.path)
    return Trained(weeks, len(rows), model, backtest, time.perf_counter() - started)


def gate_verdict(settings: Any, candidate: Trained, current: Trained) -> dict[str, Any]:
    """What the evaluate step's gate would say about ``candidate`` replacing ``current``."""
    from remarketing.gate import Floors, decide

    decision = decide(
        candidate.backtest.summary()["mean"],
        current.backtest.summary()["mean"],
        floors=Floors(roc_auc=settings.floor_roc_auc, lift_at_10pct=settings.floor_lift_at_10pct),
        margin=settings.promotion_margin,
    )
    return {"promote": decision.promote, "reasons": decision.reasons}


def one_week(settings: Any, spec: Any, week: pd.DataFrame, key: str, trained: Trained) -> dict[str, Any]:
    """Score, build the contact list, measure the week with its outcomes, and ask the policy."""
    from remarketing import contacts, monitoring, publish, retraining
    from remarketing.expectation import ScoreBands

    probability = trained.model.predict_proba(week)
    ids = week[spec.id_column].astype(str).reset_index(drop=True)
    policy = publish.contact_policy(settings, {}, len(week), key=key)
    plan = contacts.assign(ids, probability, policy)
    totals = contacts.Totals.of(plan, probability, policy)
    outlook = {
        **contacts.summary(totals, policy),
        **publish.expectations(trained.backtest.predictions, totals, ScoreBands.of(probability)),
    }
    manifest = {
        "expected_conversion_rate": outlook["expected_conversion_rate"],
        "interval": outlook["interval"],
        "prior_shift": outlook["prior_shift"],
        "drift_overview": None,
        "contact_list": {"asked": {}},
    }
    joined = pd.DataFrame(
        {
            "customer_id": ids,
            "probability": probability,
            "group": plan["group"].to_numpy(),
            "contact": plan["contact"].to_numpy(),
            "label": week[spec.target.column].to_numpy().astype(int),
        }
    )
    figures = monitoring.performance(joined, manifest)
    why = retraining.reasons(figures, settings)
    groups = figures["groups"]
    targeted, holdout, explore = groups["targeted"], groups["holdout"], groups["explore"]
    rate = figures["conversion_rate"]
    promise = figures["promise"]
    enough = monitoring.MIN_REFERENCE
    conversions = int(joined.loc[joined["group"] == "targeted", "label"].sum())
    return {
        "model_fitted_on_weeks": trained.weeks,
        "model_fitted_on_rows": trained.rows,
        "rows": len(week),
        "week_conversion_rate": rate,
        "roc_auc": figures["roc_auc"],
        "targeted": targeted["outcomes"],
        "targeted_conversions": conversions,
        "targeted_conversion_rate": targeted["conversion_rate"],
        "lift_vs_week": targeted["conversion_rate"] / rate if rate else None,
        "holdout": holdout["outcomes"],
        "holdout_conversions": int(joined.loc[joined["group"] == "holdout", "label"].sum()),
        "holdout_conversion_rate": holdout["conversion_rate"],
        # against the holdout only when enough were held out (the policy's own threshold for a reference)
        "lift_vs_holdout": targeted["conversion_rate"] / holdout["conversion_rate"]
        if holdout["outcomes"] >= enough and holdout["conversion_rate"]
        else None,
        "explore": explore["outcomes"],
        "explore_conversions": int(joined.loc[joined["group"] == "explore", "label"].sum()),
        "expected_conversion_rate": promise["expected_conversion_rate"],
        "interval": promise["interval"],
        "promise_inside": promise["inside"],
        "prior_shift_detected": (outlook["prior_shift"] or {}).get("detected"),
        "policy_reasons": why,
    }


def pooled(weeks: list[dict[str, Any]]) -> dict[str, Any]:
    targeted = sum(w["targeted"] for w in weeks)
    converted = sum(w["targeted_conversions"] for w in weeks)
    held = sum(w["holdout"] for w in weeks)
    held_converted = sum(w["holdout_conversions"] for w in weeks)
    rows = sum(w["rows"] for w in weeks)
    everyone = sum(w["week_conversion_rate"] * w["rows"] for w in weeks)
    out = {
        "mean_lift_vs_week": float(np.mean([w["lift_vs_week"] for w in weeks])),
        "min_lift_vs_week": float(np.min([w["lift_vs_week"] for w in weeks])),
        "mean_roc_auc": float(np.mean([w["roc_auc"] for w in weeks])),
        "targeted": targeted,
        "targeted_conversions": converted,
        "targeted_conversion_rate": converted / targeted,
        "pooled_lift_vs_everyone": (converted / targeted) / (everyone / rows),
        "holdout": held,
        "holdout_conversions": held_converted,
        "holdout_conversion_rate": held_converted / held if held else None,
        "pooled_lift_vs_holdout": (converted / targeted) / (held_converted / held)
        if held and held_converted
        else None,
        "weeks_promise_inside": sum(bool(w["promise_inside"]) for w in weeks),
        "weeks_policy_would_retrain": sum(bool(w["policy_reasons"]) for w in weeks),
    }
    return out


def chart(results: dict[str, list[dict[str, Any]]], path: Path, floor: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {
        "policy": ("tab:blue", "o", "policy in settings"),
        "never": ("tab:gray", "s", "never retrain"),
        "every_week": ("tab:orange", "^", "retrain every week"),
    }
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    weeks = np.arange(1, len(results["policy"]) + 1)
    for name in ("never", "every_week", "policy"):  # the policy on top: it shares a model with the others
        colour, marker, label = style[name]
        lifts = [r["lift_vs_week"] for r in results[name]]
        top.plot(weeks, lifts, marker=marker, color=colour, label=label)
    retrained = [i + 1 for i, r in enumerate(results["policy"]) if r["retrain"]]
    if retrained:
        lifts = [results["policy"][w - 1]["lift_vs_week"] for w in retrained]
        top.scatter(
            retrained,
            lifts,
            s=180,
            facecolors="none",
            edgecolors="tab:blue",
            linewidths=2,
            zorder=5,
            label="policy retrains after this week",
        )
    top.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    top.axhline(
        floor, color="tab:red", linewidth=0.8, linestyle="--", label=f"retrain floor (lift {floor:g})"
    )
    top.set_ylabel("targeted conversion / week's conversion")
    top.set_title(
        "SIMULATION on bank-full's last 40%: realized lift of the targeted, week by week\n"
        "(lines coincide in the weeks two strategies score with the same model)",
        fontsize=10,
    )
    top.legend(fontsize=8, loc="best")
    top.grid(alpha=0.3)
    base = results["never"]
    bottom.bar(weeks, [r["week_conversion_rate"] for r in base], color="tab:green", alpha=0.6)
    bottom.set_ylabel("week's conversion")
    bottom.set_xlabel("week (about 1,500 customers each)")
    bottom.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    bottom.set_xticks(weeks)
    bottom.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [
        "| week | rows | strategy | model fitted on | week conv. | targeted conv. | lift vs week | ROC-AUC "
        "| expected [interval] | retrain | policy's reasons |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i in range(len(results["policy"])):
        for name in STRATEGIES:
            w = results[name][i]
            interval = w["interval"]
            promise = _pct(w["expected_conversion_rate"]) + (
                f" [{_pct(interval[0])}-{_pct(interval[1])}]" if interval else ""
            )
            reasons = "; ".join(w["policy_reasons"]) if name == "policy" else ""
            lines.append(
                f"| {i + 1} | {w['rows']:,} | {name} | {w['model_fitted_on_rows']:,} rows "
                f"| {_pct(w['week_conversion_rate'])} | {w['targeted_conversions']}/{w['targeted']} "
                f"({_pct(w['targeted_conversion_rate'])}) | {_num(w['lift_vs_week'])} | "
                f"{_num(w['roc_auc'], 3)} "
                f"| {promise} | {'yes' if w['retrain'] else 'no'} | {reasons} |"
            )
    return lines


def findings(
    results: dict[str, list[dict[str, Any]]], totals: dict[str, dict[str, Any]], floor: float
) -> list[str]:
    """The results in plain words, each sentence computed from the figures."""
    from remarketing.monitoring import MIN_REFERENCE

    p, n, e = totals["policy"], totals["never"], totals["every_week"]
    weeks = len(results["policy"])
    said = []
    retrained = [r["week"] for r in results["policy"] if r["retrain"]]
    if not retrained:
        said.append(
            f"- **The policy never triggered**: every week's targeted converted at {floor:g} times the "
            "week's rate or more and inside the promised interval, so it behaved exactly like never "
            "retraining."
        )
    else:
        kinds = [reason for r in results["policy"] if r["retrain"] for reason in r["policy_reasons"]]
        below = sum("below the floor" in k for k in kinds)
        outside = sum("outside the promised" in k for k in kinds)
        above = sum(
            r["promise_inside"] is False and r["targeted_conversion_rate"] > r["interval"][1]
            for r in results["policy"]
            if r["retrain"]
        )
        said.append(
            f"- **The policy retrained {len(retrained)} time{'s' if len(retrained) != 1 else ''} in {weeks} "
            f"weeks** (after week {', '.join(map(str, retrained))}): {outside} time(s) because the targeted "
            f"converted outside the promised interval ({above} of them above it: better than promised), "
            f"{below} time(s) because the lift fell below the floor."
        )
        last = retrained[-1]
        after = [r for r in results["policy"] if r["week"] > last]
        if after:
            widths = [r["interval"][1] - r["interval"][0] for r in after if r["interval"]]
            gaps = [r["targeted_conversion_rate"] - r["expected_conversion_rate"] for r in after]
            said.append(
                f"- After its last retrain it kept that model for the remaining {len(after)} weeks: the lift "
                f"stayed at {min(r['lift_vs_week'] for r in after):.2f} or more, and the promise, though "
                f"off by {np.mean(np.abs(gaps)) * 100:.0f} points on average "
                f"({np.mean(gaps) * 100:+.0f} points: actual minus expected), was inside intervals "
                f"{np.mean(widths) * 100:.0f} points wide on average in "
                f"{sum(bool(r['promise_inside']) for r in after)} of those weeks. The wide intervals "
                "(the backtests' own calibration errors under this drift) make the interval trigger a "
                "weak one."
            )
    said.append(
        "- **Mean realized lift over the week's rate**: "
        + ", ".join(f"{s} {totals[s]['mean_lift_vs_week']:.2f}" for s in STRATEGIES)
        + "; conversions among the targeted: "
        + ", ".join(f"{s} {totals[s]['targeted_conversions']}" for s in STRATEGIES)
        + f" (of {p['targeted']:,} calls each)."
    )
    spread = math.sqrt(p["targeted"] * p["targeted_conversion_rate"] * (1 - p["targeted_conversion_rate"]))
    gap = e["targeted_conversions"] - p["targeted_conversions"]
    better = "more" if gap > 0 else "fewer"
    said.append(
        f"- **Every week against the policy**: {abs(gap)} {better} conversions "
        f"({gap / p['targeted_conversions']:+.1%}) "
        f"for {e['retrains']} refits against {p['retrains']}; the binomial noise of one strategy's total "
        f"is about {spread:.0f} conversions, so "
        f"{'this is within noise' if abs(gap) < 2 * spread else 'this is beyond noise'}. "
        f"The gate would have refused {e['gate_would_refuse']} of the weekly refits and "
        f"{p['gate_would_refuse']} of the policy's"
        + (" (applying it would not change the policy's figures)." if not p["gate_would_refuse"] else ".")
    )
    worst = min(results["never"], key=lambda r: r["lift_vs_week"])
    said.append(
        f"- **Never retraining decays**: {n['targeted_conversions'] - p['targeted_conversions']:+d} "
        "conversions against the policy; its lift was under the floor in "
        f"{sum(r['lift_vs_week'] < floor for r in results['never'])} weeks, and in week {worst['week']} it "
        f"fell to {worst['lift_vs_week']:.2f} (ROC-AUC {worst['roc_auc']:.3f}): the targeted converted at "
        f"{_pct(worst['targeted_conversion_rate'])} against {_pct(worst['week_conversion_rate'])} for the "
        f"week. The policy would have retrained it in {n['weeks_policy_would_retrain']} of the {weeks} weeks."
    )
    said.append(
        f"- **The holdout says nothing here**: about {n['holdout'] // weeks} customers a week are held out "
        f"({n['holdout']} in all), too few to compare with per week (the policy, with fewer than "
        f"{MIN_REFERENCE} explore outcomes a week, also measures against the week's rate). And in this "
        "replay every customer's outcome is the one recorded when the bank did call them, held out or "
        "not, so the targeted against their holdout (pooled: "
        + ", ".join(
            f"{s} {_pct(totals[s]['targeted_conversion_rate'])} against "
            f"{_pct(totals[s]['holdout_conversion_rate'])}"
            for s in STRATEGIES
        )
        + ") cannot measure the effect of calling."
    )
    return said


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--week-rows", type=int, default=1500)
    parser.add_argument("--history-share", type=float, default=0.6)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from remarketing.datasets import load_spec
    from remarketing.settings import Settings
    from remarketing.validation import Purpose, validate

    started = time.perf_counter()
    settings = Settings(_env_file=None)  # the defaults (REMARKETING_* variables would still apply)
    spec = load_spec("bank-marketing")
    frame = validate(args.data.read_bytes(), spec, Purpose.TRAINING).frame  # ids 1..N from the row number
    first = int(len(frame) * args.history_share)
    later = frame.iloc[first:]
    count = max(1, round(len(later) / args.week_rows))
    bounds = np.linspace(first, len(frame), count + 1).astype(int)
    weeks = [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    print(
        f"{LABEL}\nbank-full: {len(frame):,} rows; initial history the first {args.history_share:.0%} "
        f"({first:,} rows), then {count} consecutive weeks of "
        f"{min(map(len, weeks)):,}-{max(map(len, weeks)):,} "
        f"rows (about {args.week_rows:,} asked)\npolicy: retrain_floor_lift {settings.retrain_floor_lift}, "
        f"retrain_when_outside_interval {settings.retrain_when_outside_interval}, retrain_on_drift "
        f"{settings.retrain_on_drift}, retrain_min_outcomes {settings.retrain_min_outcomes}; contact list: "
        f"budget share {settings.budget_share:.0%}, holdout {settings.holdout_share:.0%}, explore "
        f"{settings.explore_share:.0%}, seed {settings.seed}",
        flush=True,
    )
    fits: dict[int, Trained] = {}
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in STRATEGIES}
    with tempfile.TemporaryDirectory() as tmp:

        def model_on(k: int) -> Trained:
            if k not in fits:
                rows = pd.concat([frame.iloc[:first], *weeks[:k]])
                fits[k] = fit(settings, spec, rows, k, Path(tmp))
                mean = fits[k].backtest.summary()["mean"]
                print(
                    f"  fitted {FAMILY} on {len(rows):,} rows (history + {k} weeks) in "
                    f"{fits[k].seconds:.1f} s: "
                    f"backtest mean ROC-AUC {mean['roc_auc']:.3f}, lift@10% {mean['lift_at_10pct']:.2f}",
                    flush=True,
                )
            return fits[k]

        current = dict.fromkeys(STRATEGIES, 0)
        for t, week in enumerate(weeks, start=1):
            csv = week.drop(columns=spec.target.column).to_csv(sep=spec.separator, index=False)
            key = hashlib.sha256(csv.encode()).hexdigest()  # as scoring keys the draw: the file's sha256
            for name in STRATEGIES:
                trained = model_on(current[name])
                figures = one_week(settings, spec, week, key, trained)
                retrain = {"policy": bool(figures["policy_reasons"]), "never": False, "every_week": True}[
                    name
                ]
                retrain = retrain and t < len(weeks)  # after the last week there is no next week to score
                figures["retrain"] = retrain
                if retrain:
                    candidate = model_on(t)
                    figures["gate"] = gate_verdict(settings, candidate, trained)
                    current[name] = t
                results[name].append({"week": t, "strategy": name, **figures})
            w = {s: results[s][-1] for s in STRATEGIES}
            print(
                f"week {t:2d} ({len(week):,} rows, {_pct(w['never']['week_conversion_rate'])} converted): "
                "lift "
                + ", ".join(f"{s} {w[s]['lift_vs_week']:.2f}" for s in STRATEGIES)
                + (
                    f"; policy retrains: {'; '.join(w['policy']['policy_reasons'])}"
                    if w["policy"]["retrain"]
                    else ""
                ),
                flush=True,
            )
    totals = {}
    for name in STRATEGIES:
        totals[name] = {
            **pooled(results[name]),
            "retrains": sum(r["retrain"] for r in results[name]),
            "gate_would_refuse": sum(not r["gate"]["promote"] for r in results[name] if r.get("gate")),
        }
    seconds = time.perf_counter() - started
    lines = table(results)
    print("\n" + "\n".join(lines))
    print(
        "\n| strategy | mean lift vs week | min | conversions among the targeted | targeted conv. | "
        "ROC-AUC | retrains |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in STRATEGIES:
        x = totals[name]
        print(
            f"| {name} | {x['mean_lift_vs_week']:.2f} | {x['min_lift_vs_week']:.2f} | "
            f"{x['targeted_conversions']} of {x['targeted']:,} | {_pct(x['targeted_conversion_rate'])} | "
            f"{x['mean_roc_auc']:.3f} | "
            f"{x['retrains']} |"
        )
    print(f"\n{seconds:.0f} s in all, {len(fits)} distinct fits", flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    chart(results, RESULTS / "simulation.png", settings.retrain_floor_lift)
    said = findings(results, totals, settings.retrain_floor_lift)
    write_markdown(args, settings, frame, first, weeks, results, totals, said, seconds, len(fits))
    record(
        "simulation",
        {
            "label": LABEL,
            "what": "the outcomes loop over bank-full's last 40% in weekly files: score with the current "
            "model, build the contact list (publish.contact_policy, contacts.assign), measure the week "
            "(monitoring.performance) with its real labels, then retrain by the policy in settings "
            "(retraining.reasons), never, or every week",
            "model": f"{FAMILY}, fitted by training.split and training.train in-process (backtests, fit on "
            "every row, calibration on the last period); other families and the family choice skipped; the "
            "gate (gate.decide against the model replaced) recorded on each refit but not applied",
            "outcomes": "every customer's real label comes back each week (as in the demo)",
            "initial_history_rows": first,
            "weeks": len(weeks),
            "week_rows": [len(w) for w in weeks],
            "week_rows_asked": args.week_rows,
            "settings": {
                k: getattr(settings, k)
                for k in (
                    "retrain_floor_lift",
                    "retrain_when_outside_interval",
                    "retrain_on_drift",
                    "retrain_min_outcomes",
                    "budget_share",
                    "holdout_share",
                    "explore_share",
                    "seed",
                    "backtest_periods",
                    "backtest_period_share",
                )
            },
            "fits": {
                str(k): {
                    "rows": f.rows,
                    "seconds": round(f.seconds, 1),
                    "backtest_mean": f.backtest.summary()["mean"],
                }
                for k, f in sorted(fits.items())
            },
            "totals": totals,
            "findings": said,
            "per_week": results,
            "seconds": round(seconds, 1),
        },
    )


def write_markdown(args, settings, frame, first, weeks, results, totals, said, seconds, fits) -> None:
    lines = [
        "# Retraining strategies, simulated on bank-full (`simulation.py`)",
        "",
        f"**{LABEL}.** Figures: `results/simulation.json`; chart: `results/simulation.png`.",
        "",
        f"The first {args.history_share:.0%} of bank-full ({first:,} rows) is the initial history; the last "
        f"{1 - args.history_share:.0%} is cut into {len(weeks)} consecutive weeks of "
        f"{min(map(len, weeks)):,}-{max(map(len, weeks)):,} customers (about {args.week_rows:,} asked). "
        "Each week the current model scores the customers; the contact list is the scoring pipeline's "
        f"(`publish.contact_policy` and `contacts.assign`: {settings.budget_share:.0%} budget, "
        f"{settings.holdout_share:.0%} of it held out, {settings.explore_share:.0%} of the others called "
        "at random, the draw keyed by the week file's sha256) with the promise and its interval from the "
        "model's backtests (`publish.expectations`); every customer's real label comes back; "
        "`monitoring.performance` measures the week on a minimal manifest (no feature drift); then the "
        "strategy decides. A retrain fits the logistic family, the one the pipeline chooses at every "
        "bank-full cut-off from 60% on (`results/decision_quality.json`), with the training pipeline's own "
        "`split` and `train` step functions called in-process (four backtest periods, the fit on every "
        "row, calibration on the last period's out-of-time scores) on the initial history plus every week "
        "seen. Skipped: the other families' backtests and the family choice, SHAP, registration; the "
        "gate's verdict (`gate.decide` against the model it would replace) is recorded but not applied. "
        "The policy is `retraining.reasons` with the default settings: retrain when the targeted convert "
        f"at less than {settings.retrain_floor_lift:g} times the week's rate (fewer than 30 explore "
        "outcomes a week, so the week's rate is the reference), or outside the promised interval.",
        "",
        "## Findings",
        "",
        *said,
        "",
        "## Totals",
        "",
        "| strategy | mean lift vs week (min) | conversions among the targeted | targeted conv. "
        "| their holdout | mean ROC-AUC | promise inside | retrains | gate would refuse "
        "| weeks the policy would retrain |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in STRATEGIES:
        x = totals[name]
        lines.append(
            f"| {name} | {x['mean_lift_vs_week']:.2f} ({x['min_lift_vs_week']:.2f}) | "
            f"{x['targeted_conversions']} of {x['targeted']:,} | {_pct(x['targeted_conversion_rate'])} | "
            f"{x['holdout_conversions']} of "
            f"{x['holdout']} ({_pct(x['holdout_conversion_rate'])}) | {x['mean_roc_auc']:.3f} "
            f"| {x['weeks_promise_inside']} of {len(weeks)} weeks | {x['retrains']} | "
            f"{x['gate_would_refuse']} "
            f"| {x['weeks_policy_would_retrain']} |"
        )
    lines += [
        "",
        "## Week by week",
        "",
        *table(results),
        "",
        f"{seconds:.0f} s in one process ({fits} distinct fits: a refit on the same rows is the same model, "
        "shared between strategies).",
        "",
    ]
    (RESULTS / "simulation.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
