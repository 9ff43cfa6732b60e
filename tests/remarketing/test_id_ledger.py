"""Ids repeated across a streamed file's chunks, found through hashes on disk and confirmed on the ids."""

import numpy as np
import pandas as pd

from remarketing.id_ledger import _PAIR, IdLedger, ids_in_rows


def chunks_of(ids: list[str], size: int) -> list[pd.Series]:
    series = pd.Series(ids)
    return [series.iloc[i : i + size] for i in range(0, len(series), size)]


def test_every_later_occurrence_of_an_id_is_named_with_its_row(tmp_path):
    ids = [f"C{i}" for i in range(5_000)]
    ids[1_234], ids[4_999], ids[3_000] = "C7", "C7", "C2500"  # C7 three times, C2500 twice
    ledger = IdLedger(tmp_path)
    for chunk in chunks_of(ids, 700):
        ledger.add(chunk)
    again = ledger.repeated(lambda rows: ids_in_rows(chunks_of(ids, 700), rows))
    assert again.to_dict() == {1_234: "C7", 3_000: "C2500", 4_999: "C7"}  # the first of each is fine
    assert again.index.is_monotonic_increasing


def test_a_file_without_repeats_reads_nothing_back(tmp_path):
    ledger = IdLedger(tmp_path)
    for chunk in chunks_of([f"C{i}" for i in range(3_000)], 500):
        ledger.add(chunk)

    def never(rows: np.ndarray) -> pd.Series:
        raise AssertionError(f"rows {rows} read back though no hash repeats")

    assert ledger.repeated(never).empty


def test_two_ids_that_share_a_hash_are_not_a_duplicate(tmp_path):
    ledger = IdLedger(tmp_path)
    collided = np.array([(7, 0), (7, 1)], dtype=_PAIR)  # as if "A" and "B" (rows 0 and 1) hashed alike
    ledger._spill.add(collided, np.zeros(2, dtype=np.intp))
    asked = []

    def ids_at(rows: np.ndarray) -> pd.Series:
        asked.append(rows.tolist())
        return pd.Series(["A", "B"], index=rows)

    assert ledger.repeated(ids_at).empty and asked == [[0, 1]]
