"""The model bundle: one directory that MLflow registers and KServe's ``storageUri`` points at.

    MLmodel, python_env.yaml, requirements.txt   the MLflow pyfunc flavour (loader: this module)
    metadata.json                                 spec, data sha256, metrics, versions, git sha, explainer
    background.parquet                            the raw rows SHAP values are relative to
    data/model/preprocessor.joblib                preprocessing fitted on the training slice
    data/model/estimator.joblib | .keras          the estimator

``mlflow.pyfunc.load_model(...)`` on it returns the probability of subscribing for raw rows (the input
file's columns without the target). Bundles come from the project's own artifacts bucket: joblib files
are only ever loaded from there.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from remarketing.models import EXPLAINERS, CampaignModel

PARTS = Path("data") / "model"  # preprocessor and estimator, where MLflow's data_path lands
LIBRARIES = ("scikit-learn", "pandas", "numpy", "shap", "tensorflow-cpu", "keras", "mlflow", "pandera")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).parent,  # this project's checkout, not the caller's working directory
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def requirements(family: str) -> list[str]:
    """The libraries a bundle of ``family`` needs to be loaded, pinned to the versions it was saved with."""
    versions = library_versions()
    names = ["scikit-learn", "pandas", "numpy", "shap"] + (["tensorflow-cpu"] if family == "mlp" else [])
    return [f"{n}=={versions[n]}" for n in names if n in versions]


def save(model: CampaignModel, directory: Path, metadata: dict[str, Any]) -> Path:
    """Write ``model``'s parts, background and metadata into ``directory``. Cheap: the tracker adds its
    own model flavour (MLflow's pyfunc files) once the bundle is chosen for registration."""
    directory = Path(directory)
    parts = directory / PARTS
    parts.mkdir(parents=True)
    joblib.dump(model.preprocessor, parts / "preprocessor.joblib")
    if model.family == "mlp":
        model.estimator.save(parts / "estimator.keras")
    else:
        joblib.dump(model.estimator, parts / "estimator.joblib")
    model.background.to_parquet(directory / "background.parquet", index=False)
    full = {
        **metadata,
        "family": model.family,
        "dataset": model.dataset,
        "features": model.features,
        "numeric": model.numeric,
        "calibration": list(model.calibration),
        "explainer": EXPLAINERS[model.family],
        "libraries": library_versions(),
        "git_sha": git_sha(),
    }
    write_metadata(directory, full)
    return directory


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, dirs_exist_ok=True)
    return target


def read_metadata(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / "metadata.json").read_text())


def write_metadata(directory: Path, metadata: dict[str, Any]) -> None:
    (Path(directory) / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str))


def load(directory: Path) -> CampaignModel:
    """The :class:`CampaignModel` of a bundle on local disk."""
    directory = Path(directory)
    meta = read_metadata(directory)
    parts = directory / PARTS
    if meta["family"] == "mlp":
        import keras

        estimator = keras.saving.load_model(parts / "estimator.keras", compile=False)
    else:
        estimator = joblib.load(parts / "estimator.joblib")
    return CampaignModel(
        family=meta["family"],
        dataset=meta["dataset"],
        features=meta["features"],
        numeric=meta["numeric"],
        preprocessor=joblib.load(parts / "preprocessor.joblib"),
        estimator=estimator,
        background=pd.read_parquet(directory / "background.parquet"),
        calibration=tuple(meta["calibration"]),
    )


class PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: raw rows in, probability of subscribing out."""

    def __init__(self, model: CampaignModel) -> None:
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> pd.Series:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.Series(self.model.predict_proba(frame), index=frame.index, name="probability")


def _load_pyfunc(data_path: str) -> PyfuncModel:
    """MLflow's loader hook: ``data_path`` is the bundle's ``data/model`` folder."""
    return PyfuncModel(load(Path(data_path).parents[1]))
