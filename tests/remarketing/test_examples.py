"""The example data that ships with the repository: found by default, and byte-identical to UCI's."""

import hashlib

from remarketing import examples

UCI_SHA256 = (
    "d1513ec63b385506f7cfce9f2c5caa9fe99e7ba4e8c3fa264b3aaf0f849ed32d"  # data/bank-marketing/README.md
)


def test_the_shipped_bank_full_is_found_and_is_ucis_file(monkeypatch):
    monkeypatch.delenv("REMARKETING_DATA_DIR", raising=False)
    found = examples.find(examples.BANK_FULL)
    assert found == examples.REPOSITORY_DATA / "bank-marketing" / "bank-full.csv.gz"
    assert hashlib.sha256(examples.read_bytes(found)).hexdigest() == UCI_SHA256


def test_another_data_folder_is_used_when_set_and_plain_csv_files_too(monkeypatch, tmp_path):
    (tmp_path / "bank-marketing").mkdir()
    (tmp_path / "bank-marketing" / "bank-full.csv").write_bytes(b"age;y\n30;no\n")
    monkeypatch.setenv("REMARKETING_DATA_DIR", str(tmp_path))
    found = examples.find(examples.BANK_FULL)
    assert found == tmp_path / "bank-marketing" / "bank-full.csv"
    assert examples.read_bytes(found) == b"age;y\n30;no\n"
    assert examples.find(examples.THERA_BANK) is None
