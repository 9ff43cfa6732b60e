"""Reason codes: structured top contributions, and their sentence in the spec's plain words."""

import numpy as np
import pandas as pd
import pytest

from remarketing.datasets import load_spec
from remarketing.reasons import Reason, explain_rows, plain, reason_columns, sentence, top_reasons

BANK = load_spec("bank-marketing")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("contact", "unknown", "no contact channel on file"),
        ("pdays", -1, "not contacted in an earlier campaign"),
        ("pdays", "12", "contacted in the last 30 days"),
        ("pdays", 60.0, "contacted 1 to 3 months ago"),
        ("pdays", 400, "last contacted 400 days ago, in an earlier campaign"),
        ("poutcome", "success", "the previous campaign succeeded"),
        ("campaign", 1, "first call in this campaign"),
        ("campaign", 4, "called 4 times in this campaign"),
        ("balance", 2971, "average yearly balance 2,971 EUR"),
        ("age", 58.0, "aged 58"),
    ],
)
def test_reasons_read_in_the_specs_words(field, value, words):
    assert sentence(BANK, field, value, "raises") == f"{words} (raises)"


def test_a_field_or_value_the_spec_cannot_word_still_reads():
    assert sentence(BANK, "shoe_size", 42, "lowers") == "shoe_size=42 (lowers)"
    assert sentence(BANK, "age", "forty", "lowers") == "age: forty (lowers)"


def test_every_category_of_both_specs_has_words():
    for spec in (BANK, load_spec("thera-bank")):
        for name, feature in spec.features.items():
            for category in feature.categories or []:
                assert category in feature.texts, f"{spec.name}: {name}={category} has no words"


def test_top_reasons_are_data_largest_first_without_zeros():
    contributions = pd.DataFrame({"age": [0.1, 0.0], "contact": [-0.5, 0.0], "pdays": [0.3, 0.2]})
    rows = pd.DataFrame({"age": [58.0, 30.0], "contact": ["unknown", "cellular"], "pdays": [-1.0, 5.0]})
    reasons = top_reasons(contributions, rows)
    assert reasons[0] == [
        Reason("contact", "unknown", -0.5),
        Reason("pdays", -1.0, 0.3),
        Reason("age", 58.0, 0.1),
    ]
    assert reasons[1] == [Reason("pdays", 5.0, 0.2)]
    assert reasons[0][0].direction == "lowers" and reasons[0][1].direction == "raises"
    explained = explain_rows(contributions, rows, -1.5, [0.2, 0.3])
    assert explained[0]["reasons"][1] == {"field": "pdays", "value": -1, "contribution": 0.3}


def test_reason_columns_are_top_reasons_per_field():
    rng = np.random.default_rng(3)
    n = 500
    contributions = pd.DataFrame(
        {"age": rng.normal(size=n), "contact": rng.normal(size=n), "pdays": rng.normal(size=n)}
    )
    contributions.loc[::7, "pdays"] = 0.0  # some customers with fewer than three reasons
    contributions.loc[::11, ["age", "contact"]] = 0.0
    rows = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n).astype(float),
            "contact": rng.choice(["cellular", "unknown", "=1+1"], n),
            "pdays": rng.choice([-1.0, 12.5, 400.0], n),
        }
    )
    columns = reason_columns(contributions, rows)
    for i, reasons in enumerate(top_reasons(contributions, rows)):
        for k in range(3):
            given = reasons[k] if k < len(reasons) else None
            assert columns[f"reason_{k + 1}_field"][i] == (given.field if given else "")
            assert columns[f"reason_{k + 1}_value"][i] == (str(plain(given.value)) if given else "")
            assert columns[f"reason_{k + 1}_contribution"][i] == (given.contribution if given else 0.0)
