"""The chunks a sharded step reads and writes: each shard's share, and the shards' folders merged back."""

from __future__ import annotations

import pandas as pd
import pytest

from remarketing.errors import RemarketingError
from remarketing.publish import _check_every_chunk_scored
from remarketing.step import Chunks, MergedChunks


@pytest.fixture
def rows(tmp_path) -> Chunks:
    chunks = Chunks(tmp_path / "rows")
    for i in range(7):
        chunks.write(i, pd.DataFrame({"customer_id": [f"C{i}a", f"C{i}b"]}))
    return chunks


def test_every_chunk_belongs_to_exactly_one_shard(rows):
    owned = [rows.owned(shard, 3) for shard in range(3)]
    assert [[i for i, _ in o] for o in owned] == [[0, 3, 6], [1, 4], [2, 5]]
    assert rows.owned(0, 1) == list(enumerate(rows.files()))
    assert rows.owned(9, 10) == []  # more shards than chunks: the spare ones have nothing to do


def test_the_shards_folders_merge_back_in_chunk_order(rows, tmp_path):
    parts = tuple(Chunks(tmp_path / f"scored-{s}") for s in range(3))
    for shard, part in enumerate(parts):
        for i, path in rows.owned(shard, 3):
            part.write(i, pd.read_parquet(path))
    merged = MergedChunks(parts)
    assert pd.concat(merged.frames()).equals(pd.concat(rows.frames()))
    _check_every_chunk_scored(rows, merged)  # complete: nothing said


def test_a_missing_chunk_stops_publishing_and_a_chunk_written_twice_is_refused(rows, tmp_path):
    parts = (Chunks(tmp_path / "a"), Chunks(tmp_path / "b"))
    for i, path in rows.owned(0, 1)[:-1]:  # the last chunk never scored
        parts[0].write(i, pd.read_parquet(path))
    with pytest.raises(RemarketingError, match=r"1 of 7 chunks of the file were not scored \(chunk-00006"):
        _check_every_chunk_scored(rows, MergedChunks(parts))
    parts[1].write(2, pd.read_parquet(rows.files()[2]))
    with pytest.raises(RemarketingError, match="more than one shard wrote chunk-00002.parquet"):
        MergedChunks(parts).files()
