"""Storage that does not answer is named as unavailable, never as "does not exist"."""

import pytest

from remarketing import storage as storage_module
from remarketing.errors import NotFoundError, StorageError, Unavailable
from remarketing.processes import free_port
from remarketing.settings import Settings
from remarketing.storage import ObjectNotFound, Storage


def test_storage_that_does_not_answer_is_unavailable_not_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(storage_module, "READ_DEADLINE_SECONDS", 1.0)  # the retries' deadline, shortened
    dead = f"http://127.0.0.1:{free_port()}"
    storage = Storage(Settings(state_dir=tmp_path, storage_emulator_host=dead))
    with pytest.raises(Unavailable) as down:
        storage.read_bytes("gs://remarketing-artifacts/runs/x.json")
    assert str(down.value).startswith(f"storage at {dead} is unavailable")
    assert not isinstance(down.value, StorageError | NotFoundError)  # no caller mistakes it for "missing"
    with pytest.raises(Unavailable):
        list(storage.list("gs://remarketing-artifacts/runs/"))


def test_a_missing_local_file_is_not_found(tmp_path):
    with pytest.raises(ObjectNotFound, match="does not exist") as missing:
        Storage(Settings(state_dir=tmp_path)).read_bytes(str(tmp_path / "nothing.csv"))
    assert isinstance(missing.value, NotFoundError)
