"""The project's API (FastAPI). For now: the signed download route behind the local predictions URL.

Run: ``uvicorn --factory frontend.api.main:create_app`` (settings from ``REMARKETING_*``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import Response

from remarketing.errors import StorageError
from remarketing.settings import Settings
from remarketing.storage import Storage
from remarketing.urls import InvalidSignature, verify


def get_settings() -> Settings:
    return Settings()


SettingsDep = Annotated[Settings, Depends(get_settings)]


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Remarketing API",
        version="0.1.0",
        description="Runs, uploads and predictions of the Remarketing system.",
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/download", tags=["predictions"], summary="Download a file by its signed link (no token needed)"
    )
    def download(
        settings: SettingsDep,
        uri: Annotated[str, Query(description="gs:// address of the file")],
        generation: Annotated[int, Query()],
        expires: Annotated[int, Query(description="unix seconds")],
        signature: Annotated[str, Query()],
    ) -> Response:
        try:
            verify(settings, uri, generation, expires, signature)
        except InvalidSignature as exc:
            raise HTTPException(status_code=403, detail=str(exc)) from None
        try:
            data = Storage(settings).read_bytes(uri, generation=generation)
        except StorageError:
            raise HTTPException(
                status_code=410, detail="the file behind this link was replaced or removed"
            ) from None
        name = PurePosixPath(uri).name
        media = "text/csv" if name.endswith(".csv") else "application/octet-stream"
        return Response(
            data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    return app
