import pytest

from remarketing.errors import PreconditionFailed, StorageError
from remarketing.storage import Storage

pytestmark = pytest.mark.integration


def test_create_only_write_answers_412_on_the_second_writer(settings):
    storage = Storage(settings)
    uri = f"gs://{settings.artifacts_bucket}/tests/precondition-test.json"  # never among the run records
    generation = storage.write_text(uri, "first", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        storage.write_text(uri, "second", if_generation_match=0)
    assert storage.read_text(uri) == "first"
    # compare-and-swap: only the holder of the current generation may write
    storage.write_text(uri, "third", if_generation_match=generation)
    with pytest.raises(PreconditionFailed):
        storage.write_text(uri, "stale", if_generation_match=generation)
    assert storage.read_text(uri) == "third"


def test_a_pinned_generation_is_never_served_newer_content(settings):
    storage = Storage(settings)
    uri = f"gs://{settings.landing_bucket}/input/pinned.csv"
    first = storage.write_text(uri, "v1")
    assert storage.read_bytes(uri, generation=first) == b"v1"
    second = storage.write_text(uri, "v2")
    assert storage.read_bytes(uri, generation=second) == b"v2"
    with pytest.raises(StorageError, match=f"at generation {first}"):
        storage.read_bytes(uri, generation=first)


def test_directories_round_trip(settings, tmp_path):
    storage = Storage(settings)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "top.txt").write_text("top")
    (tmp_path / "a" / "b" / "deep.bin").write_bytes(b"\x00\x01")
    uri = f"gs://{settings.artifacts_bucket}/model-output/test/1"
    storage.upload_dir(tmp_path / "a", uri)
    out = storage.download_dir(uri, tmp_path / "copy")
    assert (out / "top.txt").read_text() == "top" and (out / "b" / "deep.bin").read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("size", [1_000, 20 * 2**20])  # one request, and a resumable upload past 8 MB
def test_a_file_is_uploaded_from_disk_whole(settings, tmp_path, size):
    import os

    storage = Storage(settings)
    source = tmp_path / "big.bin"
    data = os.urandom(size)
    source.write_bytes(data)
    uri = f"gs://{settings.artifacts_bucket}/tests/upload-{size}.bin"
    generation = storage.upload_file(uri, source, content_type="text/csv")
    assert storage.read_bytes(uri) == data
    info = storage.stat(uri)
    assert info.generation == generation and info.size == size


def test_a_local_file_is_uploaded_to_a_local_path(tmp_path):
    from remarketing.settings import Settings

    storage = Storage(Settings(state_dir=tmp_path))
    source = tmp_path / "p.csv"
    source.write_text("customer_id\nC1\n")
    target = tmp_path / "out" / "run" / "predictions.csv"
    storage.upload_file(str(target), source)
    assert target.read_text() == "customer_id\nC1\n"


def test_a_file_uploaded_in_many_resumable_parts_arrives_whole(settings, tmp_path, monkeypatch):
    """Parts of 256 KiB (the smallest GCS takes), each appended by the emulator to the upload's file."""
    import os

    from remarketing import storage as storage_module

    monkeypatch.setattr(storage_module, "UPLOAD_PART_BYTES", 256 * 1024)
    data = os.urandom(9 * 1024 * 1024 + 12_345)  # past 8 MB, the client's threshold for a resumable upload
    path = tmp_path / "parts.bin"
    path.write_bytes(data)
    uri = f"gs://{settings.artifacts_bucket}/tests/parts.bin"
    Storage(settings).upload_file(uri, path, content_type="application/octet-stream")
    assert Storage(settings).read_bytes(uri) == data
