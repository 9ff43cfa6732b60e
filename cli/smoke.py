"""``remarketing smoke``: the release's smoke test, and the same against the local stack in CI.

Does what the app does, through the API only: uploads a small weekly file (``POST /uploads`` with the API
key in ``X-API-Key``; on Cloud Run also the caller's Google ID token in ``X-Serverless-Authorization``,
which :class:`frontend.app.client.ApiClient` adds for ``*.run.app`` addresses), waits for ``GET
/runs/{id}`` to say ``success`` (or fails with the run's error and step), downloads the predictions URL
and checks the scored file against the run (its columns, one row per scored customer).

The storage trigger launches the run: in the cloud Eventarc and the function, locally the event bridge
(``remarketing up``). Exit 0 when the predictions came back, 1 when anything on the way failed (the JSON
line says what), 2 for a usage error.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import click

from cli.output import emit, err, fail
from remarketing.settings import Settings

SMOKE_DATASET = "bank-marketing"
# The scored file's columns the smoke test reads (CONTRACTS.md, "Scored file").
SCORED_COLUMNS = ("customer_id", "probability", "rank", "decile", "contact", "group", "model_version")


def smoke_file(rows: int) -> tuple[str, bytes]:
    """The last ``rows`` customers of bank-full (the data shipped in data/), outcome removed, ids added:
    a weekly file as the analyst uploads it."""
    import pandas as pd

    from remarketing import examples

    found = examples.find(examples.BANK_FULL)
    if found is None:
        raise click.UsageError(
            f"no {examples.BANK_FULL} (or .gz) under {examples.data_dir()} to make the smoke test's file "
            "from: give --file, or point REMARKETING_DATA_DIR at a folder holding it"
        )
    frame = pd.read_csv(io.BytesIO(examples.read_bytes(found)), sep=";", dtype=str, keep_default_na=False)
    later = frame.tail(rows).drop(columns="y")
    later.insert(0, "customer_id", [f"SMOKE{i + 1:06d}" for i in range(len(later))])
    return "smoke-weekly.csv", later.to_csv(sep=";", index=False).encode()


def scored_rows(data: bytes) -> tuple[list[str], int]:
    """The scored file's header and its number of data rows."""
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader, [])
    return header, sum(1 for row in reader if row)


class SmokeFailed(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


def wait_for_run(client: Any, run_id: str, *, timeout: float, every: float) -> dict[str, Any]:
    """``GET /runs/{id}`` until the run ends; its view when it succeeded, :class:`SmokeFailed` with the
    run's error otherwise. The API out of reach for a moment (a 5xx, a timeout) is read again."""
    from frontend.app.client import ApiError

    deadline = time.monotonic() + timeout
    said, view = "", {}
    while True:
        try:
            view = client.run(run_id)
        except ApiError as exc:
            if 0 < exc.status < 500:  # refused (a key, an invoker binding) or unknown: no use asking again
                raise SmokeFailed(f"GET /runs/{run_id} answered {exc.status}: {exc}", run_id=run_id) from None
            err.print(f"  the API did not answer ({exc}); asking again", markup=False, highlight=False)
        else:
            running = [s["name"] for s in view.get("steps", []) if s.get("status") == "running"]
            now = f"{view['status']}{' ' + ', '.join(running) if running else ''}"
            if now != said:
                err.print(f"  {now}", markup=False, highlight=False)
                said = now
            if view["status"] == "success":
                return view
            if view["status"] == "failed":
                error = (view.get("details") or {}).get("error") or view.get("error") or {}
                raise SmokeFailed(
                    f"run {run_id} failed at step {error.get('step') or '-'}: {error.get('message')}",
                    run_id=run_id,
                    run_error=error,
                )
        if time.monotonic() > deadline:
            raise SmokeFailed(
                f"run {run_id} did not finish within {timeout:.0f} s (last status: "
                f"{view.get('status', '-')}); is the storage trigger delivering (the function's log, "
                "or `remarketing up` locally)?",
                run_id=run_id,
            )
        time.sleep(every)


def run_smoke(
    client: Any,
    name: str,
    data: bytes,
    *,
    dataset: str,
    budget: int,
    timeout: float,
    every: float,
) -> dict[str, Any]:
    from frontend.app.client import ApiError

    started = time.monotonic()
    try:
        upload = client.upload(name, data, dataset=dataset, budget=budget)
    except ApiError as exc:
        problems = "; ".join(exc.problems)
        raise SmokeFailed(
            f"POST /uploads at {client.base_url} answered {exc.status or 'nothing'}: {exc}"
            + (f" ({problems})" if problems else "")
        ) from None
    run_id = upload["run_id"]
    # One line a person (or the integration test, standing in for the trigger) can act on.
    err.print(
        f"uploaded {upload['object']}#{upload['generation']} as run {run_id}", markup=False, highlight=False
    )
    view = wait_for_run(client, run_id, timeout=timeout, every=every)
    details = view.get("details") or {}
    url = view.get("predictions URL")
    if not url:
        why = (
            view.get("predictions_url_withheld") or details.get("predictions_url_error") or "none was minted"
        )
        raise SmokeFailed(f"run {run_id} succeeded without a predictions URL: {why}", run_id=run_id)
    try:
        scored = client.download(url)
    except ApiError as exc:
        raise SmokeFailed(
            f"the predictions URL of run {run_id} did not serve the file: {exc}", run_id=run_id
        ) from None
    header, rows = scored_rows(scored)
    missing = [c for c in SCORED_COLUMNS if c not in header]
    if missing:
        raise SmokeFailed(
            f"the scored file of run {run_id} lacks the columns {', '.join(missing)}", run_id=run_id
        )
    if rows != details.get("rows_scored"):
        raise SmokeFailed(
            f"the scored file of run {run_id} has {rows} rows, the run scored {details.get('rows_scored')}",
            run_id=run_id,
        )
    return {
        "status": "success",
        "run_id": run_id,
        "object": upload["object"],
        "rows_scored": rows,
        "rows_rejected": details.get("rows_rejected"),
        "model_version": details.get("model_version"),
        "predictions_bytes": len(scored),
        "seconds": round(time.monotonic() - started, 1),
    }


@click.command()
@click.option(
    "--api-url",
    default=None,
    help="The API (the Cloud Run URL; default: REMARKETING_API_URL, else the local stack's).",
)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The weekly file to upload (default: the last --rows customers of bank-full).",
)
@click.option("--rows", type=click.IntRange(min=10, max=5000), default=200, show_default=True)
@click.option("--dataset", default=SMOKE_DATASET, show_default=True)
@click.option("--budget", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=1800,
    show_default=True,
    help="Seconds to wait for the run.",
)
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between two reads.",
)
@click.pass_obj
def smoke(
    settings: Settings,
    api_url: str | None,
    path: Path | None,
    rows: int,
    dataset: str,
    budget: int,
    timeout: float,
    every: float,
) -> None:
    """Upload a small weekly file through the API, wait for its scoring run and download its predictions
    (the release's smoke test; the API key from REMARKETING_API_KEY, or the local stack's)."""
    from frontend.app.client import ApiClient
    from remarketing import datasets
    from remarketing.secrets import api_key

    if dataset not in datasets.available():
        raise click.BadParameter(
            f"unknown dataset {dataset!r}; known: {', '.join(datasets.available())}", param_hint="--dataset"
        )
    if path is None and dataset != SMOKE_DATASET:
        raise click.UsageError(
            f"the smoke test makes its file for {SMOKE_DATASET} only: give --file for {dataset}"
        )
    name, data = (path.name, path.read_bytes()) if path else smoke_file(rows)
    # Always the API key (REMARKETING_API_KEY, or the local stack's): an operator's tool, never the app's
    # signed-in person, even where REMARKETING_IAP_AUDIENCE is set.
    client = ApiClient(base_url=api_url, key=api_key(settings))
    err.print(
        f"smoke test of {client.base_url}: {name} ({len(data):,} bytes, dataset {dataset})", markup=False
    )
    try:
        out = run_smoke(client, name, data, dataset=dataset, budget=budget, timeout=timeout, every=every)
    except SmokeFailed as exc:
        fail(str(exc), api_url=client.base_url, **exc.extra)
    err.print(
        f"run {out['run_id']} succeeded: {out['rows_scored']} customers scored, predictions downloaded "
        f"({out['predictions_bytes']:,} bytes) in {out['seconds']} s",
        markup=False,
        highlight=False,
    )
    emit({**out, "api_url": client.base_url})
