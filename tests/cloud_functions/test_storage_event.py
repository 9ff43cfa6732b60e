import pytest
from cloudevents.http import CloudEvent
from werkzeug.exceptions import BadRequest

from cloud_functions.storage_event import FINALIZED, StorageObject, ignored_because, parse


def event(data, type_=FINALIZED):
    return CloudEvent({"type": type_, "source": "//storage.googleapis.com/projects/_/buckets/b"}, data)


def obj(name: str, size: int = 10) -> StorageObject:
    return StorageObject(bucket="b", name=name, generation=1, size=size)


def test_the_event_data_becomes_a_typed_object():
    parsed = parse(
        event(
            {
                "bucket": "b",
                "name": "weekly/x.csv",
                "generation": "17",
                "size": "42",
                "contentType": "text/csv",
                "metadata": None,
            }
        )
    )
    assert parsed == StorageObject(
        bucket="b", name="weekly/x.csv", generation=17, size=42, contentType="text/csv"
    )


@pytest.mark.parametrize(
    ("data", "type_", "message"),
    [
        ({"bucket": "b", "name": "x.csv", "generation": "0", "size": "1"}, FINALIZED, "generation"),
        ({"bucket": "b", "generation": "1", "size": "1"}, FINALIZED, "name: Field required"),
        ("text", FINALIZED, "not a JSON object"),
        (
            {"bucket": "b", "name": "x.csv", "generation": "1", "size": "1"},
            "google.cloud.storage.object.v1.deleted",
            "unexpected event type",
        ),
    ],
)
def test_a_malformed_event_is_a_bad_request_naming_the_problem(data, type_, message):
    with pytest.raises(BadRequest, match=message):
        parse(event(data, type_))


@pytest.mark.parametrize(
    ("name", "size", "why"),
    [
        ("weekly/a.csv", 10, None),
        ("weekly/A.CSV", 10, None),
        ("input/a.csv", 10, "not under weekly/"),
        ("weekly/a.txt", 10, "not a .csv file"),
        ("weekly/a.csv", 0, "a zero-byte object"),
        ("weekly/sub/", 0, "a folder object"),
        ("weekly/.a.csv", 10, "a temporary object"),
        ("weekly/~$a.csv", 10, "a temporary object"),
        ("weekly/a.csv.tmp", 10, "a temporary object"),
        ("weekly/_temporary/0/a.csv", 10, "a temporary object"),
    ],
)
def test_only_the_functions_own_finished_csv_objects_are_launched(name, size, why):
    assert ignored_because(obj(name, size), "weekly/") == why


def test_each_event_is_counted_and_an_ignored_one_by_its_reason():
    from prometheus_client import REGISTRY

    from cloud_functions import metrics
    from cloud_functions.storage_event import handle

    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"function": "on_weekly_file", **labels}) or 0.0

    metrics.declare("on_weekly_file", "scoring")
    before = {
        r: count("remarketing_function_events_ignored_total", reason=r) for r in metrics.IGNORED_REASONS
    }
    events = count("remarketing_function_events_total")
    data = {"bucket": "b", "generation": "1", "size": "0", "name": "weekly/a.csv"}
    assert handle(event(data), "weekly/", function="on_weekly_file") is None
    assert (
        handle(event({**data, "name": "input/a.csv", "size": "5"}), "weekly/", function="on_weekly_file")
        is None
    )
    with pytest.raises(BadRequest):
        handle(event({**data, "generation": "0"}), "weekly/", function="on_weekly_file")
    assert count("remarketing_function_events_total") == events + 3
    after = {r: count("remarketing_function_events_ignored_total", reason=r) for r in metrics.IGNORED_REASONS}
    assert {r: after[r] - before[r] for r in after if after[r] != before[r]} == {
        "empty": 1,
        "other_prefix": 1,
        "malformed": 1,
    }
    assert metrics.reason_label("not under weekly/") == "other_prefix"
