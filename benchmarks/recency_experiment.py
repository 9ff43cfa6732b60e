"""EXPERIMENT (a side configuration, not the shipped path): the logistic family's recency weight against the
plain logistic regression, fitted in one process on every row before a cut-off of bank-full and scored on
the next 10% and 20%. It is how the shipped weight (logreg's ``recency_tau`` in ``remarketing.families``) was
chosen: for robustness over many cut-offs, not for one split. The shipped figures are decision_quality.py's.

    .venv/bin/python benchmarks/recency_experiment.py [--data PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import example, record  # noqa: E402
from benchmarks.decision_quality import plain_logistic, top_precision  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402

TAUS = (None, 0.1, 0.2, 0.3)
CUTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from dataclasses import replace

    from sklearn.metrics import roc_auc_score

    from remarketing import families, models
    from remarketing.datasets import load_spec
    from remarketing.validation import Purpose, validate

    spec = load_spec("bank-marketing")
    frame = validate(args.data.read_bytes(), spec, Purpose.TRAINING).frame
    n = len(frame)
    rows, gaps = [], {str(t): [] for t in TAUS}
    shipped = families.BY_NAME["logreg"]
    try:
        for cut in CUTS:
            history = frame.iloc[: int(n * cut)]
            for width in (0.1, 0.2):
                if cut + width > 1.0001:
                    continue
                week = frame.iloc[int(n * cut) : int(n * (cut + width))]
                y = week["y"].to_numpy()
                plain = plain_logistic(history, week, spec)
                row = {"cut": cut, "width": width, "plain": round(float(roc_auc_score(y, plain)), 4)}
                for tau in TAUS:
                    families.BY_NAME["logreg"] = replace(shipped, recency_tau=tau)
                    model = models.fit_family("logreg", spec, history, seed=42, background_rows=50)
                    p = model.predict_proba(week)
                    auc = float(roc_auc_score(y, p))
                    row[f"tau={tau}"] = round(auc, 4)
                    gaps[str(tau)].append((auc - row["plain"], top_precision(y, p) - top_precision(y, plain)))
                rows.append(row)
                print(row, flush=True)
    finally:
        families.BY_NAME["logreg"] = shipped
    summary = {
        tau: {
            "worst_roc_auc_gap": round(float(np.min([g[0] for g in values])), 4),
            "mean_roc_auc_gap": round(float(np.mean([g[0] for g in values])), 4),
            "worst_precision_at_10pct_gap": round(float(np.min([g[1] for g in values])), 4),
            "mean_precision_at_10pct_gap": round(float(np.mean([g[1] for g in values])), 4),
        }
        for tau, values in gaps.items()
    }
    record(
        "recency_experiment",
        {
            "label": "experiment: in-process side configuration",
            "shipped_tau": shipped.recency_tau,
            "rows": rows,
            "gaps_vs_plain": summary,
        },
    )


if __name__ == "__main__":
    main()
