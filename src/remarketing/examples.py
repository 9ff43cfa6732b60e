"""Where the example data lives: ``REMARKETING_DATA_DIR`` when set, else the repository's ``data/`` folder
(bank-full ships there, gzip-compressed, with its CC BY 4.0 attribution)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

REPOSITORY_DATA = Path(__file__).resolve().parents[2] / "data"
BANK_FULL = Path("bank-marketing") / "bank-full.csv"
THERA_BANK = Path("thera-bank") / "Bank_Personal_Loan_Modelling.csv"


def data_dir() -> Path:
    return Path(os.environ.get("REMARKETING_DATA_DIR") or REPOSITORY_DATA)


def find(relative: Path, folder: Path | None = None) -> Path | None:
    """The file under ``folder`` (default :func:`data_dir`), plain or gzip-compressed; None when absent."""
    base = folder or data_dir()
    for path in (base / relative, (base / relative).with_name(relative.name + ".gz")):
        if path.is_file():
            return path
    return None


def read_bytes(path: Path) -> bytes:
    """A CSV's bytes, decompressed when the file is gzip."""
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
