"""One Settings object, read from ``REMARKETING_*`` variables (and ``.env``), with local defaults.

Environment differences are data: ``mode`` picks the profile, and the derived addresses (emulator,
MLflow) follow from it. Build it once at the edge (CLI, function, API) and pass it in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["local", "gcp"]
# The audience of the assertions IAP signs for an app (cloud_auth.iap): on a Cloud Run service, or on a
# load balancer's backend service.
IAP_AUDIENCE = re.compile(
    r"/projects/\d+/(locations/[a-z0-9-]+/services/[a-z0-9-]+|global/backendServices/\d+)"
)
# Never passed to pipelines (KFP shows run parameters in its UI and stores them with the run).
SECRETS = {"api_key", "url_signing_key", "customer_id_key", "lookup_db_password"}
# The secrets a pipeline's task reads itself, from Secret Manager as its own identity (the pipelines' service
# account), by the name the setting beside each gives: the name travels with the run, the value never does.
SECRET_SOURCES = {
    "customer_id_key": "customer_id_key_secret",
    "lookup_db_password": "lookup_db_password_secret",
}
# A Secret Manager secret (its latest version) or one version of it.
SECRET_NAME = re.compile(r"projects/[^/\s]+/secrets/[A-Za-z0-9_-]+(/versions/(latest|\d+))?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REMARKETING_", env_file=".env", extra="ignore")

    mode: Mode = "local"
    state_dir: Path = Path(".remarketing")
    gcp_project: str = "remarketing-local"
    region: str = "europe-west1"
    landing_bucket: str = "remarketing-landing"
    artifacts_bucket: str = "remarketing-artifacts"

    # Local stack ports (loopback only).
    emulator_port: int = 9023
    mlflow_port: int = 5055
    api_port: int = 8085
    input_function_port: int = 8091
    weekly_function_port: int = 8092
    outcomes_function_port: int = 8093
    # Observability on loopback (docs/observability.md): Prometheus scrapes the stack and the model servers,
    # pipeline runs push to the Pushgateway, Alertmanager routes alerts (to a log file locally).
    prometheus_port: int = 19090  # not 9090..9093: Debian's packages start system services there
    pushgateway_port: int = 19091
    alertmanager_port: int = 19093
    bridge_metrics_port: int = 19102
    scrape_interval_seconds: int = Field(default=5, ge=1, le=60)
    # A finished run's pushed figures are deleted from the Pushgateway after this (alerts have fired by then).
    pipeline_metrics_retention_seconds: int = Field(default=900, ge=60)

    # Derived in local mode when left empty.
    storage_emulator_host: str = ""
    tracking_uri: str = ""
    prometheus_url: str = ""  # the Operations page's source; not wired in the cloud yet (Grafana is there)
    pushgateway_url: str = ""  # in the cloud: the in-cluster Pushgateway; empty there: runs push nothing

    # Predictions URL: V4 signed in the cloud (IAM signBlob as this account), HMAC-signed locally.
    signing_service_account: str = ""
    predictions_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    url_signing_key: str = ""  # local HMAC key; empty: generated once in the state folder
    api_key: str = ""  # API key or bearer token for the API; empty: generated once in the state folder
    customer_id_key: str = ""  # HMAC key of customer pseudonyms; empty: generated once in the state folder
    lookup_runs_kept: int = Field(
        default=8, ge=1, le=520, description="scoring runs per dataset the customer lookup table keeps"
    )
    # The customer lookup table (remarketing.lookup_table): a SQLite file in the state folder, or, when a host
    # is given, a PostgreSQL database (Cloud SQL in the cloud, reached on its private IP over TLS).
    lookup_db_host: str = ""
    lookup_db_port: int = Field(default=5432, ge=1, le=65535)
    lookup_db_name: str = "lookup"
    lookup_db_user: str = "lookup"
    lookup_db_password: str = ""
    lookup_db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        "require"
    )
    # Secret Manager names (projects/<p>/secrets/<s>) of two of them, for pipeline tasks (SECRET_SOURCES).
    customer_id_key_secret: str = ""
    lookup_db_password_secret: str = ""
    ui_port: int = 8501
    max_upload_bytes: int = Field(
        default=50 * 2**20, ge=1024, description="largest weekly file the API takes"
    )

    kfp_host: str = ""
    components_image: str = "europe-docker.pkg.dev/remarketing/remarketing/components:0.1.0"
    serving_image: str = "europe-docker.pkg.dev/remarketing/remarketing/serving:0.1.0"
    serving_namespace: str = "remarketing-serving"
    serving_service_account: str = "remarketing-predictor"
    pipeline_concurrency: int = Field(default=2, ge=1)
    # Past one machine: the score step fans out to this many shard tasks (dsl.ParallelFor), each sending
    # its share of the file's chunks to the InferenceService, whose replicas autoscale on concurrency.
    scoring_shards: int = Field(
        default=1, ge=1, le=256, description="score tasks a scoring run fans out to (1 on one machine)"
    )
    scoring_chunk_rows: int = Field(
        default=50_000, ge=100, description="rows a scoring step holds at once (and a shard's unit of work)"
    )
    scoring_shard_retries: int = Field(default=2, ge=0, le=10, description="retries of a failed shard (KFP)")
    serving_min_replicas: int = Field(default=0, ge=0, description="InferenceService replicas kept warm")
    serving_max_replicas: int = Field(default=3, ge=1, description="InferenceService replicas at most")
    serving_concurrency_target: int = Field(
        default=4, ge=1, description="in-flight requests per replica before KServe adds one"
    )
    model_server_idle_seconds: int = Field(
        default=1800, ge=0, description="a local model server of a version no longer in use stops after"
    )

    # Training and model choice: backtests over the history's last periods pick the family and gate it.
    default_dataset: str = "bank-marketing"
    backtest_periods: int = Field(default=4, ge=2, le=20, description="scored backtest periods")
    backtest_period_share: float = Field(default=0.1, gt=0, lt=0.5, description="rows in each period")
    selection_metric: Literal[
        "roc_auc", "pr_auc", "lift_at_10pct", "precision_at_10pct", "lift_at_budget", "precision_at_budget"
    ] = "roc_auc"
    # Floors on the mean over the backtest periods: no worse than calling at random. The later periods of a
    # drifting history are hard (bank-full's run 0.41-0.72 ROC-AUC per period, benchmarks/quality.md), and
    # a model near random on them can still be the best there is for next week; the champion comparison
    # guards against regressions.
    floor_roc_auc: float = Field(default=0.50, ge=0, le=1)
    floor_lift_at_10pct: float = Field(default=1.0, ge=0)
    promotion_margin: float = Field(default=0.005, ge=0)
    budget_share: float = Field(default=0.10, gt=0, le=1)
    budget: int | None = Field(default=None, ge=1)
    shap_background_rows: int = Field(default=200, ge=10)
    # Drift profiles and reports show aggregates only: a category (or a numeric value of its own) held by
    # fewer training rows than this is counted in one "other (fewer than N each)" bucket (remarketing.drift).
    min_category_rows: int = Field(
        default=10, ge=1, description="rows a category needs to be named in a drift profile or report"
    )
    seed: int = 42

    # The contact list (each can also be given per upload). With a call's cost and a conversion's value,
    # only customers worth calling (p * value > cost) are on the list, best first, up to the budget.
    call_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    conversion_value: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    holdout_share: float = Field(default=0.05, ge=0, le=0.5, description="of the list, not called")
    explore_share: float = Field(default=0.01, ge=0, le=0.5, description="of the others, called at random")

    # Retraining when it pays, decided after each monitoring run (remarketing.retraining): on the latest
    # history, when the realized lift of the targeted falls below its floor, or their conversion outside
    # the promised interval, or (only if asked) when features drifted further than in any backtest.
    retrain_floor_lift: float | None = Field(
        default=1.2, ge=0, description="realized conversion of the targeted over the week's, below which"
    )
    retrain_when_outside_interval: bool = True
    retrain_on_drift: bool = False  # drift alone warns; it retrains only when this says so
    retrain_min_outcomes: int = Field(default=100, ge=1, description="fewer outcomes decide nothing")

    # Champion against challenger (remarketing.experiments): the challenger's share of the customers, and
    # the test that decides it: one-sided significance, the power the planned sample is sized for, and the
    # smallest lift in conversions per customer worth detecting. Each can be given when an experiment starts.
    experiment_share: float = Field(default=0.5, gt=0, lt=1)
    experiment_significance: float = Field(default=0.05, gt=0, lt=0.5)
    experiment_power: float = Field(default=0.8, gt=0, lt=1)
    experiment_min_lift: float = Field(default=1.2, gt=1)

    # Retraining on a schedule as well (a cron expression, UTC; empty: only after monitoring runs): when it
    # comes, the latest history version is trained on if no model was trained on it yet.
    retrain_schedule: str = ""
    # In the cloud Cloud Scheduler calls POST /retraining with an ID token of this account (no API key).
    scheduler_service_account: str = ""
    scheduler_audience: str = ""  # the API's URL, the token's audience
    # In the cloud the app sits behind Identity-Aware Proxy: the audience of the assertions IAP signs for it
    # (/projects/<number>/locations/<region>/services/<app service>, or .../global/backendServices/<id>
    # behind a load balancer). On the app: it acts as the signed-in person (never with the operator's key);
    # on the API: it takes that person's assertion, forwarded by the app, as who calls. Empty: no IAP.
    iap_audience: str = ""

    @model_validator(mode="after")
    def _derive_local_addresses(self) -> Settings:
        self.state_dir = self.state_dir.absolute()  # the same folder for a task started elsewhere
        if self.mode == "local":
            if not self.storage_emulator_host:
                self.storage_emulator_host = f"http://127.0.0.1:{self.emulator_port}"
            if not self.tracking_uri:
                self.tracking_uri = f"http://127.0.0.1:{self.mlflow_port}"
            if not self.prometheus_url:
                self.prometheus_url = f"http://127.0.0.1:{self.prometheus_port}"
            if not self.pushgateway_url:
                self.pushgateway_url = f"http://127.0.0.1:{self.pushgateway_port}"
        elif not self.tracking_uri:
            raise ValueError("REMARKETING_TRACKING_URI is required in gcp mode (the MLflow server's URL)")
        if (self.backtest_periods + 1) * self.backtest_period_share > 0.9:
            raise ValueError(
                f"{self.backtest_periods} backtest periods of {self.backtest_period_share:.0%} (and a "
                "warm-up period) leave less than 10% of the history for the first fit: lower "
                "REMARKETING_BACKTEST_PERIODS or REMARKETING_BACKTEST_PERIOD_SHARE"
            )
        if self.serving_min_replicas > self.serving_max_replicas:
            raise ValueError(
                f"REMARKETING_SERVING_MIN_REPLICAS ({self.serving_min_replicas}) is above "
                f"REMARKETING_SERVING_MAX_REPLICAS ({self.serving_max_replicas})"
            )
        if self.iap_audience and not IAP_AUDIENCE.fullmatch(self.iap_audience):
            raise ValueError(
                f"REMARKETING_IAP_AUDIENCE {self.iap_audience!r} is not an IAP audience: "
                "/projects/<project number>/locations/<region>/services/<service> (IAP on Cloud Run) or "
                "/projects/<project number>/global/backendServices/<id> (behind a load balancer)"
            )
        for reference in SECRET_SOURCES.values():
            name = getattr(self, reference)
            if name and not SECRET_NAME.fullmatch(name):
                raise ValueError(
                    f"REMARKETING_{reference.upper()} {name!r} is not a Secret Manager secret: "
                    "projects/<project>/secrets/<secret> (or .../versions/<version>)"
                )
        if (self.call_cost is None) != (self.conversion_value is None):
            raise ValueError("set both REMARKETING_CALL_COST and REMARKETING_CONVERSION_VALUE, or neither")
        return self

    @property
    def lookup_path(self) -> Path:
        """The customer lookup table (SQLite; remarketing.customer_lookup), written by publish."""
        return self.state_dir / "lookup" / "customers.sqlite"

    @property
    def landing_root(self) -> str:
        return f"gs://{self.landing_bucket}"

    @property
    def artifacts_root(self) -> str:
        return f"gs://{self.artifacts_bucket}"

    def model_name(self, dataset: str) -> str:
        return f"remarketing-{dataset}"

    def bundle_uri(self, model_name: str, version: str | int) -> str:
        """``gs://<artifacts>/model-output/<model_name>/<version>``: where training writes a version's
        bundle, what MLflow registers, and what serving loads (KServe's storageUri)."""
        return f"{self.artifacts_root}/model-output/{model_name}/{version}"

    def budget_for(self, rows: int, *, budget: int | None = None, share: float | None = None) -> int:
        """How many customers are called among ``rows``: a run's own budget or share (an upload's
        parameters) wins over the settings; an absolute budget wins over a share. At least 1."""
        if budget is None and share is None:
            budget, share = self.budget, self.budget_share
        if budget is not None:
            return max(1, min(int(budget), rows))
        return max(1, min(rows, round(rows * float(self.budget_share if share is None else share))))

    def to_env(self) -> dict[str, str]:
        """These settings as ``REMARKETING_*`` variables, for a child process to rebuild them."""
        env = {}
        for key, value in self.model_dump(mode="json").items():
            if value is not None:
                env[f"REMARKETING_{key.upper()}"] = (
                    json.dumps(value) if isinstance(value, list | dict) else str(value)
                )
        return env

    def for_pipeline(self) -> dict:
        """The settings a pipeline run needs, passed explicitly as one parameter (no env read inside).
        Unset values are left out: KFP parameters cannot be null."""
        return self.model_dump(mode="json", exclude_none=True, exclude=SECRETS)
