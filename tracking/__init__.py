"""MLflow, behind the core's ports: the model registry (:class:`registry.MlflowRegistry`) and the training
runs' experiment log (:class:`log.MlflowTracker`). Nothing outside this package imports MLflow's tracking
API; the core only knows :mod:`remarketing.ports`."""
