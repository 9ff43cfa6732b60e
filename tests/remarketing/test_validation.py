import pytest

from remarketing.datasets import load_spec
from remarketing.errors import DataValidationError
from remarketing.validation import Purpose, validate

SPEC = load_spec("bank-marketing")
HEADER = (
    b'"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";"month";'
    b'"duration";"campaign";"pdays";"previous";"poutcome";"y"\n'
)
ROW = (
    b'58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;"unknown";"no"\n'
)
ROW_YES = (
    b'30;"student";"single";"tertiary";"no";100;"no";"no";"cellular";5;"may";100;1;90;2;"success";"yes"\n'
)


def problems(data: bytes, purpose=Purpose.TRAINING) -> str:
    with pytest.raises(DataValidationError) as info:
        validate(data, SPEC, purpose, source="input/x.csv")
    return str(info.value)


def test_the_real_file_validates_with_the_leak_dropped_and_ids_generated(bank_bytes):
    checked = validate(bank_bytes, SPEC, Purpose.TRAINING)
    assert checked.frame.shape == (45211, 2 + len(SPEC.features))
    assert "duration" not in checked.frame.columns
    assert checked.frame["y"].sum() == 5289
    assert any("'duration' dropped: leaks the outcome" in w for w in checked.warnings)
    assert checked.id_generated and checked.frame["customer_id"].iloc[-1] == "45211"


def test_thera_bank_with_bom_and_crlf(thera_bytes):
    spec = load_spec("thera-bank")
    checked = validate(thera_bytes, spec, Purpose.TRAINING)
    assert checked.frame.shape[0] == 5000
    assert checked.frame["Personal Loan"].sum() == 480
    assert not checked.id_generated  # the BOM did not hide the ID column


def test_empty_file():
    assert "the file is empty (0 bytes)" in problems(b"")


def test_header_only():
    assert "header but no data rows" in problems(HEADER)


def test_wrong_separator():
    assert "wrong separator" in problems((HEADER + ROW).replace(b";", b","))


def test_missing_target():
    text = problems(HEADER.replace(b';"y"', b"") + ROW.rsplit(b";", 1)[0] + b"\n")
    assert "target column 'y' is missing" in text


def test_target_values_outside_the_spec_are_listed_with_lines():
    text = problems(HEADER + ROW + ROW.replace(b'"no"\n', b'"maybe"\n') + ROW_YES)
    assert "column 'y': 1 row where the value is not one of ['no', 'yes'] (line 3: 'maybe')" in text


def test_non_utf8_bytes_name_the_line():
    text = problems(HEADER + ROW + ROW.replace(b"management", b"gest\xe3o"))
    assert "not UTF-8" in text and "line 3" in text


def test_duplicate_ids():
    header = HEADER.replace(b'"age"', b'"customer_id";"age"')
    text = problems(header + b"7;" + ROW + b"7;" + ROW_YES)
    assert "column 'customer_id': 2 rows where the id appears more than once" in text


def test_every_problem_is_listed_and_capped_with_counts():
    bad = [ROW.replace(b"58;", f"{x};".encode(), 1) for x in ["abc", "1.5", "200"]] * 3
    text = problems(HEADER + ROW_YES + b"".join(bad))
    assert "column 'age': 3 rows where the value is not a number" in text
    assert "is not a whole number" in text and "is above 120" in text
    assert "and 1 more" not in text  # only 3 per problem here
    many = problems(HEADER + ROW_YES + ROW.replace(b"58;", b"x;", 1) * 8)
    assert "8 rows where the value is not a number" in many and "and 3 more" in many


def test_unknown_columns_are_dropped_with_a_warning():
    data = (
        HEADER.replace(b'"y"\n', b'"y";"shoe_size"\n')
        + ROW.replace(b'"no"\n', b'"no";44\n')
        + ROW_YES.replace(b'"yes"\n', b'"yes";40\n')
    )
    checked = validate(data, SPEC, Purpose.TRAINING)
    assert "shoe_size" not in checked.frame.columns
    assert any("1 unknown column dropped: 'shoe_size'" in w for w in checked.warnings)


def test_scoring_rejects_bad_rows_counts_unseen_categories_and_ignores_the_target():
    data = HEADER + ROW + ROW.replace(b"58;", b"old;", 1) + ROW.replace(b"management", b"astronaut")
    checked = validate(data, SPEC, Purpose.SCORING)
    assert len(checked.frame) == 2 and "y" not in checked.frame.columns
    assert checked.rejects.to_dict("records") == [
        {"row": 3, "column": "age", "value": "old", "reason": "is not a number"}
    ]
    assert checked.unseen_categories == {"job": 1}
    assert any("target) ignored" in w for w in checked.warnings)


def test_a_streamed_file_gives_the_same_rows_lines_and_rejects_as_a_whole_one(tmp_path, bank_sample):
    import pandas as pd

    from remarketing.validation import validate_file

    lines = bank_sample.splitlines(keepends=True)
    lines[7] = b"x" + lines[7]  # a bad age at line 8
    data = b"".join(lines)
    path = tmp_path / "weekly.csv"
    path.write_bytes(data)
    whole = validate(data, SPEC, Purpose.SCORING)
    chunks = list(validate_file(path, SPEC, Purpose.SCORING, chunk_rows=1000))
    assert len(chunks) == 5
    streamed = pd.concat([c.frame for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(streamed, whole.frame)
    assert pd.concat([c.rejects for c in chunks])["row"].tolist() == whole.rejects["row"].tolist() == [8]
    assert chunks[0].warnings and not chunks[1].warnings


def test_a_streamed_file_refuses_ids_repeated_across_chunks(tmp_path):
    from remarketing.validation import validate_file

    header = HEADER.replace(b'"age"', b'"customer_id";"age"')
    rows = [b"%d;" % i + ROW for i in range(30)] + [b"3;" + ROW]
    path = tmp_path / "weekly.csv"
    path.write_bytes(header + b"".join(rows))
    with pytest.raises(DataValidationError, match="appears more than once.*line 32: '3'"):
        list(validate_file(path, SPEC, Purpose.SCORING, chunk_rows=10))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the file is empty"),
        (HEADER, "header but no data rows"),
        (HEADER.replace(b";", b","), "wrong separator"),
    ],
)
def test_a_streamed_file_names_file_level_problems(tmp_path, data, expected):
    from remarketing.validation import validate_file

    path = tmp_path / "weekly.csv"
    path.write_bytes(data)
    with pytest.raises(DataValidationError, match=expected):
        list(validate_file(path, SPEC, Purpose.SCORING))


def test_a_streamed_file_names_the_line_of_bad_bytes(tmp_path):
    from remarketing.validation import validate_file

    path = tmp_path / "weekly.csv"
    path.write_bytes(HEADER + ROW * 3 + ROW.replace(b"management", b"gest\xe3o"))
    with pytest.raises(DataValidationError, match="not UTF-8.*line 5"):
        list(validate_file(path, SPEC, Purpose.SCORING, chunk_rows=2))


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + (HEADER + ROW * 5 + ROW_YES * 4).replace(b"\n", b"\r\n"),  # BOM, CRLF
        HEADER + ROW.replace(b';"management"', b';  "management"  ') * 5 + ROW_YES * 4,  # spaces, quotes
        HEADER + ROW.replace(b'"management"', b'"manage\nment"') + ROW_YES * 4,  # a line break in a cell
    ],
    ids=["bom-crlf", "space-before-quote", "newline-in-cell"],
)
def test_a_streamed_file_reads_as_the_whole_file_does(tmp_path, data):
    """validate_file reads with Arrow (pandas where only its skipinitialspace unquotes a cell): the same
    rows, types and rejects as validate, which reads with pandas."""
    import pandas as pd

    from remarketing.validation import validate_file

    path = tmp_path / "weekly.csv"
    path.write_bytes(data)
    whole = validate(data, SPEC, Purpose.SCORING)
    chunks = list(validate_file(path, SPEC, Purpose.SCORING, chunk_rows=3))
    pd.testing.assert_frame_equal(pd.concat([c.frame for c in chunks], ignore_index=True), whole.frame)
    rejects = pd.concat([c.rejects for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(rejects, whole.rejects, check_dtype=False)


def test_a_streamed_row_with_a_cell_too_many_is_named(tmp_path):
    from remarketing.validation import validate_file

    path = tmp_path / "weekly.csv"
    # past the head the upload's check reads (64 KiB), so the chunks' reader is the one that finds it
    path.write_bytes(HEADER + ROW * 1000 + ROW.replace(b'"no"\n', b'"no";"extra"\n'))
    with pytest.raises(
        DataValidationError, match="not valid CSV: .*Expected 17 fields in line 1002, saw 18"
    ) as info:
        list(validate_file(path, SPEC, Purpose.SCORING, chunk_rows=2, source="weekly/w.csv"))
    assert "weekly/w.csv" in str(info.value)
