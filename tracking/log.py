"""The experiment log of a training run on MLflow (the core's ``Tracker`` port)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from remarketing import bundle
from remarketing.ports import ExperimentLog


class MlflowTracker:
    def __init__(self, tracking_uri: str) -> None:
        from tracking.registry import fail_fast, use_google_id_tokens

        fail_fast()
        use_google_id_tokens(tracking_uri)
        self.tracking_uri = tracking_uri

    def log(self, entry: ExperimentLog) -> str:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(entry.experiment)
        with mlflow.start_run(run_name=entry.run_name) as run:
            mlflow.set_tags(entry.tags)
            mlflow.log_params(entry.params)
            mlflow.log_metrics(entry.metrics)
            by_step: dict[int, dict[str, float]] = {}
            for name, points in entry.series.items():
                for step, value in points:
                    by_step.setdefault(step, {})[name] = value
            for step, values in sorted(by_step.items()):
                mlflow.log_metrics(values, step=step)
            for path, table in entry.tables.items():
                mlflow.log_table(table, path)
            for path, figure in entry.figures.items():
                mlflow.log_figure(figure, path)
            for folder, local in entry.folders.items():
                for item in sorted(local.iterdir()):
                    mlflow.log_artifact(str(item), folder)
            for path, document in entry.documents.items():
                mlflow.log_dict(document, path)
            return str(run.info.run_id)

    def add_model_flavour(self, bundle_dir: Path) -> None:
        """MLflow's pyfunc files (MLmodel, requirements) beside the bundle; the loader is
        :mod:`remarketing.bundle`, so ``mlflow.pyfunc.load_model`` returns probabilities for raw rows."""
        import mlflow.pyfunc

        directory = Path(bundle_dir)
        family = bundle.read_metadata(directory)["family"]
        with tempfile.TemporaryDirectory() as tmp:
            flavoured = Path(tmp) / "bundle"
            mlflow.pyfunc.save_model(
                path=str(flavoured),
                loader_module="remarketing.bundle",
                data_path=str(directory / bundle.PARTS),
                pip_requirements=bundle.requirements(family),
            )
            for path in flavoured.iterdir():
                if path.is_file():
                    shutil.copy2(path, directory / path.name)
