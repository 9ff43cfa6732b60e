"""Every family on a small slice of the real data: probabilities, calibration, exact SHAP additivity."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from remarketing import bundle
from remarketing.datasets import load_spec
from remarketing.features import fold_to_fields
from remarketing.models import EXPLAINERS, FAMILIES, fit_family, platt, recency_weights
from remarketing.validation import Purpose, validate

SPEC = load_spec("bank-marketing")


@pytest.fixture(scope="module")
def splits(bank_sample):
    """Time-ordered slices of the ~4,500-row sample: fit on the past, calibrate and test on later rows."""
    frame = validate(bank_sample, SPEC, Purpose.TRAINING).frame
    return SimpleNamespace(train=frame.iloc[:2700], validation=frame.iloc[2700:3600], test=frame.iloc[3600:])


def test_recency_weights_favour_the_latest_rows():
    w = recency_weights(100, 0.1)
    assert (
        w[-1] == pytest.approx(1.0)
        and w[-11] == pytest.approx(np.exp(-1), rel=1e-2)
        and np.all(np.diff(w) > 0)
    )
    assert recency_weights(100, None) is None


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_predicts_and_explains_additively(family, splits, tmp_path):
    model = fit_family(family, SPEC, splits.train, seed=1, background_rows=50)
    model.calibration = platt(model.margin(splits.validation), splits.validation["y"].to_numpy())
    assert model.calibration[0] > 0
    rows = splits.test.head(40)
    p = model.predict_proba(rows)
    assert p.shape == (40,) and np.all((p > 0) & (p < 1))
    explanation = model.explain(rows)
    assert list(explanation.contributions.columns) == SPEC.feature_names
    # SHAP contributions in calibrated log-odds add up to the model's own logit, exactly
    total = explanation.contributions.sum(axis=1).to_numpy() + explanation.base_value
    np.testing.assert_allclose(total, logit(p), atol=1e-4)
    assert family in EXPLAINERS

    saved = bundle.save(model, tmp_path / "bundle", {"note": "test"})
    again = bundle.load(saved)
    np.testing.assert_allclose(again.predict_proba(rows), p, atol=1e-6)
    assert bundle.read_metadata(saved)["explainer"] == EXPLAINERS[family]


def test_linear_shap_equals_shap_linear_explainer(splits):
    import shap

    model = fit_family("logreg", SPEC, splits.train, seed=1, background_rows=100)
    rows = splits.test.head(30)
    background = model.design(model.background)
    expected = shap.LinearExplainer(model.estimator, shap.maskers.Independent(background, max_samples=100))(
        model.design(rows)
    ).values
    ours, _ = model._shap(model.design(rows))
    np.testing.assert_allclose(ours, expected, atol=1e-9)


def test_rows_a_server_reads_are_already_prepared_and_scored_once_as_twice(splits):
    """A model server scores rows from rows_from_columns / rows_from_records with prepared=True: they must be
    what prepare() makes of them, and scores() must equal predict_proba() and explain()."""
    model = fit_family("logreg", SPEC, splits.train, seed=1, background_rows=20)
    raw = splits.test.head(25)
    padded = raw.assign(job=" " + raw["job"] + "  ")  # a client's spaces
    columns = {c: padded[c].to_numpy() for c in SPEC.feature_names}
    records = padded[SPEC.feature_names].to_dict("records")
    for rows in (model.rows_from_columns(columns), model.rows_from_records(records)):
        pd.testing.assert_frame_equal(rows, model.prepare(rows).reset_index(drop=True))
        probability, explanation = model.scores(rows, prepared=True)
        np.testing.assert_array_equal(probability, model.predict_proba(raw))
        pd.testing.assert_frame_equal(
            explanation.contributions, model.explain(raw).contributions.reset_index(drop=True)
        )


def test_fold_to_fields_sums_each_fields_columns():
    folded = fold_to_fields(np.array([[1.0, 2.0, 3.0]]), ["a", "b", "a"], ["a", "b"])
    assert folded.to_dict("records") == [{"a": 4.0, "b": 2.0}]


def test_a_model_names_missing_and_non_numeric_columns(splits):
    model = fit_family("logreg", SPEC, splits.train, seed=1, background_rows=20)
    with pytest.raises(ValueError, match="missing columns: age"):
        model.predict_proba(splits.test.drop(columns="age"))
    bad = splits.test.head(3).astype({"balance": object})
    bad.loc[bad.index[0], "balance"] = "lots"
    with pytest.raises(ValueError, match="'balance' must be numeric"):
        model.predict_proba(bad)


def test_pyfunc_takes_raw_rows_with_extra_columns(splits):
    model = fit_family("logreg", SPEC, splits.train, seed=1, background_rows=20)
    raw = splits.test.head(5).assign(duration=100, month="may").drop(columns="y")
    out = bundle.PyfuncModel(model).predict(raw)
    assert isinstance(out, pd.Series) and out.between(0, 1).all()


def test_rows_from_a_request_name_the_first_bad_row_and_column(splits):
    from remarketing.errors import InvalidRow

    model = fit_family("logreg", SPEC, splits.train, seed=1, background_rows=20)
    good = splits.test.head(2)[SPEC.feature_names].to_dict("records")
    assert len(model.rows_from_records([*good, {**good[0], "extra": 1}])) == 3
    for bad, message in [
        ({"age": "forty"}, "row 1, column 'age': 'forty' is not a number"),
        ({"balance": True}, "row 1, column 'balance': True is not a number"),
        ({"job": None}, "row 1, column 'job': missing value"),
    ]:
        with pytest.raises(InvalidRow, match=message):
            model.rows_from_records([good[0], {**good[1], **bad}])


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_the_fast_design_equals_the_column_transformer(splits, encoding):
    from remarketing.features import FastDesign, build_preprocessor

    preprocessor = build_preprocessor(SPEC, encoding=encoding).fit(splits.train[SPEC.feature_names])
    rows = splits.test[SPEC.feature_names].copy()
    rows.iloc[0, rows.columns.get_loc("job")] = (
        "astronaut"  # unseen: all zeros (one-hot) or missing (ordinal)
    )
    expected = preprocessor.transform(rows)
    np.testing.assert_array_equal(FastDesign(preprocessor)(rows), expected)


@pytest.mark.parametrize("family", ["hgb", "mlp"])
def test_explanations_from_concurrent_threads_are_correct(family, splits):
    """A model server explains from several request threads at once (DeepExplainer is not thread-safe)."""
    from concurrent.futures import ThreadPoolExecutor

    model = fit_family(family, SPEC, splits.train, seed=1, background_rows=30)
    rows = splits.test.head(100)
    expected = model.explain(rows).contributions
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: model.explain(rows).contributions, range(8)))
    for result in results:
        pd.testing.assert_frame_equal(result, expected)


def test_platt_keeps_a_backwards_ranking_in_order_and_moves_only_the_level():
    margins = np.linspace(-2, 2, 200)
    labels = (margins < -1).astype(int)  # higher margins convert less: backwards
    a, b = platt(margins, labels)
    assert a == 1.0
    assert np.mean(1 / (1 + np.exp(-(a * margins + b)))) == pytest.approx(labels.mean(), abs=0.05)


@pytest.mark.parametrize(
    "cells, expected",
    [
        ([" admin.", "services ", " admin."], ["admin.", "services", "admin."]),  # text: stripped per value
        ([b"admin.", "services"], ["admin.", "services"]),  # bytes read as text, as before
        ([1, 1.0, True], ["1", "1.0", "True"]),  # each spelled as it is, never merged as equal
        (np.array(["admin.", "services"]), ["admin.", "services"]),  # a numpy text array
    ],
)
def test_a_category_column_from_a_request_is_its_values_stripped(splits, cells, expected):
    model = fit_family("logreg", SPEC, splits.train, seed=1, background_rows=20)
    columns = {c: splits.test[c].head(len(expected)).to_numpy() for c in SPEC.feature_names}
    columns["job"] = np.asarray(cells, dtype=None if isinstance(cells, np.ndarray) else object)
    assert list(model.rows_from_columns(columns)["job"]) == expected


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, "   ", ""])
def test_a_missing_or_blank_category_names_its_row(splits, missing):
    from remarketing.errors import InvalidRow

    model = fit_family("logreg", SPEC, splits.train, seed=1, background_rows=20)
    columns = {c: splits.test[c].head(3).to_numpy() for c in SPEC.feature_names}
    columns["job"] = np.array(["admin.", "services", missing], dtype=object)
    with pytest.raises(InvalidRow) as raised:
        model.rows_from_columns(columns)
    assert (raised.value.row, raised.value.column) == (2, "job")
