"""Weekly uploads: check what arrives, store it under ``weekly/`` create-only, and keep a receipt.

Plain functions (no FastAPI): the route only translates HTTP to these and back.

- The name is sanitised to a safe stem; the object is ``weekly/<stem>-<UTC %Y%m%dT%H%M%S%f>.csv``, written
  with ``if_generation_match=0``, so two uploads of the same file are two objects and two runs.
- The content is checked, not the extension alone: binary (NUL bytes, known magic numbers such as Excel,
  zip, PDF), not UTF-8, then the header against the dataset spec (``check_header``).
- The run record is *not* created here: ``launch()`` creates it create-only when the object's finalize
  event arrives. The receipt ``<artifacts>/uploads/<run_id>.json`` lets ``GET /runs/{id}`` answer
  ``queued`` until then.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from remarketing import datasets
from remarketing.errors import DataValidationError, ParameterError, PreconditionFailed, RemarketingError
from remarketing.runs import run_id_for
from remarketing.settings import Settings
from remarketing.storage import Storage, join, sha256_bytes
from remarketing.validation import Purpose, check_header, decode

HEAD_BYTES = 64 * 1024
PREFIX = "weekly/"

MAGIC: list[tuple[bytes, str]] = [
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook is one): export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) or Office file: export the sheet as CSV"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive: upload the CSV inside it"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
]


class PayloadTooLarge(RemarketingError):
    """The upload is over the size limit."""


class UnsupportedFile(RemarketingError):
    """Not a CSV: wrong extension or binary content."""


@dataclass
class Receipt:
    run_id: str
    object: str
    bucket: str
    name: str
    generation: int
    size: int
    sha256: str
    dataset: str
    params: dict[str, Any]
    filename: str
    uploaded_at: str
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sanitise_stem(filename: str) -> str:
    """A safe object-name stem from whatever name the browser sent: no folders (``/`` or ``\\``), no
    ``..``, ASCII letters, digits, ``.``, ``_`` and ``-`` only, at most 64 characters."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem = base[: -len(".csv")] if base.lower().endswith(".csv") else base
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip(".-_")
    return stem[:64].strip(".-_") or "upload"


def object_name(filename: str, *, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"{PREFIX}{sanitise_stem(filename)}-{stamp}.csv"


def check_extension(filename: str) -> None:
    base = re.split(r"[\\/]", filename or "")[-1]
    suffix = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if suffix != "csv":
        raise UnsupportedFile(
            f"{base or 'the file'!r} is not a .csv file: upload the weekly customer file as CSV "
            "(in a spreadsheet: File > Save as > CSV)"
        )


def check_content(data: bytes, limit: int) -> None:
    """Size and kind of content, before anything is parsed or stored."""
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the file is {len(data):,} bytes, over the {limit:,}-byte limit: split it into smaller files"
        )
    if not data.strip():
        raise DataValidationError([f"the file is empty ({len(data)} bytes): it needs a header and data rows"])
    head = data[:HEAD_BYTES]
    for magic, what in MAGIC:
        if head.startswith(magic):
            raise UnsupportedFile(f"the file is not a CSV but {what}")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UnsupportedFile(
            f"the file is binary, not CSV text (a NUL byte at offset {nul}): export it as a UTF-8 CSV"
        )


def parse_params(
    settings: Settings, *, dataset: str | None, **given: str | None
) -> tuple[str, dict[str, Any]]:
    """The upload's dataset and run parameters (form fields arrive as text), checked by the core's one
    parser: :class:`ParameterError` (422) names every wrong one."""
    from remarketing.parameters import parse

    problems = []
    dataset = dataset or settings.default_dataset
    if dataset not in datasets.available():
        problems.append(f"unknown dataset {dataset!r}; known: {', '.join(datasets.available())}")
    params: dict[str, Any] = {}
    try:
        params = parse(given)
    except ParameterError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ParameterError(problems)
    return dataset, params


def check(data: bytes, filename: str, dataset: str, *, limit: int) -> list[str]:
    """Everything that can be said before storing: the warnings, or an error naming every problem."""
    check_extension(filename)
    check_content(data, limit)
    spec = datasets.load_spec(dataset)
    decode(data, spec)  # the whole file must be UTF-8 (names the line and byte), not only its head
    return check_header(data[:HEAD_BYTES], spec, Purpose.SCORING)


def receipt_uri(settings: Settings, run_id: str) -> str:
    return join(settings.artifacts_root, "uploads", f"{run_id}.json")


def store(
    storage: Storage,
    settings: Settings,
    data: bytes,
    filename: str,
    dataset: str,
    params: dict[str, Any],
    warnings: list[str],
) -> Receipt:
    """Write the object create-only (a new name on the rare clash) and its receipt; return the receipt."""
    metadata = {"dataset": dataset, **{k: str(v) for k, v in params.items()}}
    for _attempt in range(5):
        name = object_name(filename)
        uri = f"gs://{settings.landing_bucket}/{name}"
        try:
            generation = storage.write_bytes(
                uri, data, content_type="text/csv", metadata=metadata, if_generation_match=0
            )
            break
        except PreconditionFailed:  # same file name in the same microsecond: take the next microsecond
            continue
    else:
        raise RemarketingError("could not find a free object name for the upload; try again")
    run_id = run_id_for(settings.landing_bucket, name, generation)
    receipt = Receipt(
        run_id=run_id,
        object=uri,
        bucket=settings.landing_bucket,
        name=name,
        generation=generation,
        size=len(data),
        sha256=sha256_bytes(data),
        dataset=dataset,
        params=params,
        filename=filename,
        uploaded_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        warnings=warnings,
    )
    storage.write_text(
        receipt_uri(settings, run_id),
        json.dumps(receipt.as_dict(), indent=2),
        content_type="application/json",
        if_generation_match=0,
    )
    return receipt


def read_receipt(storage: Storage, settings: Settings, run_id: str) -> dict[str, Any] | None:
    from remarketing.errors import StorageError

    try:
        return json.loads(storage.read_bytes(receipt_uri(settings, run_id)))
    except StorageError:
        return None
