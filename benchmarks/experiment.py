"""Champion against challenger on bank-full, as a user runs it, on a private local stack (kfp.local).

    .venv/bin/python benchmarks/experiment.py [--weeks 6] [--customers 1500] [--share 0.5]

Version A is trained on the first 50% of bank-full (time order) and version B on the first 80%, each with
``remarketing train``. Whichever the gate makes champion is the champion, the other the challenger; when B
is not the champion after both, A is made champion by hand (``remarketing models promote``), so that the
champion is the older model and the challenger the newer one (the script says so). ``remarketing experiment
start --challenger V --share 0.5`` then starts an experiment with the default test settings, and each of up
to 6 consecutive weeks of about 1,500 customers cut from the last 20% of the rows (ids added as
``customer_id``, ``y`` removed) is scored with ``remarketing score FILE --budget-share 0.1``, its real
outcomes sent with ``remarketing outcomes FILE --run RUN_ID`` (with REMARKETING_RETRAIN_FLOOR_LIFT=0 and
REMARKETING_RETRAIN_WHEN_OUTSIDE_INTERVAL=false, so the retraining policy never retrains meanwhile), and
``remarketing experiment status`` read. It stops when the experiment ends or the weeks run out.

Recorded per week: each arm's customers with an outcome, calls and conversions through a call (the week's
and so far), conversions per customer, z, one-sided p-value, boundary, power, the planned sample, the
experiment's status and its decision when it ends; the wall time of every command. Each week's counts are
also recomputed here from the published predictions.csv and the held-back labels, and z, the boundary, the
power and the planned sample from textbook formulas, so a wrong number in the feature shows. A failing
command stops the run and is recorded as it was seen (command, JSON line, end of stderr).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from traceback import format_exc
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS, example, record, run_cli  # noqa: E402

ARMS = ("champion", "challenger")
QUIET = {"REMARKETING_RETRAIN_FLOOR_LIFT": "0", "REMARKETING_RETRAIN_WHEN_OUTSIDE_INTERVAL": "false"}


class Failed(RuntimeError):
    """A command that did not succeed, as seen."""

    def __init__(self, args: tuple[str, ...], payload: dict, stderr: str, seconds: float) -> None:
        super().__init__(f"remarketing {' '.join(args)} failed")
        self.seen = {
            "command": "remarketing " + " ".join(args),
            "seconds": round(seconds, 1),
            "json": payload,
            "stderr_tail": stderr[-4000:],
        }


def cli(env: dict[str, str], timings: list[dict], step: str, *args: str) -> dict:
    seconds, payload, stderr = run_cli(env, *args)
    timings.append({"step": step, "command": "remarketing " + args[0], "seconds": round(seconds, 1)})
    print(f"{step}: remarketing {' '.join(args[:2])} {seconds:.1f} s", flush=True)
    if payload.get("status") != "success":
        raise Failed(args, payload, stderr, seconds)
    return payload


def weekly_files(frame: pd.DataFrame, folder: Path, weeks: int, customers: int) -> list[dict]:
    """Consecutive weeks from the last 20% of the rows, as equal as the rows allow."""
    tail = frame.iloc[int(len(frame) * 0.8) :].copy()
    tail.insert(0, "customer_id", [f"C{i}" for i in tail.index])
    count = max(1, min(weeks, len(tail) // customers))
    out = []
    for week, part in enumerate(np.array_split(np.arange(len(tail)), count), start=1):
        rows = tail.iloc[part]
        path, outcomes = folder / f"week-{week}.csv", folder / f"outcomes-{week}.csv"
        rows.drop(columns="y").to_csv(path, sep=";", index=False)
        rows[["customer_id", "y"]].to_csv(outcomes, sep=";", index=False)
        labels = dict(zip(rows["customer_id"], (rows["y"] == "yes").astype(int), strict=True))
        out.append({"week": week, "path": path, "outcomes": outcomes, "labels": labels, "rows": len(rows)})
    return out


# --- checks, independent of remarketing.experiments --------------------------------------------------
def counts_from_predictions(predictions: pd.DataFrame, labels: dict[str, int]) -> dict[str, dict]:
    joined = predictions.assign(label=predictions["customer_id"].map(labels))
    called = joined["contact"].astype(str).str.lower() == "true"
    out = {}
    for arm in ARMS:
        mine = joined["arm"] == arm
        out[arm] = {
            "customers": int(mine.sum()),
            "calls": int((mine & called).sum()),
            "conversions": int(joined.loc[mine & called, "label"].sum()),
            "version": sorted(set(map(str, joined.loc[mine, "model_version"]))),
        }
    return out


def plan_at(rate: float, test: dict) -> float | None:
    """Challenger customers with an outcome for ``power`` to detect ``min_lift`` over ``rate`` at the final
    boundary z(1 - alpha/2) (README), arcsine effect size, normal approximation, the arms at ``share``."""
    from scipy.stats import norm

    lift, alpha, power, share = test["min_lift"], test["significance"], test["power"], test["share"]
    if not 0 < rate * lift < 1:
        return None
    h = 2 * math.asin(math.sqrt(rate * lift)) - 2 * math.asin(math.sqrt(rate))
    ratio = (1 - share) / share  # champion customers per challenger customer
    return (1 + 1 / ratio) * ((norm.ppf(1 - alpha / 2) + norm.ppf(power)) / h) ** 2


def textbook(totals: dict, planned: dict | None, plan_basis: dict | None, test: dict) -> dict:
    """What the README says the test computes, from the totals with textbook formulas: z (pooled
    two-proportion) and its one-sided p-value, the boundary z(1 - alpha/2) / sqrt(share of the planned
    sample seen), the power of the sample so far at that final boundary, and the planned sample from the
    champion arm's rate when it was set."""
    from scipy.stats import norm

    z_final = norm.ppf(1 - test["significance"] / 2)
    (n1, c1), (n0, c0) = [
        (totals[a]["customers"], totals[a]["conversions"]) for a in ("challenger", "champion")
    ]
    pooled = (c1 + c0) / (n1 + n0)
    z = (c1 / n1 - c0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0)) if 0 < pooled < 1 else 0.0
    p0 = c0 / n0
    power = None
    if 0 < p0 and p0 * test["min_lift"] < 1:
        h = 2 * math.asin(math.sqrt(p0 * test["min_lift"])) - 2 * math.asin(math.sqrt(p0))
        power = float(norm.cdf(h * math.sqrt(n1 / (1 + n1 / n0)) - z_final))
    basis = plan_basis["conversions"] / plan_basis["customers"] if plan_basis else None
    information = min(1.0, n1 / planned["challenger"]) if planned else 0.0
    return {
        "z": z,
        "p_value": float(1 - norm.cdf(z)),
        "boundary": float(z_final / math.sqrt(information)) if information else None,
        "power": power,
        "planned_challenger": plan_at(basis, test) if basis else None,
    }


def close(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(b)))


# --- the run -----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--customers", type=int, default=1500, help="about this many customers a week")
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--budget-share", type=float, default=0.1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from local_stack import services
    from remarketing.storage import Storage

    frame = pd.read_csv(
        example(Path("bank-marketing/bank-full.csv")), sep=";", dtype=str, keep_default_na=False
    )
    n = len(frame)
    began = time.perf_counter()
    timings: list[dict] = []
    figures: dict[str, Any] = {
        "what": "champion against challenger through the CLI on bank-full: A trained on the first 50% of "
        "the rows, B on the first 80%; weekly files from the last 20%, scored at a 10% budget share, their "
        "real outcomes sent back, the experiment's status read after each week",
        "rows": n,
        "settings": {"share": args.share, "budget_share": args.budget_share, **QUIET},
    }
    weeks_out: list[dict] = []
    failure = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = services.private_settings(folder / "state")
        env = {**settings.to_env(), **QUIET}
        histories = {"A": (folder / "history-a.csv", 0.5), "B": (folder / "history-b.csv", 0.8)}
        for path, cut in histories.values():
            frame.iloc[: int(n * cut)].to_csv(path, sep=";", index=False)
        weeks = weekly_files(frame, folder, args.weeks, args.customers)
        try:
            trained = {}
            for name, (path, cut) in histories.items():
                out = cli(env, timings, f"train {name}", "train", str(path))
                metrics = out.get("metrics") or {}
                trained[name] = {
                    "rows": int(n * cut),
                    "first_share": cut,
                    "model_version": str(out["model_version"]),
                    "promoted_by_gate": out.get("promoted"),
                    "family": metrics.get("family"),
                    "backtest_mean_roc_auc": metrics.get("roc_auc"),
                    "backtest_worst_roc_auc": metrics.get("worst_roc_auc"),
                    "warnings": out.get("warnings"),
                }
            listed = cli(env, timings, "models list", "models", "list")
            champion_now = next(
                (str(v["version"]) for v in listed["versions"] if "champion" in v["aliases"]), None
            )
            a, b = trained["A"]["model_version"], trained["B"]["model_version"]
            by_hand = None
            if champion_now == b:
                champion, challenger = b, a
                said = f"the gate made B (v{b}) champion: A (v{a}) is the challenger"
            else:
                champion, challenger = a, b
                if champion_now != a:
                    cli(env, timings, "promote A", "models", "promote", a)
                    by_hand = f"v{a}"
                    said = (
                        f"after both trainings the champion was {champion_now and 'v' + champion_now}, "
                        f"not B: A (v{a}) promoted by hand, B (v{b}) is the challenger"
                    )
                else:
                    said = (
                        f"the gate kept A (v{a}) champion and did not promote B (v{b}): B is the challenger"
                    )
            print(said, flush=True)
            figures.update(
                trained=trained,
                champion=champion,
                challenger=challenger,
                champion_after_training=champion_now,
                promoted_by_hand=by_hand,
                roles_said=said,
            )
            started = cli(
                env,
                timings,
                "start",
                "experiment",
                "start",
                "--challenger",
                challenger,
                "--share",
                str(args.share),
            )["experiment"]
            experiment_id = started["experiment_id"]
            figures["test_settings"] = {k: started[k] for k in ("significance", "power", "min_lift", "share")}
            figures["experiment_id"] = experiment_id
            storage = Storage(settings)
            test = {k: started[k] for k in ("significance", "power", "min_lift", "share")}
            plan_basis, planned_at = None, None  # the champion arm's totals when the plan was set
            for week in weeks:
                label = f"week {week['week']}"
                scored = cli(
                    env, timings, label, "score", str(week["path"]), "--budget-share", str(args.budget_share)
                )
                predictions = pd.read_csv(
                    io.BytesIO(storage.read_bytes(scored["predictions_uri"])), dtype={"customer_id": str}
                )
                mine = counts_from_predictions(predictions, week["labels"])
                measured = cli(
                    env, timings, label, "outcomes", str(week["outcomes"]), "--run", scored["run_id"]
                )
                state = cli(env, timings, label, "experiment", "status")
                shown = next(e for e in state["experiments"] if e["experiment_id"] == experiment_id)
                # keyed by the scoring run and the outcomes file (README: every outcomes file is a look)
                keys = [
                    k for k in shown["weeks"] if k == scored["run_id"] or k.startswith(scored["run_id"] + ":")
                ]
                counted = shown["weeks"][keys[0]] if len(keys) == 1 else None
                totals, look, planned = shown["totals"], shown.get("last") or {}, shown.get("planned")
                before = weeks_out[-1]["so_far"]["champion"]["conversions"] if weeks_out else 0
                if planned and plan_basis is None:
                    plan_basis, planned_at = dict(totals["champion"]), week["week"]
                ours = textbook(totals, planned, plan_basis, test) if totals["champion"]["customers"] else {}
                threshold = 30  # README: the plan is set once the champion arm has 30 conversions
                plan_rule = (
                    planned is None
                    and totals["champion"]["conversions"] < threshold
                    or planned is not None
                    and (
                        planned_at != week["week"] or before < threshold <= totals["champion"]["conversions"]
                    )
                )
                row = {
                    "week": week["week"],
                    "rows": week["rows"],
                    "week_conversion_rate": round(sum(week["labels"].values()) / week["rows"], 4),
                    "scoring_run": scored["run_id"],
                    "monitoring_run": measured.get("run_id"),
                    "scored_arms": (scored.get("experiment") or {}).get("arms"),
                    "week_key": keys,
                    "week_counts": counted,
                    "so_far": {
                        arm: {
                            **totals[arm],
                            "conversions_per_customer": (
                                totals[arm]["conversions"] / totals[arm]["customers"]
                                if totals[arm]["customers"]
                                else None
                            ),
                        }
                        for arm in ARMS
                    },
                    "z": look.get("z"),
                    "p_value": look.get("p_value"),
                    "boundary": look.get("boundary"),
                    "information": look.get("information"),
                    "power": look.get("power"),
                    "planned": planned,
                    "status": shown["status"],
                    "decision": (shown.get("decision") or {}).get("said"),
                    "monitoring_warnings": measured.get("warnings"),
                    "checks": {
                        "counts_match_predictions": bool(counted)
                        and all(
                            counted[arm][k] == mine[arm][k]
                            for arm in ARMS
                            for k in ("customers", "calls", "conversions")
                        ),
                        "arm_versions": {arm: mine[arm]["version"] for arm in ARMS},
                        "versions_match": mine["champion"]["version"] == [champion]
                        and mine["challenger"]["version"] == [challenger],
                        "from_predictions": {
                            arm: {k: mine[arm][k] for k in ("customers", "calls", "conversions")}
                            for arm in ARMS
                        },
                        "textbook": ours,
                        "z_matches": close(look.get("z"), ours.get("z"), 1e-6),
                        "p_value_matches": close(look.get("p_value"), ours.get("p_value"), 1e-6),
                        "boundary_matches": close(look.get("boundary"), ours.get("boundary"), 1e-6),
                        "power_matches": close(look.get("power"), ours.get("power"), 0.02),
                        "planned_matches": close(
                            (planned or {}).get("challenger"), ours.get("planned_challenger"), 0.01
                        ),
                        "planned_when_the_readme_says": plan_rule,
                    },
                }
                weeks_out.append(row)
                print(
                    f"{label}: z {row['z']}, boundary {row['boundary']}, power {row['power']}, "
                    f"planned {planned}, status {row['status']}",
                    flush=True,
                )
                if shown["status"] != "running":
                    break
            figures["plan_basis"] = {"week": planned_at, "champion": plan_basis}
            final = run_cli(env, "experiment", "status")
            figures["final_status"] = final[1]
            figures["final_status_said"] = final[2].strip()[-3000:]
            figures["registry_after"] = cli(env, timings, "after", "models", "list").get("versions")
        except Failed as exc:
            failure = exc.seen
            print("FAILED:", failure["command"], failure["json"], failure["stderr_tail"][-1500:], sep="\n")
        except Exception:  # the script's own error: recorded, then raised once the stack is down
            failure = {"command": "(this script)", "seconds": None, "json": {}, "stderr_tail": format_exc()}
            print(failure["stderr_tail"])
        finally:
            services.down(settings)

    figures["total_seconds"] = round(time.perf_counter() - began, 1)
    figures["weeks"] = weeks_out
    figures["timings"] = timings
    figures["failure"] = failure
    try:  # the figures are recorded whatever happens to the summary
        figures["summary"] = summarize(figures, weeks_out, timings)
        text = report(figures)
    except Exception:
        figures["summary"] = {"error": format_exc()}
        text = f"# experiment.py\n\nThe summary failed:\n\n```\n{format_exc()}```\n"
        failure = failure or figures["summary"]
    record("experiment", figures)
    (RESULTS / "experiment.md").write_text(text)
    if failure:
        sys.exit(1)


def summarize(figures: dict, weeks: list[dict], timings: list[dict]) -> dict:
    def total(step_prefix: str, command: str) -> list[float]:
        return [
            t["seconds"]
            for t in timings
            if t["step"].startswith(step_prefix) and t["command"].endswith(command)
        ]

    out: dict[str, Any] = {
        "train_seconds": total("train", "train"),
        "score_seconds": total("week", "score"),
        "outcomes_seconds": total("week", "outcomes"),
        "status_seconds": total("week", "experiment"),
        "weeks_run": len(weeks),
    }
    if not weeks:
        return out
    last = weeks[-1]
    planned = last["planned"] or {}
    per_week = {arm: last["so_far"][arm]["customers"] / len(weeks) for arm in ARMS}
    if planned:
        needed = max(planned[arm] / per_week[arm] for arm in ARMS if per_week[arm])
        out["planned_per_arm"] = planned
        out["customers_per_arm_per_week"] = per_week
        out["weeks_the_plan_takes_at_this_size"] = math.ceil(needed)
        out["share_of_plan_seen"] = last["information"]
        basis = figures.get("plan_basis") or {}
        if basis.get("champion"):
            out["planned_at_week"] = basis["week"]
            out["champion_rate_when_planned"] = (
                basis["champion"]["conversions"] / basis["champion"]["customers"]
            )
        rate = last["so_far"]["champion"]["conversions_per_customer"]
        again = plan_at(rate, figures["test_settings"]) if rate else None
        if again:
            out["champion_rate_so_far"] = rate
            out["plan_at_rate_so_far_per_arm"] = math.ceil(again)
            out["weeks_at_rate_so_far"] = math.ceil(
                max(again / per_week[arm] for arm in ARMS if per_week[arm])
            )
    expected = {arm: 0.0 for arm in ARMS}
    for w in weeks:
        for arm in ARMS:
            expected[arm] += ((w["scored_arms"] or {}).get(arm) or {}).get("expected_conversions") or 0.0
    out["expected_conversions_so_far"] = expected
    out["ended"] = last["status"] != "running"
    out["status"] = last["status"]
    out["decision"] = last["decision"]
    out["all_checks_pass"] = all(
        w["checks"][k]
        for w in weeks
        for k in (
            "counts_match_predictions",
            "versions_match",
            "z_matches",
            "p_value_matches",
            "boundary_matches",
            "power_matches",
            "planned_matches",
            "planned_when_the_readme_says",
        )
    )
    return out


def report(figures: dict) -> str:
    s, weeks = figures["summary"], figures["weeks"]

    def pct(x: Any) -> str:
        return "-" if x is None else f"{x:.2%}"

    def num(x: Any, f: str = ".2f") -> str:
        return "-" if x is None else format(x, f)

    lines = [
        "# Champion against challenger on bank-full (`experiment.py`)",
        "",
        "Through the CLI on a private local stack (kfp.local, MLflow, the local KServe servers), as a user "
        "runs it. Figures: `results/experiment.json`.",
        "",
    ]
    trained = figures.get("trained") or {}
    for name, t in trained.items():
        lines.append(
            f"- Version {name} (v{t['model_version']}): `remarketing train` on the first "
            f"{t['first_share']:.0%} of bank-full ({t['rows']:,} rows), {t['family']}, mean backtest ROC-AUC "
            f"{num(t['backtest_mean_roc_auc'], '.3f')}; promoted by the gate: {t['promoted_by_gate']}."
        )
    if "roles_said" in figures:
        lines.append(f"- Roles: {figures['roles_said']}.")
    t = figures["settings"]
    ts = figures.get("test_settings", {})
    lines += [
        f"- Experiment at share {t['share']:g}, default test (one-sided significance "
        f"{ts.get('significance')}, power {ts.get('power')}, smallest lift {ts.get('min_lift')}); each week "
        f"scored with `--budget-share {t['budget_share']:g}`; retraining policy quieted (floor lift 0, no "
        "interval trigger).",
        "",
    ]
    if figures.get("failure"):
        f = figures["failure"]
        lines += [
            f"**The run stopped on a failing command**: `{f['command']}` after {f['seconds']} s.",
            "",
            "```",
            str(f["json"])[:2000],
            f["stderr_tail"][-2000:],
            "```",
            "",
        ]
    if weeks:
        lines += [
            "## Week by week (arm figures are cumulative: customers with an outcome, calls, conversions "
            "through a call)",
            "",
            "| week | customers | week conv. | champion: cust. / calls / conv. (per cust.) | "
            "challenger: cust. / calls / conv. (per cust.) | z | p (one-sided) | boundary | power | "
            "planned per arm | status | score s | outcomes s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        score_s, outcomes_s = s["score_seconds"], s["outcomes_seconds"]
        for i, w in enumerate(weeks):
            arms = []
            for arm in ARMS:
                a = w["so_far"][arm]
                arms.append(
                    f"{a['customers']:,.0f} / {a['calls']:,.0f} / {a['conversions']:,.0f} "
                    f"({pct(a['conversions_per_customer'])})"
                )
            planned = (w["planned"] or {}).get("challenger")
            lines.append(
                f"| {w['week']} | {w['rows']:,} | {pct(w['week_conversion_rate'])} | {arms[0]} | "
                f"{arms[1]} | {num(w['z'])} | "
                f"{num(w['p_value'], '.4f')} | {num(w['boundary'])} | "
                f"{pct(w['power'])} | "
                f"{'-' if planned is None else f'{planned:,}'} | {w['status']} | "
                f"{score_s[i] if i < len(score_s) else '-'} | "
                f"{outcomes_s[i] if i < len(outcomes_s) else '-'} |"
            )
        lines.append("")
        lines.append("## In plain words")
        lines.append("")
        if s.get("ended"):
            lines.append(f"- The experiment ended after week {weeks[-1]['week']}: {s['decision']}.")
        else:
            lines.append(
                f"- After {len(weeks)} weeks the experiment is still running: no decision. "
                f"{s.get('share_of_plan_seen', 0):.0%} of the planned sample has been seen."
            )
        if s.get("planned_per_arm"):
            per = s["customers_per_arm_per_week"]
            lines.append(
                f"- The planned sample, set after week {s.get('planned_at_week')} once the champion arm had "
                f"30 conversions, from its rate then ({pct(s.get('champion_rate_when_planned'))} converted "
                "through a call per customer), is "
                f"{s['planned_per_arm']['challenger']:,} customers with an outcome per arm; at this size "
                f"(about {per['champion']:,.0f} champion and {per['challenger']:,.0f} challenger customers a "
                f"week) that is **{s['weeks_the_plan_takes_at_this_size']} weeks**; "
                f"{s['share_of_plan_seen']:.0%} of it was seen."
            )
            if s.get("plan_at_rate_so_far_per_arm"):
                lines.append(
                    f"- The plan stays as it was set. Sized from the champion arm's rate over "
                    f"every week instead ({pct(s['champion_rate_so_far'])}), it would be "
                    f"{s['plan_at_rate_so_far_per_arm']:,} per arm, {s['weeks_at_rate_so_far']} weeks at "
                    "this size."
                )
        if s.get("ended") and weeks[-1]["z"] is not None and weeks[-1]["z"] < 0:
            lines.append(
                f"- It ended early on the lower boundary (the challenger worse beyond -boundary), with "
                f"{s.get('share_of_plan_seen', 0):.0%} of the planned sample; the one-sided p-value "
                "(challenger better) is near 1."
            )
        lines.append(
            "- Each customer's arm is a keyed hash of the id and the experiment's id (which carries its "
            "start time): a rerun splits the same weeks differently, and its z moves with that split."
        )
        last = weeks[-1]["so_far"]
        e = s.get("expected_conversions_so_far") or {}
        lines.append(
            "- Conversions through a call against what the scoring runs expected: "
            + "; ".join(f"{arm} {last[arm]['conversions']:,.0f} against {e.get(arm, 0):,.1f}" for arm in ARMS)
            + "."
        )
        lines.append(
            "- Checks: each week's counts recomputed from predictions.csv and the labels; z, the p-value, "
            "the boundary, the power and the planned sample (and the week it was set) from textbook "
            "formulas and the README's rules: "
            + ("all agree." if s.get("all_checks_pass") else "**some disagree, see the JSON's `checks`**.")
        )
        lines.append(
            f"- Wall time: the whole run {figures.get('total_seconds')} s; train "
            f"{', '.join(f'{x:.0f} s' for x in s['train_seconds'])}; score "
            f"{min(s['score_seconds']):.0f}-{max(s['score_seconds']):.0f} s a week; outcomes "
            f"{min(s['outcomes_seconds']):.0f}-{max(s['outcomes_seconds']):.0f} s a week."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
