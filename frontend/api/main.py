"""The project's API (FastAPI): uploads, runs, explanations, models, and the signed download route.

Run: ``uvicorn --factory frontend.api.main:create_app`` (settings from ``REMARKETING_*``).

Every route except ``/download`` (the signature is its credential), ``/healthz``, ``/metrics`` (Prometheus
scrapes without credentials; it carries counts only) and the OpenAPI pages needs a key, as
``X-API-Key: <key>`` or ``Authorization: Bearer <key>``, or (in the cloud, from the app) the IAP assertion
of the person signed in to the app, in ``X-Remarketing-IAP-Assertion`` (``frontend.api.deps``). Errors of
the one hierarchy
(``remarketing.errors``) become HTTP statuses in :data:`STATUS` only.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from frontend.api import audit_trail as audited
from frontend.api import operations, views
from frontend.api.deps import (
    ADMIN,
    ADMIN_OR_SCHEDULER,
    ANALYST,
    VIEWER,
    LookupDep,
    ReconcileDep,
    RegistryDep,
    SettingsDep,
    StorageDep,
    UploadLimitDep,
    close_lookup,
    get_settings,
)
from frontend.api.metrics import Metrics
from remarketing import uploads
from remarketing.access import allows
from remarketing.audit import AuditLog, AuditShipper
from remarketing.errors import (
    Conflict,
    DataValidationError,
    NotFoundError,
    ParameterError,
    PreconditionFailed,
    RemarketingError,
    SpecError,
    StorageError,
    Unavailable,
)
from remarketing.personal_data import pseudonyms
from remarketing.settings import Settings
from remarketing.storage import Storage
from remarketing.urls import InvalidSignature, verify

log = logging.getLogger(__name__)

# The one place where errors become HTTP statuses (most specific class first).
STATUS: list[tuple[type[Exception], int]] = [
    (DataValidationError, 422),
    (ParameterError, 422),
    (SpecError, 422),
    (uploads.PayloadTooLarge, 413),
    (uploads.UnsupportedFile, 415),
    (NotFoundError, 404),
    (InvalidSignature, 403),
    (PreconditionFailed, 409),
    (Conflict, 409),
    (Unavailable, 503),
    (StorageError, 502),
    (RemarketingError, 400),
]
CHUNK = 1024 * 1024

__all__ = ["create_app", "get_settings"]


def status_of(exc: Exception) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


class Problems(BaseModel):
    detail: str
    problems: list[str] = []


class UploadAccepted(BaseModel):
    run_id: str
    status: Literal["queued"]
    status_url: str
    object: str
    generation: int
    size: int
    sha256: str
    dataset: str
    params: dict[str, Any]
    warnings: list[str]


class UploadChecked(BaseModel):
    ok: bool
    warnings: list[str]


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    parts, size = [], 0
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise uploads.PayloadTooLarge(
                f"the file is over the {uploads.size_text(limit)} limit: split it into smaller files"
            )
        parts.append(chunk)
    return b"".join(parts)


def _router() -> APIRouter:
    """Every route that needs a key; each declares its role (frontend.api.deps)."""
    api = APIRouter(
        responses={
            401: {"description": "no key, or a wrong or revoked one; an IAP assertion that does not verify"},
            403: {"description": "the key's or the identity's role does not allow this, or it has none"},
        }
    )
    _upload_routes(api)
    _run_routes(api)
    _customer_routes(api)
    _model_routes(api)
    _experiment_routes(api)
    _retraining_routes(api)
    return api


def _upload_routes(api: APIRouter) -> None:
    @api.get(
        "/datasets",
        dependencies=[VIEWER],
        tags=["uploads"],
        summary="The datasets, each file's rules and the upload limits",
    )
    def get_datasets(settings: SettingsDep) -> dict[str, Any]:
        """What the Upload page states where the user acts: the separator and columns of each dataset, what
        its target means, the size limit and the budget's rules."""
        return uploads.rules(settings)

    @api.post(
        "/uploads",
        dependencies=[ANALYST],
        tags=["uploads"],
        status_code=202,
        summary="Upload this week's customer file to score",
        response_model=UploadAccepted | UploadChecked,
        responses={
            413: {"model": Problems, "description": "over the size limit"},
            415: {"model": Problems, "description": "not a CSV (extension or content)"},
            422: {
                "model": Problems,
                "description": "the header does not fit the spec, or a parameter is wrong",
            },
        },
    )
    async def upload(
        request: Request,
        settings: SettingsDep,
        storage: StorageDep,
        registry: RegistryDep,
        limit: UploadLimitDep,
        file: Annotated[UploadFile, File(description="the weekly customer file (CSV, UTF-8)")],
        dataset: Annotated[str | None, Form(description="dataset spec; default from settings")] = None,
        budget: Annotated[str | None, Form(description="how many customers to call, at most")] = None,
        budget_share: Annotated[str | None, Form(description="or the share of customers to call")] = None,
        call_cost: Annotated[
            str | None, Form(description="what one call costs (with conversion_value)")
        ] = None,
        conversion_value: Annotated[
            str | None,
            Form(description="what one conversion is worth: only customers worth a call are called"),
        ] = None,
        holdout_share: Annotated[str | None, Form(description="share of the list held out (0-0.5)")] = None,
        explore_share: Annotated[str | None, Form(description="share of the others called at random")] = None,
        model_version: Annotated[str | None, Form(description="a model version; default: champion")] = None,
        dry_run: Annotated[bool, Query(description="check only: nothing is stored, answers 200")] = False,
    ) -> Any:
        """Checks the size, the content (text, UTF-8, CSV) and the header against the dataset spec at once
        (422 listing every problem), then stores the file create-only as
        ``weekly/<name>-<UTC time>.csv`` in the landing bucket with its parameters as object metadata.
        The storage trigger launches the scoring run; the answer is 202 with the run id and its status URL.
        """
        from starlette.concurrency import run_in_threadpool

        metrics: Metrics = request.app.state.metrics
        try:
            data = await _read_limited(file, limit)
            filename = file.filename or "upload.csv"
            ds, params = uploads.parse_params(
                settings,
                dataset=dataset,
                budget=budget,
                budget_share=budget_share,
                call_cost=call_cost,
                conversion_value=conversion_value,
                holdout_share=holdout_share,
                explore_share=explore_share,
                model_version=model_version,
            )
            warnings = uploads.check(data, filename, ds, limit=limit)
            if "model_version" in params:  # a version that does not exist would only fail the run later
                name = settings.model_name(ds)  # (the registry is a blocking client: off the event loop)
                await run_in_threadpool(uploads.check_version, registry, name, params["model_version"])
        except RemarketingError as exc:
            if not dry_run:  # a check before the upload is not an upload
                metrics.rejected("weekly", exc)
            raise
        if dry_run:
            return JSONResponse({"ok": True, "warnings": warnings}, status_code=200)
        try:
            receipt = await run_in_threadpool(
                uploads.store, storage, settings, data, filename, ds, params, warnings
            )
        except RemarketingError as exc:  # storage down or refusing
            metrics.rejected("weekly", exc)
            raise
        metrics.accepted("weekly", len(data))
        status_url = str(request.url_for("get_run", run_id=receipt.run_id))
        request.state.audit = {"run_id": receipt.run_id, "object": receipt.object, "sha256": receipt.sha256}
        log.info("upload %s stored as %s (run %s)", filename, receipt.object, receipt.run_id)
        return JSONResponse(
            {
                "run_id": receipt.run_id,
                "status": "queued",
                "status_url": status_url,
                "object": receipt.object,
                "generation": receipt.generation,
                "size": receipt.size,
                "sha256": receipt.sha256,
                "dataset": receipt.dataset,
                "params": receipt.params,
                "warnings": receipt.warnings,
            },
            status_code=202,
            headers={"Location": status_url},
        )


def _run_routes(api: APIRouter) -> None:
    @api.post(
        "/runs/{run_id}/outcomes",
        dependencies=[ANALYST],
        tags=["runs"],
        status_code=202,
        summary="The outcomes of a scoring run's campaign: measured by the monitoring pipeline",
        responses={404: {"model": Problems}, 413: {"model": Problems}, 422: {"model": Problems}},
    )
    async def post_outcomes(
        run_id: str,
        request: Request,
        settings: SettingsDep,
        storage: StorageDep,
        limit: UploadLimitDep,
        file: Annotated[UploadFile, File(description="the id column and the target (e.g. customer_id;y)")],
    ) -> Any:
        """Stores the file create-only under ``outcomes/`` with the scoring run in its metadata; the storage
        trigger launches the monitoring run, whose id the answer gives (its status at ``/runs/{id}``)."""
        from starlette.concurrency import run_in_threadpool

        from remarketing.runs import RunStore, run_id_for

        metrics: Metrics = request.app.state.metrics
        try:
            data = await _read_limited(file, limit)
            filename = file.filename or "outcomes.csv"
            uploads.check_extension(filename)
            uploads.check_content(data, limit)
            scoring = await run_in_threadpool(RunStore(storage, settings.artifacts_root).get, run_id)
            if scoring.kind != "scoring":
                raise NotFoundError(f"run {run_id} is a {scoring.kind} run: outcomes belong to a scoring run")
            if scoring.status != "success":
                raise Conflict(
                    f"scoring run {run_id} is {scoring.status}: it published no list, so no outcomes can "
                    "belong to it (nothing was stored)"
                )
            name, generation = await run_in_threadpool(
                uploads.put,
                storage,
                settings,
                data,
                filename,
                dataset=scoring.dataset,
                params={"scoring_run": run_id},
                prefix="outcomes/",
            )
        except RemarketingError as exc:
            metrics.rejected("outcomes", exc)
            raise
        metrics.accepted("outcomes", len(data))
        monitoring = run_id_for(settings.landing_bucket, name, generation)
        request.state.audit = {
            "monitoring_run": monitoring,
            "object": f"gs://{settings.landing_bucket}/{name}",
        }
        status_url = str(request.url_for("get_run", run_id=monitoring))
        return JSONResponse(
            {
                "run_id": monitoring,
                "status": "queued",
                "status_url": status_url,
                "object": f"gs://{settings.landing_bucket}/{name}",
                "generation": generation,
                "scoring_run": run_id,
            },
            status_code=202,
            headers={"Location": status_url},
        )

    @api.get("/runs", dependencies=[VIEWER], tags=["runs"], summary="Training and scoring runs, newest first")
    def list_runs(
        settings: SettingsDep,
        storage: StorageDep,
        kind: Annotated[Literal["training", "scoring", "monitoring"] | None, Query()] = None,
        status: Annotated[Literal["queued", "running", "success", "failed"] | None, Query()] = None,
        dataset: Annotated[str | None, Query(description="only this dataset's runs")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        runs = views.list_runs(settings, storage, kind=kind, status=status, dataset=dataset, limit=limit)
        return {"runs": runs, "count": len(runs)}

    @api.get(
        "/runs/{run_id}",
        dependencies=[VIEWER],
        tags=["runs"],
        name="get_run",
        summary="One run: status, steps, details, and the predictions URL once it succeeded",
        responses={404: {"model": Problems}},
    )
    def get_run(
        run_id: str, request: Request, settings: SettingsDep, storage: StorageDep, reconcile: ReconcileDep
    ) -> Any:
        """``queued`` while the upload has not been picked up; a finished scoring run answers
        ``{"status": "success", "predictions URL": ...}`` (minted now, with ``predictions_url_expires``;
        for an analyst or admin only: the link opens the contact list) and ``details``: counts, model
        version, expected conversion rate and base rate, the error."""
        mint = allows(request.state.principal.role, "analyst")
        view = views.get_run(settings, storage, run_id, reconcile=reconcile, mint=mint)
        if view.get("predictions URL"):  # the link opens the contact list: who was given it is audited
            request.state.audit_action = "predictions-link"
        return view

    @api.get(
        "/runs/{run_id}/performance",
        dependencies=[VIEWER],
        tags=["runs"],
        summary="A monitoring run's week: realized figures, the promise, calibration by decile, drift",
        responses={404: {"model": Problems}},
    )
    def get_performance(run_id: str, settings: SettingsDep, storage: StorageDep) -> dict[str, Any]:
        return views.performance(settings, storage, run_id)

    @api.get(
        "/runs/{run_id}/predictions",
        dependencies=[ANALYST],
        tags=["runs"],
        summary="The top scored customers of a run",
    )
    def get_predictions(
        run_id: str,
        settings: SettingsDep,
        storage: StorageDep,
        limit: Annotated[int, Query(ge=1, le=10000)] = 20,
        contacted_only: bool = False,
    ) -> dict[str, Any]:
        return views.predictions(settings, storage, run_id, limit=limit, contacted_only=contacted_only)

    @api.get(
        "/runs/{run_id}/explanations",
        dependencies=[ANALYST],
        tags=["explanations"],
        summary="One scored customer's probability, reason codes and every SHAP contribution",
        responses={404: {"model": Problems}},
    )
    def get_explanation(
        run_id: str,
        settings: SettingsDep,
        storage: StorageDep,
        customer_id: Annotated[str, Query(min_length=1, max_length=200)],
    ) -> dict[str, Any]:
        return views.explanation(settings, storage, run_id, customer_id)


def _customer_routes(api: APIRouter) -> None:
    @api.get(
        "/customers/{customer_id}",
        dependencies=[ANALYST],
        tags=["customers"],
        summary="One customer: the latest score, reasons, every contribution, and the scores before",
        responses={404: {"model": Problems}, 422: {"model": Problems}},
    )
    def get_customer(
        customer_id: Annotated[str, PathParam(min_length=1, max_length=200)],
        settings: SettingsDep,
        storage: StorageDep,
        lookup: LookupDep,
        dataset: Annotated[str | None, Query(description="default from settings")] = None,
        history: Annotated[int, Query(ge=0, le=520, description="earlier scores to list")] = 12,
    ) -> dict[str, Any]:
        """From the lookup table every scoring run's publish step writes (``remarketing.lookup_table``);
        404 for a customer no kept run scored; 503 while the table cannot be reached."""
        chosen = _dataset(settings, dataset)
        return views.customer(settings, storage, lookup, chosen, customer_id, history=history)


def _model_routes(api: APIRouter) -> None:
    @api.get(
        "/models",
        dependencies=[VIEWER],
        tags=["models"],
        summary="Model versions, aliases, backtest metrics (mean, worst, each period) and the rows fitted on",
    )
    def get_models(
        settings: SettingsDep,
        registry: RegistryDep,
        storage: StorageDep,
        dataset: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        return views.models(settings, registry, storage, dataset)

    @api.get(
        "/models/{version}/plots/{name}",
        dependencies=[VIEWER],
        tags=["models"],
        summary="A version's evaluation plot (roc, pr, lift, calibration, shap_summary, shap_importance)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 404: {"model": Problems}},
    )
    def get_plot(
        version: str, name: str, settings: SettingsDep, registry: RegistryDep, dataset: str | None = None
    ) -> Response:
        data = views.plot(settings, registry, dataset or settings.default_dataset, version, name)
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @api.get(
        "/models/{version}/shap",
        dependencies=[VIEWER],
        tags=["models"],
        summary="A version's global SHAP importance",
    )
    def get_shap(
        version: str, settings: SettingsDep, registry: RegistryDep, dataset: str | None = None
    ) -> dict[str, Any]:
        return views.shap_importance(settings, registry, dataset or settings.default_dataset, version)


class ExperimentStart(BaseModel):
    challenger: str | int = Field(description="the model version to test against the champion")
    dataset: str | None = None
    share: float | None = Field(default=None, description="of the customers in its arm, in (0, 1)")
    significance: float | None = None
    power: float | None = None
    min_lift: float | None = None


def _experiment_routes(api: APIRouter) -> None:
    from remarketing import experiments

    @api.get(
        "/experiments",
        dependencies=[VIEWER],
        tags=["experiments"],
        summary="The running experiment (arms, sample so far, the latest test), earlier ones, and decisions",
    )
    def get_experiments(
        settings: SettingsDep, storage: StorageDep, dataset: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        return experiments.status(storage, settings.artifacts_root, _dataset(settings, dataset))

    @api.post(
        "/experiments",
        dependencies=[ADMIN],
        tags=["experiments"],
        status_code=201,
        summary="Start testing a challenger against the champion on each week's customers",
        responses={409: {"model": Problems}, 422: {"model": Problems}},
    )
    def start_experiment(
        body: ExperimentStart,
        request: Request,
        settings: SettingsDep,
        storage: StorageDep,
        registry: RegistryDep,
    ) -> dict[str, Any]:
        started = experiments.start(
            storage,
            settings,
            registry,
            dataset=_dataset(settings, body.dataset),
            challenger=str(body.challenger),
            share=body.share,
            significance=body.significance,
            power=body.power,
            min_lift=body.min_lift,
            by=f"api: {request.state.principal.name}",
        )
        return started.as_dict()

    @api.post(
        "/experiments/stop",
        dependencies=[ADMIN],
        tags=["experiments"],
        summary="End the running experiment now: the champion stays",
        responses={409: {"model": Problems}},
    )
    def stop_experiment(
        request: Request,
        settings: SettingsDep,
        storage: StorageDep,
        dataset: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        by = f"api: {request.state.principal.name}"
        return experiments.stop(
            storage, settings.artifacts_root, _dataset(settings, dataset), by=by
        ).as_dict()


def _retraining_routes(api: APIRouter) -> None:
    @api.post(
        "/retraining",
        dependencies=[ADMIN_OR_SCHEDULER],
        tags=["retraining"],
        summary="The schedule's turn (Cloud Scheduler calls it): retrain when the history has grown",
    )
    def scheduled_retraining(
        settings: SettingsDep,
        storage: StorageDep,
        registry: RegistryDep,
        dataset: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """Puts the latest history into ``input/`` (the storage trigger launches the training run, whose id
        the answer gives) when no model was trained on its latest version yet; otherwise says why not."""
        from remarketing.datasets import load_spec
        from remarketing.retraining import on_schedule

        chosen = _dataset(settings, dataset)
        by = f"the schedule ({settings.retrain_schedule or 'Cloud Scheduler'})"
        return on_schedule(storage, settings, load_spec(chosen), chosen, registry, by=by)


def _dataset(settings: Settings, dataset: str | None) -> str:
    from remarketing import datasets

    chosen = dataset or settings.default_dataset
    if chosen not in datasets.available():
        raise SpecError(f"unknown dataset {chosen!r}; known: {', '.join(datasets.available())}")
    return chosen


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.audit.settle(timeout=10)  # a clean stop writes the queued audit records first
        close_lookup(app)

    app = FastAPI(
        lifespan=lifespan,
        title="Remarketing API",
        version=importlib.metadata.version("remarketing"),
        description=(
            "Uploads, runs, explanations, models and predictions of the Remarketing system. "
            "Send the API key as `X-API-Key` or `Authorization: Bearer` (the app in the cloud sends the "
            "IAP assertion of the person signed in to it instead); `/download` needs none "
            "(its signature is the credential)."
        ),
    )
    built = settings or Settings()  # built once, at the edge
    app.dependency_overrides[get_settings] = lambda: built
    app.state.metrics = Metrics()
    app.state.audit = AuditShipper(AuditLog(Storage(built), built.artifacts_root))
    app.state.pseudonyms = pseudonyms(built)
    guard = built.max_upload_bytes + CHUNK

    @app.exception_handler(RemarketingError)
    async def remarketing_error(request: Request, exc: RemarketingError) -> JSONResponse:
        code = status_of(exc)
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, DataValidationError):
            body = {"detail": "the file cannot be used", "problems": exc.problems}
        elif isinstance(exc, ParameterError):
            body = {"detail": "the parameters are invalid", "problems": exc.problems}
        if code >= 500:  # the route's template: a path may hold a customer's id
            route = getattr(request.scope.get("route"), "path", "unmatched")
            log.warning("%s %s: %s", request.method, route, exc)
        return JSONResponse(body, status_code=code)

    @app.middleware("http")
    async def audit_trail(request: Request, call_next: Any) -> Response:
        """The audited request's record, queued for the audit trail (frontend.api.audit_trail)."""
        shipper: AuditShipper = app.state.audit
        trouble = shipper.trouble()
        if trouble and request.url.path not in audited.PUBLIC:  # before the handler: nothing is done
            return JSONResponse(
                {"detail": f"the audit trail {trouble}, so the API answers nothing that needs a key"},
                status_code=503,
            )
        response = await call_next(request)
        action = audited.action_of(request, response.status_code)
        if action is not None:
            audited.append(shipper, app.state.pseudonyms, request, action, response.status_code)
        return response

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        limit = guard
        if request.url.path == "/uploads" and length and length.isdigit() and int(length) > limit:
            app.state.metrics.rejected("weekly", uploads.PayloadTooLarge("over the limit"))
            app.state.metrics.observe(request.method, "/uploads", 413, 0.0)
            return JSONResponse(
                {"detail": f"the upload is over the {uploads.size_text(built.max_upload_bytes)} limit"},
                status_code=413,
            )
        started = time.perf_counter()
        status = 500  # a handler that raises is answered 500 by the server: counted as such
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            app.state.metrics.observe(request.method, path, status, time.perf_counter() - started)
        return response

    @app.get("/healthz", tags=["ops"], summary="Liveness (no credentials)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (no credentials)", response_class=Response)
    def metrics() -> Response:
        data, content_type = app.state.metrics.render()
        return Response(data, media_type=content_type)

    @app.get(
        "/download", tags=["predictions"], summary="Download a file by its signed link (no token needed)"
    )
    def download(
        request: Request,
        settings: SettingsDep,
        uri: Annotated[str | None, Query(description="gs:// address of the file")] = None,
        generation: Annotated[str | None, Query()] = None,
        expires: Annotated[str | None, Query(description="unix seconds")] = None,
        signature: Annotated[str | None, Query()] = None,
    ) -> Response:
        """A link missing a part (copied only in part) is answered in words, not as a validation error."""
        counted = request.app.state.metrics.downloads
        given = {"uri": uri, "generation": generation, "expires": expires, "signature": signature}
        missing = [k for k, v in given.items() if not v]
        if missing or not (generation or "").isdigit() or not (expires or "").isdigit():
            counted.labels("incomplete").inc()
            raise HTTPException(
                status_code=400,
                detail="this link is incomplete (copied only in part?): copy the whole predictions URL, "
                f"it ends with &signature=...; {'missing: ' + ', '.join(missing) if missing else 'garbled'}",
            )
        try:
            verify(settings, uri, int(generation), int(expires), signature)
        except InvalidSignature as exc:
            counted.labels("refused").inc()
            raise HTTPException(status_code=403, detail=str(exc)) from None
        try:
            data = Storage(settings).read_bytes(uri, generation=int(generation))
        except StorageError:
            counted.labels("gone").inc()
            raise HTTPException(
                status_code=410, detail="the file behind this link was replaced or removed"
            ) from None
        counted.labels("served").inc()
        name = PurePosixPath(uri).name
        media = "text/csv" if name.endswith(".csv") else "application/octet-stream"
        return Response(
            data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    app.include_router(_router())
    app.include_router(operations.router)
    return app


def __getattr__(name: str) -> Any:
    """``frontend.api.main:app`` (the image's command) builds the app on first access, not at import."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
