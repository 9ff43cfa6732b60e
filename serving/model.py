"""The KServe predictor: a ``kserve.Model`` that serves one model bundle (predict + explain).

It is a thin adapter: requests are translated into customer rows (the core names the first bad row and
column), answered by the core (``predict_proba``, ``explain``, :func:`remarketing.reasons.reason_columns`)
and translated back.

- V1 ``POST /v1/models/<name>:predict``  ``{"instances": [{column: value, ...}, ...]}`` ->
  ``{"predictions": [p, ...]}``
- V1 ``POST /v1/models/<name>:explain``  same body -> ``{"explanations": [{probability, base_value,
  contributions, reasons}, ...]}`` (one vectorised explain call for the whole body)
- V2 ``POST /v2/models/<name>/infer``    one input per column (shape ``[n]``; FP64 for numbers and BYTES
  for text as the metadata says, though any numeric datatype is read as a number); the outputs
  asked for (``probability`` when none is): ``probability``, ``base_value``, ``contribution_<field>`` for
  each field and ``reason_<k>_{field,value,contribution}`` for k = 1..3, in JSON or binary tensors
  (:mod:`serving.dataplane` reads and writes them as numpy columns). ``GET /v2/models/<name>`` lists them.

A request that cannot be scored raises :class:`kserve.errors.InvalidInput` (HTTP 400) naming the row or
the tensor and the column; it is never a 500.
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
from kserve import Model
from kserve.errors import InvalidInput

from remarketing import bundle
from remarketing.errors import InvalidColumn, InvalidRow
from remarketing.models import CampaignModel
from remarketing.reasons import TOP, explain_rows, reason_columns
from remarketing.tensors import BYTES, Body
from serving.metrics import ModelMetrics

logger = logging.getLogger(__name__)

OUTPUT = "probability"
EXPLAIN_BATCH = 5_000  # rows per SHAP call: the server's memory does not grow with the request
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

    def rows(self, payload: Any) -> pd.DataFrame:
        """The customer rows of a V1 body or a V2 request; :class:`InvalidInput` (HTTP 400) otherwise."""
        model = self._campaign_model()
        try:
            if isinstance(payload, Body):
                return model.rows_from_columns(payload.tensors)
            return model.rows_from_records(self._records_v1(payload))
        except (InvalidRow, InvalidColumn) as exc:
            raise InvalidInput(str(exc)) from exc

    # --- V2 metadata ---------------------------------------------------------------------------------
    def get_input_types(self) -> list[dict[str, Any]]:
        model = self._campaign_model()
        numeric = set(model.numeric)
        return [
            {"name": name, "datatype": "FP64" if name in numeric else BYTES, "shape": [-1]}
            for name in model.features
        ]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "datatype": datatype, "shape": shape}
            for name, (datatype, shape) in self.outputs().items()
        ]

    def outputs(self) -> dict[str, tuple[str, list[int]]]:
        """Every V2 output: name -> (datatype, shape)."""
        model = self._campaign_model()
        out = {OUTPUT: ("FP64", [-1]), "base_value": ("FP64", [1])}
        out.update({f"contribution_{name}": ("FP64", [-1]) for name in model.features})
        for k in range(1, TOP + 1):
            out.update({f"reason_{k}_field": (BYTES, [-1]), f"reason_{k}_value": (BYTES, [-1])})
            out[f"reason_{k}_contribution"] = ("FP64", [-1])
        return out

    # --- verbs -------------------------------------------------------------------------------------
    async def predict(self, payload: dict | Body, headers: dict[str, str] | None = None) -> dict | Body:
        if isinstance(payload, Body):
            return await self._infer(payload)
        with self._counting_errors("predict"):
            rows = self.rows(payload)
            probabilities = np.asarray(
                self._campaign_model().predict_proba(rows, prepared=True), dtype="float64"
            )
        if self.metrics:
            self.metrics.scored(probabilities)
        return {"predictions": probabilities.tolist()}

    async def _infer(self, request: Body) -> Body:
        """V2: probabilities only, or (when an explanation output is asked for) the whole explanation,
        off the event loop so that health checks are answered meanwhile."""
        wanted = request.outputs or [OUTPUT]
        explaining = any(name != OUTPUT for name in wanted)
        verb = "explain" if explaining else "predict"
        with self._counting_errors(verb):
            known = self.outputs()
            unknown = [name for name in wanted if name not in known]
            if unknown:
                raise InvalidInput(f"unknown output {unknown[0]!r}; this model gives: {', '.join(known)}")
            rows = self.rows(request)
            if explaining:
                loop = asyncio.get_running_loop()
                columns = await loop.run_in_executor(None, self.explain_columns, rows)
            else:
                probability = self._campaign_model().predict_proba(rows, prepared=True)
                columns = {OUTPUT: np.asarray(probability, dtype="float64")}
        if self.metrics:
            self.metrics.scored(columns[OUTPUT])
            if explaining:
                self.metrics.explained(len(rows))
        return Body(
            {name: columns[name] for name in wanted},
            id=request.id or uuid.uuid4().hex,  # V2 responses need a string id
            binary_outputs=request.binary_outputs,
            model_name=self.name,
            model_version=self.version,
        )

    async def explain(self, payload: dict, headers: dict[str, str] | None = None) -> dict:
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
        probabilities, explanation = self._campaign_model().scores(rows, prepared=True)
        return {
            "explanations": explain_rows(
                explanation.contributions, rows, explanation.base_value, probabilities
            )
        }

    def explain_columns(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """Every V2 output as a column, SHAP computed ``EXPLAIN_BATCH`` rows at a time."""
        model = self._campaign_model()
        parts: list[dict[str, np.ndarray]] = []
        base = 0.0
        for start in range(0, len(rows), EXPLAIN_BATCH):
            batch = rows.iloc[start : start + EXPLAIN_BATCH]
            probability, explanation = model.scores(batch, prepared=True)  # one SHAP call at a time
            base = explanation.base_value
            part = {OUTPUT: np.asarray(probability, dtype="float64")}
            part.update(
                {f"contribution_{c}": explanation.contributions[c].to_numpy() for c in model.features}
            )
            part.update(reason_columns(explanation.contributions, batch))
            parts.append(part)
        columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        columns["base_value"] = np.asarray([base], dtype="float64")
        return columns
