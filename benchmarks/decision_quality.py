"""Decision quality over several periods, measured on what ships: the model the pipeline deploys, scored
through the CLI, against the plain logistic regression the issue names as the bar, in the same run.

    .venv/bin/python benchmarks/decision_quality.py [--data PATH] [--cuts 0.5 0.6 0.7 0.8] [--thera PATH]

For each cut-off c of bank-full (time order): the first c of the rows are the history, the next 20% (to the
end for c = 0.8: the demo's split) are this week's customers, outcome removed and ids added. On a fresh
private stack, ``remarketing train`` trains on the history (backtests, gate, refit on every row) and
``remarketing score --budget-share 0.1`` scores the week through the local KServe server. The figures come
from the published predictions.csv joined with the held-back outcomes:

- ROC-AUC of the scores and precision in the top 10% (by the file's rank);
- the targeted customers' actual conversion against the expected rate and its stated interval;
- the plain logistic regression (one-hot categories, scaled numbers, no ``duration``/``month``/``day``,
  scikit-learn defaults) fitted in this process on the whole history and scored on the same customers,
  with a paired bootstrap interval of the ROC-AUC difference.

Thera Bank (``--thera``) runs the same CLI path on its first 80% / last 20% (file order; no time column).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import example, record  # noqa: E402
from remarketing.examples import BANK_FULL, THERA_BANK  # noqa: E402

WEEK = 0.2
TOP = 0.1


def split_files(frame: pd.DataFrame, cut: float, folder: Path, spec) -> tuple[Path, Path, pd.DataFrame]:
    n = len(frame)
    history = frame.iloc[: int(n * cut)]
    week = frame.iloc[int(n * cut) : int(n * min(1.0, cut + WEEK))].copy()
    if spec.id_column not in week.columns:
        week.insert(0, spec.id_column, [f"C{i + 1:06d}" for i in week.index])
    folder.mkdir(parents=True, exist_ok=True)
    history_path, week_path = folder / f"history-{cut}.csv", folder / f"week-{cut}.csv"
    history.to_csv(history_path, sep=spec.separator, index=False)
    week.drop(columns=spec.target.column).to_csv(week_path, sep=spec.separator, index=False)
    labels = pd.DataFrame(
        {
            "customer_id": week[spec.id_column].astype(str).to_numpy(),
            "y": (week[spec.target.column].astype(str) == spec.target.positive).astype(int).to_numpy(),
        }
    )
    return history_path, week_path, labels


def cli(settings, *args: str) -> tuple[dict, float, str]:
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"remarketing {args[0]} failed:\n{process.stderr[-3000:]}")
    return json.loads(lines[-1]), seconds, process.stderr


def plain_logistic(history: pd.DataFrame, week: pd.DataFrame, spec) -> np.ndarray:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), spec.categorical),
            ("numbers", StandardScaler(), spec.numeric),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=3000))
    model.fit(history[spec.feature_names], history[spec.target.column])
    return model.predict_proba(week[spec.feature_names])[:, 1]


def top_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    from remarketing.evaluation import conversion_of_top, top_n

    return conversion_of_top(labels, scores, top_n(scores, TOP))


def paired_auc_difference(
    labels: np.ndarray, ours: np.ndarray, theirs: np.ndarray, rounds: int = 300
) -> dict:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(rounds):
        i = rng.integers(0, len(labels), len(labels))
        if labels[i].min() == labels[i].max():
            continue
        gaps.append(roc_auc_score(labels[i], ours[i]) - roc_auc_score(labels[i], theirs[i]))
    low, high = np.quantile(gaps, [0.05, 0.95])
    return {
        "difference": float(roc_auc_score(labels, ours) - roc_auc_score(labels, theirs)),
        "90%": [float(low), float(high)],
    }


def one_case(name: str, frame: pd.DataFrame, cut: float, dataset: str, workdir: Path) -> dict:
    from sklearn.metrics import roc_auc_score

    from local_stack import services
    from remarketing.datasets import load_spec
    from remarketing.storage import Storage
    from remarketing.validation import Purpose, validate

    spec = load_spec(dataset)
    history_path, week_path, labels = split_files(frame, cut, workdir / "files", spec)
    settings = services.private_settings(workdir / f"state-{name}")
    services.ensure_stack(settings)
    try:
        trained, train_seconds, _ = cli(settings, "train", str(history_path), "--dataset", dataset)
        if not trained["promoted"]:  # no champion: next week cannot be scored, which is the result
            result = {
                "promoted": False,
                "warnings": trained["warnings"],
                "train_seconds": round(train_seconds, 1),
            }
            print(name, json.dumps(result), flush=True)
            return result
        scored, score_seconds, _ = cli(
            settings, "score", str(week_path), "--dataset", dataset, "--budget-share", str(TOP)
        )
        predictions = pd.read_csv(
            io.BytesIO(Storage(settings).read_bytes(scored["predictions_uri"])), dtype={"customer_id": str}
        )
    finally:
        services.down(settings)
    joined = predictions.merge(labels, on="customer_id")
    y, p = joined["y"].to_numpy(), joined["probability"].to_numpy()
    targeted = (joined["group"] == "targeted").to_numpy()
    history = validate(history_path.read_bytes(), spec, Purpose.TRAINING).frame
    week = validate(week_path.read_bytes(), spec, Purpose.SCORING).frame
    plain = plain_logistic(history, week, spec)
    order = pd.Series(range(len(week)), index=week[spec.id_column].astype(str))
    plain = plain[order.loc[joined["customer_id"]].to_numpy()]
    actual = float(y[targeted].mean())
    low, high = scored["expected_conversion_rate_low"], scored["expected_conversion_rate_high"]
    result = {
        "history_rows": len(history),
        "week_rows": len(joined),
        "week_base_rate": round(float(y.mean()), 4),
        "family": trained["metrics"]["family"],
        "promoted": trained["promoted"],
        "backtest_mean_roc_auc": round(trained["metrics"]["roc_auc"], 4),
        "backtest_worst_roc_auc": round(trained["metrics"]["worst_roc_auc"], 4),
        "train_seconds": round(train_seconds, 1),
        "score_seconds": round(score_seconds, 1),
        "shipped": {
            "roc_auc": round(float(roc_auc_score(y, p)), 4),
            "precision_at_10pct": round(top_precision(y, p), 4),
        },
        "plain_logistic": {
            "roc_auc": round(float(roc_auc_score(y, plain)), 4),
            "precision_at_10pct": round(top_precision(y, plain), 4),
        },
        "roc_auc_difference": paired_auc_difference(y, p, plain),
        "targeted": int(targeted.sum()),
        "expected_rate": round(scored["expected_conversion_rate"], 4),
        "interval": [round(low, 4), round(high, 4)] if low is not None else None,
        "actual_rate": round(actual, 4),
        "inside_interval": bool(low is not None and low <= actual <= high),
        "prior_shift_flagged": scored.get("prior_shift"),
    }
    print(name, json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--thera", type=Path, default=example(THERA_BANK))
    parser.add_argument("--cuts", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8])
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    bank = pd.read_csv(args.data, sep=";", dtype=str, keep_default_na=False)
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cut in args.cuts:
            cases[f"bank-full first {cut:.0%}"] = one_case(
                f"bank-{cut}", bank, cut, "bank-marketing", Path(tmp)
            )
        if args.thera.is_file():
            thera = pd.read_csv(args.thera, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            cases["thera-bank first 80%"] = one_case("thera", thera, 0.8, "thera-bank", Path(tmp))
    record(
        "decision_quality",
        {
            "method": "remarketing train on the history, remarketing score --budget-share 0.1 on the next "
            "20% through the local KServe server; figures from predictions.csv and the held-back outcomes; "
            "the plain logistic regression fitted in-process on the same history",
            "cases": cases,
        },
    )


if __name__ == "__main__":
    main()
