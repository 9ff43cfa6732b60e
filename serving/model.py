"""The KServe predictor: a ``kserve.Model`` that serves one model bundle (predict + explain).

It is a thin adapter: requests are translated into customer rows with
:meth:`CampaignModel.rows_from_records` (which names the first bad row and column), answered by the core
(``predict_proba``, ``explain`` and :func:`remarketing.reasons.explain_rows`) and translated back.

- V1 ``POST /v1/models/<name>:predict``  ``{"instances": [{column: value, ...}, ...]}`` ->
  ``{"predictions": [p, ...]}``
- V1 ``POST /v1/models/<name>:explain``  same body -> ``{"explanations": [{probability, base_value,
  contributions, reasons}, ...]}`` (one vectorised explain call for the whole body)
- V2 ``POST /v2/models/<name>/infer``    one input per column (shape ``[n]``) -> one FP64 output
  ``probability``

A request that cannot be scored raises :class:`kserve.errors.InvalidInput` (HTTP 400) naming the row and
the column; it is never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput

from remarketing import bundle
from remarketing.errors import InvalidRow
from remarketing.models import CampaignModel
from remarketing.reasons import explain_rows
from serving.metrics import ModelMetrics

logger = logging.getLogger(__name__)

OUTPUT = "probability"
V1_HINT = 'expected a JSON object {"instances": [{"age": 58, "job": "management", ...}, ...]}'


def bundle_path(model_uri: str, workdir: Path) -> Path:
    """A local directory holding the bundle at ``model_uri`` (``gs://...`` is downloaded into ``workdir``
    through :class:`remarketing.storage.Storage`; a local path, such as KServe's ``/mnt/models``, is used
    where it is)."""
    if model_uri.startswith("file://"):
        model_uri = model_uri[len("file://") :]
    if not model_uri.startswith("gs://"):
        path = Path(model_uri)
        if not (path / "metadata.json").is_file():
            raise FileNotFoundError(f"{model_uri} is not a model bundle (no metadata.json)")
        return path
    # Settings only when something has to be downloaded: in the cluster the storage initializer has
    # already put the bundle in /mnt/models, and no REMARKETING_* variable is needed there.
    from remarketing.settings import Settings
    from remarketing.storage import Storage

    return Storage(Settings()).download_dir(model_uri.rstrip("/"), workdir / "bundle")


class RemarketingModel(Model):
    """One model version. ``name`` is the KServe model name in the URL paths; when it is not given it is
    ``remarketing-<dataset>`` from the bundle's metadata (known after :meth:`load`)."""

    def __init__(self, name: str | None, model_uri: str, *, version: str | None = None) -> None:
        super().__init__(name or "")
        self.model_uri = model_uri
        self.version = version
        self.model: CampaignModel | None = None
        self._workdir: Path | None = None
        self.ready = False
        self.metrics: ModelMetrics | None = None  # after load (the name may come from the bundle)
        self.count_metrics = True

    # --- lifecycle ---------------------------------------------------------------------------------
    def load(self) -> bool:
        if self.model_uri.startswith("gs://"):
            self._workdir = Path(tempfile.mkdtemp(prefix="remarketing-model-"))
        local = bundle_path(self.model_uri, self._workdir or Path("."))
        self.model = bundle.load(local)
        if not self.name:
            self.name = f"remarketing-{self.model.dataset}"
        logger.info(
            "loaded %s (%s, %d fields) from %s",
            self.name,
            self.model.family,
            len(self.model.features),
            self.model_uri,
        )
        if self.count_metrics:
            self.metrics = ModelMetrics(self.name, self.version)
        self.ready = True
        return self.ready

    def stop(self) -> None:
        super().stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # --- request -> rows ---------------------------------------------------------------------------
    def _campaign_model(self) -> CampaignModel:
        if self.model is None:
            raise InvalidInput(f"model {self.name} is not loaded")
        return self.model

    def _records_v1(self, payload: Any) -> list[dict[str, Any]]:
        if isinstance(payload, bytes | str):
            raise InvalidInput(f"{V1_HINT}, sent with Content-Type: application/json")
        if not isinstance(payload, dict):
            raise InvalidInput(f"{V1_HINT}; got a JSON {type(payload).__name__}")
        if "instances" not in payload:
            raise InvalidInput(f"{V1_HINT}; the 'instances' key is missing")
        return payload["instances"]

    def _records_v2(self, request: InferRequest) -> list[dict[str, Any]]:
        """V2 inputs, one per column with shape [n] (or [n, 1]), as row records; the core validates the
        cells so that a bad one is reported with its row and column, as in V1."""
        model = self._campaign_model()
        columns: dict[str, list[Any]] = {}
        for tensor in request.inputs:
            if tensor.name in columns:
                raise InvalidInput(f"input {tensor.name!r} is given twice")
            shape = list(tensor.shape or [])
            if not shape or len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                raise InvalidInput(f"input {tensor.name!r}: shape must be [n] (a value per row), not {shape}")
            if tensor._raw_data is not None:  # binary tensor extension
                values = tensor.as_numpy().reshape(-1).tolist()
            else:
                values = _flatten(tensor.data, tensor.name)
            if len(values) != shape[0]:
                raise InvalidInput(
                    f"input {tensor.name!r}: shape says {shape[0]} rows but {len(values)} values were sent"
                )
            columns[tensor.name] = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
        if not columns:
            raise InvalidInput("expected one input per column (name = column, shape [n]); got no inputs")
        missing = [name for name in model.features if name not in columns]
        if missing:
            raise InvalidInput(
                f"input {missing[0]!r} is missing: one input per column is needed "
                f"({', '.join(model.features)}); missing: {', '.join(missing)}"
            )
        lengths = {name: len(columns[name]) for name in model.features}
        n = lengths[model.features[0]]
        for name, length in lengths.items():
            if length != n:
                raise InvalidInput(f"input {name!r} has {length} rows, input {model.features[0]!r} has {n}")
        return [{name: columns[name][i] for name in model.features} for i in range(n)]

    def rows(self, payload: Any) -> pd.DataFrame:
        """The customer rows of a V1 body or a V2 request; :class:`InvalidInput` (HTTP 400) otherwise."""
        model = self._campaign_model()
        v2 = isinstance(payload, InferRequest)
        records = self._records_v2(payload) if v2 else self._records_v1(payload)
        try:
            return model.rows_from_records(records)
        except InvalidRow as exc:
            raise InvalidInput(str(exc)) from exc

    # --- verbs -------------------------------------------------------------------------------------
    def predict(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        with self._counting_errors("predict"):
            rows = self.rows(payload)
            probabilities = np.asarray(self._campaign_model().predict_proba(rows), dtype="float64")
        if self.metrics:
            self.metrics.scored(probabilities)
        if isinstance(payload, InferRequest):
            output = InferOutput(name=OUTPUT, shape=[len(probabilities)], datatype="FP64")
            output.set_data_from_numpy(probabilities, binary_data=False)
            return InferResponse(
                response_id=payload.id or uuid.uuid4().hex,  # V2 responses need a string id
                model_name=self.name,
                model_version=self.version,
                infer_outputs=[output],
            )
        return {"predictions": probabilities.tolist()}

    async def explain(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict:
        # SHAP for tree and neural models takes seconds per thousand rows: run it off the event loop so
        # that health checks and other requests are still answered meanwhile.
        with self._counting_errors("explain"):
            rows = self.rows(payload)
            loop = asyncio.get_running_loop()
            explained = await loop.run_in_executor(None, self.explain_rows, rows)
        if self.metrics:  # an explanation carries the score too: counted as a prediction as well
            self.metrics.explained(len(rows))
            self.metrics.scored(np.asarray([e["probability"] for e in explained["explanations"]]))
        return explained

    def _counting_errors(self, verb: str):
        return self.metrics.counting_errors(verb) if self.metrics else contextlib.nullcontext()

    def explain_rows(self, rows: pd.DataFrame) -> dict:
        """One explanation per row, computed in one vectorised call for the whole request."""
        model = self._campaign_model()
        explanation = model.explain(rows)
        probabilities = model.predict_proba(rows)
        return {
            "explanations": explain_rows(
                explanation.contributions, rows, explanation.base_value, probabilities
            )
        }


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput(f"input {name!r}: 'data' must be a list of values, one per row")
    if data and all(isinstance(v, list) for v in data):  # [[v], [v], ...] for shape [n, 1]
        if any(len(v) != 1 for v in data):
            raise InvalidInput(f"input {name!r}: expected one value per row")
        return [v[0] for v in data]
    return data
