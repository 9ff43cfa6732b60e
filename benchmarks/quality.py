"""Quality of every candidate family as the pipeline trains it, on bank-full's time order.

    .venv/bin/python benchmarks/quality.py [--data PATH]

- pipeline split (60/20/20): validation ROC-AUC of the model fitted on the first 60% (what picks the
  family), and test ROC-AUC of the model refitted on the first 80%, calibrated on 60-80% (what ships);
- held-out period: fitted on the first 50% (early stopping on 50-60%), tested on 60-80%, a period the
  pipeline's choice never looked at; it shows how much one split's number can be trusted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA, record  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA / "bank-marketing" / "bank-full.csv")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from remarketing.datasets import load_spec
    from remarketing.models import FAMILIES, calibrate, fit_family
    from remarketing.split import time_split
    from remarketing.validation import Purpose, validate

    spec = load_spec("bank-marketing")
    y = spec.target.column
    frame = validate(args.data.read_bytes(), spec, Purpose.TRAINING).frame
    splits = time_split(frame, spec)
    n = len(frame)
    early, early_valid, period = (
        frame.iloc[: n // 2],
        frame.iloc[n // 2 : int(n * 0.6)],
        frame.iloc[int(n * 0.6) : int(n * 0.8)],
    )
    common = {"seed": 42, "background_rows": 200}
    results = {}
    for family in FAMILIES:
        probe = fit_family(family, spec, splits.train, validation=splits.validation, **common)
        both = pd.concat([splits.train, splits.validation], ignore_index=True)
        final = fit_family(family, spec, both, epochs=probe.epochs, **common).model
        raw = final.predict_proba(splits.test)
        calibrate(final, splits.validation, splits.validation[y].to_numpy())
        shipped = final.predict_proba(splits.test)
        held = fit_family(family, spec, early, validation=early_valid, **common).model
        results[family] = {
            "validation_roc_auc": round(
                roc_auc_score(splits.validation[y], probe.model.predict_proba(splits.validation)), 4
            ),
            "test_roc_auc": round(roc_auc_score(splits.test[y], shipped), 4),
            "test_brier_uncalibrated": round(brier_score_loss(splits.test[y], raw), 4),
            "test_brier_calibrated": round(brier_score_loss(splits.test[y], shipped), 4),
            "held_out_period_roc_auc": round(roc_auc_score(period[y], held.predict_proba(period)), 4),
        }
        print(family, results[family], flush=True)
    chosen = max(results, key=lambda f: results[f]["validation_roc_auc"])
    record(
        "quality",
        {
            "data": args.data.name,
            "priors": {
                "train": round(splits.train[y].mean(), 4),
                "validation": round(splits.validation[y].mean(), 4),
                "test": round(splits.test[y].mean(), 4),
            },
            "families": results,
            "chosen_by_validation": chosen,
            "chosen_test_roc_auc": results[chosen]["test_roc_auc"],
        },
    )


if __name__ == "__main__":
    main()
