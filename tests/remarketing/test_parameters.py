"""A run's parameters: one parser for the CLI, the API and the pipeline, naming every wrong value."""

import pytest

from remarketing.errors import ParameterError
from remarketing.parameters import parse


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"call_cost": "-1", "conversion_value": "10"}, "call_cost must be 0 or more"),
        ({"call_cost": "1", "conversion_value": "0"}, "conversion_value must be above 0"),
        ({"call_cost": "abc", "conversion_value": "10"}, "call_cost must be a number, not 'abc'"),
        ({"call_cost": "nan", "conversion_value": "10"}, "call_cost must be a finite number"),
        ({"call_cost": "2"}, "give both call_cost and conversion_value"),
        ({"holdout_share": "0.7"}, "holdout_share must be between 0 and 0.5, not 0.7"),
        ({"explore_share": "-0.1"}, "explore_share must be between 0 and 0.5"),
        ({"budget": "0"}, "budget must be at least 1 customer"),
        ({"budget": "2.5"}, "budget must be a whole number"),
        ({"budget": "10", "budget_share": "0.1"}, "not both"),
        ({"model_version": "../1"}, "model_version must be a version number"),
    ],
)
def test_wrong_parameters_are_named(params, message):
    with pytest.raises(ParameterError) as failure:
        parse(params)
    assert any(message in problem for problem in failure.value.problems), failure.value.problems


def test_parameters_from_object_metadata_are_read_as_numbers():
    given = {
        "budget": "100",
        "call_cost": "2.5",
        "conversion_value": "40",
        "holdout_share": "0",
        "model_version": " 3",
    }
    assert parse({**given, "dataset": "ignored here"}) == {
        "budget": 100,
        "call_cost": 2.5,
        "conversion_value": 40.0,
        "holdout_share": 0.0,
        "model_version": "3",
    }
