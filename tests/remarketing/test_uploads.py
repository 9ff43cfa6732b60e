"""Upload names and the rules the app states where the user acts."""

from datetime import UTC, datetime

from remarketing import uploads
from remarketing.runs import Source
from remarketing.settings import Settings


def test_a_run_shows_the_file_name_a_person_gave():
    name = uploads.object_name("Week 48 (final).csv", now=datetime(2026, 12, 2, 8, 30, 12, 123456, UTC))
    assert name == "weekly/Week-48-final-20261202T083012123456.csv"  # the object's name is made safe
    given = Source(uri=f"gs://landing/{name}", generation=1, filename="Week 48 (final).csv")
    assert uploads.shown_name(given) == "Week 48 (final).csv"  # the run shows the name as given
    # a record from before names were kept, or a file dropped into the bucket by hand
    assert uploads.shown_name(Source(uri=f"gs://landing/{name}", generation=1)) == "Week-48-final.csv"
    assert uploads.shown_name(Source(uri="gs://landing/input/history.csv", generation=1)) == "history.csv"


def test_each_limit_is_stated_one_way():
    rules = uploads.rules(Settings(max_upload_bytes=50 * 2**20))
    assert rules["max_upload"] == "50 MB (52,428,800 bytes)" == uploads.size_text(52_428_800)
    bank = next(d for d in rules["datasets"] if d["name"] == "bank-marketing")
    assert bank["file_rule"] == (
        "CSV, semicolon (;)-separated, UTF-8, with the columns age, job, marital, education, ... (13 in all)"
    )
    assert "at least 1" in rules["budget_rule"] and "0.5" in rules["budget_rule"]
