"""Time-aware split: train on the past, choose on the next slice, test on the most recent one."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from remarketing.datasets import DatasetSpec


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def time_split(frame: pd.DataFrame, spec: DatasetSpec) -> Splits:
    """Split an already time-ordered frame (see ``validation``) by the spec's fractions, never shuffling."""
    n = len(frame)
    n_train = round(n * spec.split.train)
    n_valid = round(n * spec.split.validation)
    if min(n_train, n_valid, n - n_train - n_valid) < 1:
        raise ValueError(f"{n} rows are too few to split {spec.split.model_dump()}")
    return Splits(
        frame.iloc[:n_train].reset_index(drop=True),
        frame.iloc[n_train : n_train + n_valid].reset_index(drop=True),
        frame.iloc[n_train + n_valid :].reset_index(drop=True),
    )
