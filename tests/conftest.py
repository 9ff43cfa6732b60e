"""Shared fixtures: real data from ../shared/data (never copied into the repo), small samples of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = Path(
    os.environ.get("REMARKETING_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)
BANK = DATA / "bank-marketing" / "bank-full.csv"
THERA = DATA / "thera-bank" / "Bank_Personal_Loan_Modelling.csv"


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (set REMARKETING_DATA_DIR to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def bank_bytes() -> bytes:
    return _require(BANK).read_bytes()


@pytest.fixture(scope="session")
def thera_bytes() -> bytes:
    return _require(THERA).read_bytes()


def every_nth_row(data: bytes, step: int) -> bytes:
    """A time-ordered sample: the header and every ``step``-th data row (keeps the drift of the file)."""
    lines = data.splitlines(keepends=True)
    return b"".join([lines[0], *lines[1::step]])


@pytest.fixture(scope="session")
def bank_sample(bank_bytes: bytes) -> bytes:
    """About 4,500 rows of bank-full.csv in time order."""
    return every_nth_row(bank_bytes, 10)
