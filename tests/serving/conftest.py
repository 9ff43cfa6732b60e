"""Fixtures for the serving tests: small real bundles (one per family, built once per session from a
time-ordered sample of bank-full.csv), customer rows as a request carries them, the KServe FastAPI app
in-process, and a storage emulator on a free loopback port holding the logreg bundle at its gs:// address."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from remarketing import bundle
from remarketing.datasets import load_spec
from remarketing.models import fit_family, platt
from remarketing.validation import Purpose, validate
from tracking.log import MlflowTracker

SPEC = load_spec("bank-marketing")
MODEL = "remarketing-bank-marketing"


@pytest.fixture(scope="session")
def splits(bank_sample: bytes):
    """Time-ordered slices of the sample: fit on the past, calibrate and serve later rows."""
    frame = validate(bank_sample, SPEC, Purpose.TRAINING).frame
    return SimpleNamespace(train=frame.iloc[:2700], validation=frame.iloc[2700:3600], test=frame.iloc[3600:])


def build_bundle(family: str, splits, directory: Path, *, flavour: bool = False) -> Path:
    model = fit_family(family, SPEC, splits.train, seed=1, background_rows=50)
    model.calibration = platt(model.margin(splits.validation), splits.validation["y"].to_numpy())
    bundle.save(model, directory, {"note": "tests/serving"})
    if flavour:
        MlflowTracker("").add_model_flavour(directory)
    return directory


@pytest.fixture(scope="session")
def logreg_bundle(splits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle("logreg", splits, tmp_path_factory.mktemp("logreg") / "bundle", flavour=True)


@pytest.fixture(scope="session")
def test_frame(splits) -> pd.DataFrame:
    """Later customers than the model saw, with the file's other columns (ids, target) left in."""
    return splits.test.head(40).reset_index(drop=True)


@pytest.fixture(scope="session")
def records(test_frame: pd.DataFrame) -> list[dict]:
    """The rows as a JSON request carries them; extra keys (customer_id, y) must be ignored."""
    return json.loads(test_frame.to_json(orient="records"))


def v2_inputs(records: list[dict], columns: list[str] | None = None) -> list[dict]:
    columns = columns or SPEC.feature_names
    numeric = set(SPEC.numeric)
    return [
        {
            "name": c,
            "shape": [len(records)],
            "datatype": "INT64" if c in numeric else "BYTES",
            "data": [r[c] for r in records],
        }
        for c in columns
    ]


@pytest.fixture(scope="session")
def kserve_app(logreg_bundle: Path):
    """KServe's own FastAPI app with our model registered, as ``python -m serving`` wires it (no socket)."""
    from fastapi.testclient import TestClient
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    from serving.__main__ import BoundModelServer
    from serving.model import RemarketingModel

    model = RemarketingModel(None, str(logreg_bundle), version="1")
    model.load()
    server = BoundModelServer(enable_grpc=False)  # with its columnar V2 data plane
    server.register_model(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, 0)
    rest.create_application()  # adds the routes and exception handlers to kserve's module-level app
    with TestClient(app, raise_server_exceptions=False) as client:
        client.server = server  # so a test can register more models
        client.model = model
        yield client


@pytest.fixture(scope="session")
def emulator_settings(tmp_path_factory: pytest.TempPathFactory, logreg_bundle: Path):
    """A state folder and the storage emulator only (no MLflow: serving does not need it), with the
    logreg bundle uploaded to gs://<artifacts>/model-output/remarketing-bank-marketing/1/."""
    from local_stack import services
    from remarketing.storage import Storage

    settings = services.private_settings(tmp_path_factory.mktemp("state"))
    services.ensure_stack(settings, ("storage-emulator",))
    try:
        Storage(settings).upload_dir(logreg_bundle, f"{settings.artifacts_root}/model-output/{MODEL}/1")
        yield settings
    finally:
        services.down(settings)
