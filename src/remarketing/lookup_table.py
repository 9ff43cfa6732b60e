"""The customer lookup table's port: a scoring run's writer (the publish step) and a reader (the API's
``GET /customers/{id}``), chosen once from the settings.

- ``REMARKETING_LOOKUP_DB_HOST`` set: PostgreSQL (:mod:`remarketing.customer_lookup_postgres`; Cloud SQL in
  the cloud, Terraform's ``modules/lookup_database``), as ``REMARKETING_LOOKUP_DB_USER`` with
  ``REMARKETING_LOOKUP_DB_PASSWORD``;
- otherwise, locally: the SQLite file in the state folder (:mod:`remarketing.customer_lookup`);
- otherwise (the cloud with no database configured): unavailable, said as such. A file in a task's or a
  service's own folder would be a table no one else reads: every customer would be "not found".

Both keep the same tables and rows and behave alike: one transaction per run (a reader sees a run whole
or not at all), the newest ``REMARKETING_LOOKUP_RUNS_KEPT`` runs per dataset, a run written again replaces
its rows, values only as bound parameters, the same return shapes and types, the same errors
(:class:`DataValidationError` for rows that cannot be stored, :class:`StorageError` when another run
holds the table too long, :class:`Unavailable` when the store cannot be reached).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import pandas as pd

from remarketing.errors import Unavailable


class RunWriter(Protocol):
    """One run's rows, committed when its ``with`` block ends without an error (rolled back otherwise)."""

    def __enter__(self) -> RunWriter: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def add(self, chunk: pd.DataFrame) -> None: ...


class Lookup(Protocol):
    """Reads the table; shareable between threads; nothing scored yet reads as None, [] or 0."""

    def latest(self, dataset: str, customer_id: str) -> dict[str, Any] | None: ...

    def of_run(self, dataset: str, customer_id: str, run_id: str) -> dict[str, Any] | None: ...

    def history(self, dataset: str, customer_id: str, limit: int = 52) -> list[dict[str, Any]]: ...

    def customers(self, dataset: str) -> int: ...

    def close(self) -> None: ...


class LookupSettings(Protocol):
    """What the choice reads (Settings, or a step's view of them that declares these)."""

    mode: Literal["local", "gcp"]
    lookup_path: Path
    lookup_runs_kept: int
    lookup_db_host: str
    lookup_db_port: int
    lookup_db_name: str
    lookup_db_user: str
    lookup_db_password: str
    lookup_db_sslmode: str


def run_writer(
    settings: LookupSettings, *, dataset: str, run_id: str, scored_at: str, model_version: str
) -> RunWriter:
    """The writer of one scoring run's rows (``scored_at``: ISO 8601)."""
    if settings.lookup_db_host:
        from remarketing.customer_lookup_postgres import PostgresLookupWriter

        return PostgresLookupWriter(
            _database(settings),
            dataset=dataset,
            run_id=run_id,
            scored_at=scored_at,
            model_version=model_version,
            keep_runs=settings.lookup_runs_kept,
        )
    _local_only(settings)
    from remarketing.customer_lookup import LookupWriter

    return LookupWriter(
        settings.lookup_path,
        dataset=dataset,
        run_id=run_id,
        scored_at=scored_at,
        model_version=model_version,
        keep_runs=settings.lookup_runs_kept,
    )


def customer_lookup(settings: LookupSettings) -> Lookup:
    """A reader of the table: kept open and shared by whoever reads often (the API keeps one)."""
    if settings.lookup_db_host:
        from remarketing.customer_lookup_postgres import PostgresCustomerLookup

        return PostgresCustomerLookup(_database(settings))
    _local_only(settings)
    from remarketing.customer_lookup import CustomerLookup

    return CustomerLookup(settings.lookup_path)


def _database(settings: LookupSettings) -> Any:
    from remarketing.customer_lookup_postgres import Database

    return Database(
        host=settings.lookup_db_host,
        port=settings.lookup_db_port,
        dbname=settings.lookup_db_name,
        user=settings.lookup_db_user,
        password=settings.lookup_db_password,
        sslmode=settings.lookup_db_sslmode,
    )


def _local_only(settings: LookupSettings) -> None:
    if settings.mode != "local":
        raise Unavailable(
            "the customer lookup table",
            "Cloud SQL",
            "set REMARKETING_LOOKUP_DB_HOST and the other REMARKETING_LOOKUP_DB_* settings (Terraform "
            "gives them to the API and the pipelines: docs/deploy.md)",
            reason="no database is configured",
        )
