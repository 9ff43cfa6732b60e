"""Uploads: check what arrives, store it in the landing bucket create-only, and (for the API) keep a receipt.

Plain functions: the API's route and the CLI only translate to these and back.

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
    base = given_name(filename, default="")
    stem = base[: -len(".csv")] if base.lower().endswith(".csv") else base
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip(".-_")
    return stem[:64].strip(".-_") or "upload"


def object_name(filename: str, *, prefix: str = PREFIX, now: datetime | None = None) -> str:
    """``weekly/customers-20261121T083012123456.csv``: unique per upload, readable, time-sortable."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}{sanitise_stem(filename)}-{stamp}.csv"


STAMP = re.compile(r"-\d{8}T\d{12}(?=\.csv$)")


def given_name(filename: str, *, default: str = "upload.csv") -> str:
    """The name a browser or a path gave, without its folders (``/`` or ``\\``): shown to people, never
    used as a path."""
    return re.split(r"[\\/]", filename or "")[-1][:200] or default


def shown_name(source: Any) -> str:
    """The file name a person gave (kept in the upload's metadata), else the object's name without its
    stamp: ``customers.csv`` for ``gs://landing/weekly/customers-20261121T083012123456.csv``."""
    if getattr(source, "filename", None):
        return str(source.filename)
    return STAMP.sub("", str(source.uri).rsplit("/", 1)[-1])


def put(
    storage: Storage,
    settings: Settings,
    data: bytes,
    filename: str,
    *,
    dataset: str,
    params: dict[str, Any],
    prefix: str = PREFIX,
) -> tuple[str, int]:
    """Store an upload in the landing bucket as its own object, create-only (never over an earlier one;
    a new name on the rare clash), with its dataset and parameters as object metadata: its name and
    generation. The CLI and the API both upload through this."""
    metadata = {
        "dataset": dataset,
        "filename": given_name(filename),
        **{k: str(v) for k, v in params.items() if v is not None},
    }
    for _attempt in range(5):
        name = object_name(filename, prefix=prefix)
        try:
            generation = storage.write_bytes(
                f"gs://{settings.landing_bucket}/{name}",
                data,
                content_type="text/csv",
                metadata=metadata,
                if_generation_match=0,
            )
            return name, generation
        except PreconditionFailed:  # same file name in the same microsecond: take the next microsecond
            continue
    raise RemarketingError("could not find a free object name for the upload; try again")


def size_text(limit: int) -> str:
    """The upload limit as every message states it: ``50 MB (52,428,800 bytes)`` (MB of 2**20 bytes, as
    Streamlit's upload widget counts them)."""
    return f"{limit / 2**20:,.1f}".removesuffix(".0") + f" MB ({limit:,} bytes)"


def widget_mb(limit: int) -> int:
    """The app's upload widget limit in whole MB (of 2**20 bytes, as Streamlit counts): never below the
    API's own limit, so the API's message is the one a too-large file gets."""
    return max(1, -(-limit // 2**20))


def rules(settings: Settings) -> dict[str, Any]:
    """Each dataset's file rules and the run parameters' rules, stated once for the API, the app and the
    README: what a user sees where they act."""
    from remarketing.parameters import SHARE_MAX

    specs = [datasets.load_spec(name) for name in datasets.available()]
    return {
        "max_upload_bytes": settings.max_upload_bytes,
        "max_upload": size_text(settings.max_upload_bytes),
        "default_dataset": settings.default_dataset,
        "datasets": [
            {
                "name": spec.name,
                "description": spec.description,
                "separator": spec.separator,
                "encoding": spec.encoding,
                "id_column": spec.id_column,
                "target": spec.target.column,
                "meaning": spec.target.meaning,
                "features": spec.feature_names,
                "file_rule": file_rule(spec),
            }
            for spec in specs
        ],
        "budget_rule": "either a number of customers to call (at least 1) or a share of the file (over 0, "
        f"at most 1); holdout and random-call shares between 0 and {SHARE_MAX}",
    }


def file_rule(spec: datasets.DatasetSpec) -> str:
    """``CSV, semicolon (;)-separated, UTF-8, with the columns age, job, ... (13 in all)``."""
    shown = ", ".join(spec.feature_names[:4])
    return (
        f"CSV, {separator_text(spec.separator)}-separated, {spec.encoding.upper()}, with the columns "
        f"{shown}, ... ({len(spec.feature_names)} in all)"
    )


def separator_text(separator: str) -> str:
    return {"\t": "tab", ",": "comma (,)", ";": "semicolon (;)"}.get(separator, repr(separator))


def check_extension(filename: str) -> None:
    base = given_name(filename, default="")
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
            f"the file is {len(data):,} bytes, over the {size_text(limit)} limit: split it into smaller files"
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
    try:
        return check_header(data[:HEAD_BYTES], spec, Purpose.SCORING)
    except DataValidationError as exc:
        fits = _fitting_datasets(data[:HEAD_BYTES], dataset)
        if not fits:
            raise
        hint = f"this header fits the {' and '.join(fits)} dataset: choose it instead of {dataset}"
        raise DataValidationError([hint, *exc.problems]) from None


def _fitting_datasets(head: bytes, chosen: str) -> list[str]:
    """The other datasets whose spec this header fits (a file uploaded under the wrong dataset)."""
    fits = []
    for name in datasets.available():
        if name == chosen:
            continue
        try:
            check_header(head, datasets.load_spec(name), Purpose.SCORING)
        except DataValidationError:
            continue
        fits.append(name)
    return fits


def check_version(registry: Any, name: str, version: str) -> None:
    """A version asked for must exist now (:class:`ParameterError` listing the versions there are)."""
    from remarketing.errors import ModelNotFoundError

    try:
        registry.get(name, version)
    except ModelNotFoundError:
        known = [v.version for v in registry.versions(name)]
        there = f"its versions are {', '.join(sorted(known, key=int))}" if known else "it has no versions yet"
        raise ParameterError([f"model_version {version}: {name} has no version {version}; {there}"]) from None


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
    """Write the object (:func:`put`) and its receipt; return the receipt. Once the object is there its
    trigger launches the run, so nothing after it may turn the upload into an error: a receipt that
    cannot be written is a warning (GET /runs/{id} then answers 404 until the run record exists)."""
    name, generation = put(storage, settings, data, filename, dataset=dataset, params=params)
    uri = f"gs://{settings.landing_bucket}/{name}"
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
    try:
        storage.write_text(
            receipt_uri(settings, run_id),
            json.dumps(receipt.as_dict(), indent=2),
            content_type="application/json",
            if_generation_match=0,
        )
    except Exception as exc:  # noqa: BLE001 - whatever stops it (storage down, a missing role), the upload stands
        receipt.warnings.append(
            f"the file is stored and its run starts, but its receipt was not written "
            f"({type(exc).__name__}: {exc}): GET /runs/{run_id} answers 404 until the run starts"
        )
    return receipt


def read_receipt(storage: Storage, settings: Settings, run_id: str) -> dict[str, Any] | None:
    from remarketing.errors import StorageError

    try:
        return json.loads(storage.read_bytes(receipt_uri(settings, run_id)))
    except StorageError:
        return None
