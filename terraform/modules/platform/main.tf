# The whole Remarketing stack on one project, composed from the modules beside this one. envs/dev and
# envs/prod call it with their own sizes and protections, so the two environments cannot drift apart in
# shape, only in the values they are given.

locals {
  labels = merge(var.labels, {
    app         = "remarketing"
    environment = var.environment
  })

  landing_bucket   = coalesce(var.landing_bucket_name, "${var.project_id}-${var.name}-landing")
  artifacts_bucket = coalesce(var.artifacts_bucket_name, "${var.project_id}-${var.name}-artifacts")
  bucket_location  = coalesce(var.bucket_location, var.region)

  registry = module.registry.repository_url
  images = {
    components = "${local.registry}/components:${var.image_tag}"
    # By digest: Knative resolves a tag to a digest with its controller's own identity, which cannot read
    # this private registry, so an InferenceService of a tagged image never becomes Ready.
    serving    = data.google_artifact_registry_docker_image.serving.self_link
    api        = "${local.registry}/api:${var.image_tag}"
    app        = "${local.registry}/app:${var.image_tag}"
    mlflow     = "${local.registry}/mlflow:${var.image_tag}"
  }

  sa = module.iam.emails
  m  = module.iam.members

  deployer_member = var.deployer_service_account == null ? null : "serviceAccount:${var.deployer_service_account}"

  kfp_host = "https://${module.gke.dns_endpoint}${module.kubeflow.kfp_proxy_path}"

  # The audience of Cloud Scheduler's ID tokens for POST /retraining (a custom audience of the API: its
  # own URL would make the API's settings depend on the API).
  scheduler_audience = "${var.name}-retraining"

  # The settings of GCP mode (pydantic-settings, prefix REMARKETING_). No secret here: REMARKETING_API_KEY
  # comes from Secret Manager where it is needed.
  settings = {
    REMARKETING_MODE                    = "gcp"
    REMARKETING_GCP_PROJECT             = var.project_id
    REMARKETING_REGION                  = var.region
    REMARKETING_LANDING_BUCKET          = module.storage.landing_bucket
    REMARKETING_ARTIFACTS_BUCKET        = module.storage.artifacts_bucket
    REMARKETING_TRACKING_URI            = module.mlflow.tracking_uri
    REMARKETING_KFP_HOST                = local.kfp_host
    REMARKETING_COMPONENTS_IMAGE        = local.images.components
    REMARKETING_SERVING_IMAGE           = local.images.serving
    REMARKETING_SERVING_NAMESPACE       = module.kubeflow.serving_namespace
    REMARKETING_SERVING_SERVICE_ACCOUNT = module.kubeflow.predictor_service_account
    # Scale: the score step's shards, and the InferenceService's replicas (docs/sizing.md).
    REMARKETING_SCORING_SHARDS             = tostring(var.scoring_shards)
    REMARKETING_SERVING_MIN_REPLICAS       = tostring(var.serving_min_replicas)
    REMARKETING_SERVING_MAX_REPLICAS       = tostring(var.serving_max_replicas)
    REMARKETING_SERVING_CONCURRENCY_TARGET = tostring(var.serving_concurrency_target)
    # Pipeline runs push their figures to the in-cluster Pushgateway. The functions and the API pass their
    # settings to the runs they launch (Settings.for_pipeline), so the runs get it from here.
    REMARKETING_PUSHGATEWAY_URL = module.observability.pushgateway_url
  }
}

# The serving image's digest, looked up from its tag (the release pushes it before it applies).
data "google_artifact_registry_docker_image" "serving" {
  project       = var.project_id
  location      = var.region
  repository_id = module.registry.repository_id
  image_name    = "serving:${var.image_tag}"
}

module "apis" {
  source     = "../apis"
  project_id = var.project_id
}

module "network" {
  source     = "../network"
  project_id = var.project_id
  region     = var.region
  name       = var.name

  depends_on = [module.apis]
}

module "iam" {
  source            = "../iam"
  project_id        = var.project_id
  name              = var.name
  cluster_operators = compact(concat(var.cluster_operators, [local.deployer_member]))

  depends_on = [module.apis]
}

module "storage" {
  source                = "../storage"
  project_id            = var.project_id
  name                  = var.name
  location              = local.bucket_location
  landing_bucket_name   = local.landing_bucket
  artifacts_bucket_name = local.artifacts_bucket
  kms_key_name          = var.kms_key_name
  labels                = local.labels
  members               = local.m
}

module "registry" {
  source       = "../registry"
  project_id   = var.project_id
  region       = var.region
  kms_key_name = var.kms_key_name
  labels       = local.labels
  readers = {
    gke-nodes = local.m["gke-nodes"]
  }
  writers = var.deployer_service_account == null ? {} : { deployer = local.deployer_member }

  depends_on = [module.apis]
}

module "secrets" {
  source       = "../secrets"
  project_id   = var.project_id
  region       = var.region
  name         = var.name
  kms_key_name = var.kms_key_name
  labels       = local.labels
  # The API reads its key and the pseudonym key (the HMAC key of customer ids, docs/personal-data.md).
  accessors = concat(
    [for name in ["api-key", "pseudonym-key"] : { secret = name, label = "api", member = local.m.api }],
    [
      { secret = "api-key", label = "app", member = local.m.app },
      { secret = "mlflow-db", label = "mlflow", member = local.m.mlflow },
    ],
  )

  depends_on = [module.apis]
}

module "gke" {
  source               = "../gke"
  project_id           = var.project_id
  name                 = "${var.name}-kfp"
  location             = var.gke_location
  network_id           = module.network.network_id
  subnet_id            = module.network.gke_subnet_id
  pods_range_name      = module.network.gke_pods_range_name
  services_range_name  = module.network.gke_services_range_name
  node_service_account = local.sa["gke-nodes"]
  machine_type         = var.gke_machine_type
  min_nodes            = var.gke_min_nodes
  max_nodes            = var.gke_max_nodes
  rbac_security_group  = var.gke_rbac_security_group
  kms_key_name         = var.kms_key_name
  deletion_protection  = var.deletion_protection
  labels               = local.labels
}

module "kubeflow" {
  source               = "../kubeflow"
  project_id           = var.project_id
  cluster_name         = module.gke.name
  cluster_location     = module.gke.location
  kfp_version          = var.kfp_version
  kserve_version       = var.kserve_version
  knative_version      = var.knative_version
  cert_manager_version = var.cert_manager_version
  pipelines_gsa_email  = local.sa.pipelines
  pipelines_gsa_id     = module.iam.ids.pipelines
  serving_gsa_email    = local.sa.serving
  serving_gsa_id       = module.iam.ids.serving
  kfp_client_emails    = compact([local.sa.functions, var.deployer_service_account])
  kfp_reader_emails    = [local.sa.api]
}

module "mlflow" {
  source                      = "../mlflow"
  project_id                  = var.project_id
  region                      = var.region
  instance_name               = "${var.name}-mlflow"
  service_name                = "${var.name}-mlflow"
  image                       = local.images.mlflow
  service_account_email       = local.sa.mlflow
  network_id                  = module.network.network_id
  private_services_connection = module.network.private_services_connection
  vpc_subnet_id               = module.network.serverless_subnet_id
  artifacts_destination       = module.storage.mlflow_artifacts_uri
  db_password                 = module.secrets.mlflow_db_password
  db_password_secret_id       = module.secrets.secret_ids["mlflow-db"]
  tier                        = var.sql_tier
  high_availability           = var.sql_high_availability
  kms_key_name                = var.kms_key_name
  deletion_protection         = var.deletion_protection
  labels                      = local.labels
  # The pipelines log and register models; the API reads the registry (models, versions, artifacts).
  invokers = merge(
    { pipelines = local.m.pipelines, api = local.m.api },
    { for i, member in var.mlflow_users : "user-${i}" => member },
  )

  depends_on = [module.secrets]
}

module "functions" {
  source                        = "../functions"
  project_id                    = var.project_id
  region                        = var.region
  bucket_location               = lower(local.bucket_location)
  landing_bucket                = module.storage.landing_bucket
  source_root                   = var.functions_source_root
  source_bucket_name            = "${var.project_id}-${var.name}-fn-source"
  runtime_service_account_email = local.sa.functions
  trigger_service_account_email = local.sa.eventarc
  build_service_account_email   = local.sa["functions-build"]
  kms_key_name                  = var.kms_key_name
  labels                        = local.labels
  environment                   = local.settings
}

# Managed Service for Prometheus and Grafana: scrape targets in the cluster, the Pushgateway, the API's
# collector config, log-based metrics of the functions, alert policies from the rule file, Grafana.
module "observability" {
  source                    = "../observability"
  project_id                = var.project_id
  region                    = var.region
  name                      = var.name
  serving_namespace         = module.kubeflow.serving_namespace
  frontend_gsa_email        = local.sa["gmp-frontend"]
  frontend_gsa_id           = module.iam.ids["gmp-frontend"]
  api_service_account_email = local.sa.api
  function_names            = module.functions.function_names
  grafana_admin_password    = module.secrets.grafana_admin_password
  alert_email               = var.alert_email
  # The Pushgateway sweep (locally the bridge's): the runs' image, settings and account.
  sweeper_image           = local.images.components
  sweeper_environment     = local.settings
  sweeper_namespace       = module.kubeflow.pipeline_runner.namespace
  sweeper_service_account = module.kubeflow.pipeline_runner.service_account
  kms_key_name            = var.kms_key_name
  labels                  = local.labels

  depends_on = [module.apis]
}

# The API signs V4 URLs of scored files as itself (IAM signBlob on its own account; no key file exists).
resource "google_service_account_iam_member" "api_signs_as_itself" {
  service_account_id = module.iam.ids.api
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.m.api
}

module "api" {
  source                = "../cloud_run_service"
  project_id            = var.project_id
  region                = var.region
  name                  = "${var.name}-api"
  description           = "Remarketing API (FastAPI)"
  image                 = local.images.api
  service_account_email = local.sa.api
  access                = "invoker"
  invokers = merge(
    { app = local.m.app, scheduler = local.m.scheduler },
    { for i, member in var.api_users : "user-${i}" => member },
  )
  max_instances       = var.api_max_instances
  deletion_protection = var.deletion_protection
  labels              = local.labels
  custom_audiences    = [local.scheduler_audience]
  environment = merge(local.settings, {
    REMARKETING_SIGNING_SERVICE_ACCOUNT = local.sa.api
    # POST /retraining takes Cloud Scheduler's ID token of this account, minted for this audience,
    # instead of the API key (Cloud Run checks the audience too: custom_audiences).
    REMARKETING_SCHEDULER_SERVICE_ACCOUNT = local.sa.scheduler
    REMARKETING_SCHEDULER_AUDIENCE        = local.scheduler_audience
    REMARKETING_RETRAIN_SCHEDULE          = var.retrain_schedule
  })
  secret_environment = {
    REMARKETING_API_KEY         = module.secrets.secret_ids["api-key"]
    REMARKETING_CUSTOMER_ID_KEY = module.secrets.secret_ids["pseudonym-key"]
  }
  # Managed Prometheus scrapes the API's /metrics through the Cloud Run collector sidecar (job "api").
  metrics_sidecar = {
    image                = var.cloud_run_gmp_sidecar_image
    config_secret        = module.observability.api_metrics_sidecar_config_secret
    cpu_always_allocated = var.api_metrics_cpu_always_allocated
  }

  depends_on = [module.secrets]
}

module "app" {
  source                = "../cloud_run_service"
  project_id            = var.project_id
  region                = var.region
  name                  = "${var.name}-app"
  description           = "Remarketing Streamlit app"
  image                 = local.images.app
  service_account_email = local.sa.app
  access                = var.app_access
  iap_members           = { for i, member in var.app_users : "user-${i}" => member }
  invokers              = var.app_access == "invoker" ? { for i, member in var.app_users : "user-${i}" => member } : {}
  concurrency           = 20
  timeout_seconds       = 3600 # Streamlit keeps a websocket open per session
  max_instances         = var.app_max_instances
  deletion_protection   = var.deletion_protection
  labels                = local.labels
  # Settings of gcp mode require the tracking URI (the app builds Settings: the API key, its own URL).
  environment = {
    REMARKETING_MODE         = "gcp"
    REMARKETING_API_URL      = module.api.uri
    REMARKETING_TRACKING_URI = module.mlflow.tracking_uri
  }
  secret_environment = {
    REMARKETING_API_KEY = module.secrets.secret_ids["api-key"]
  }

  depends_on = [module.secrets]
}

# The retraining schedule's turn, one job per dataset: POST /retraining on the API with an ID token of the
# scheduler's account. The API retrains on the latest history when it grew since the champion was trained.
resource "google_cloud_scheduler_job" "retraining" {
  for_each = var.retrain_schedule == "" ? toset([]) : toset(var.retrain_datasets)

  project     = var.project_id
  region      = var.region
  name        = "${var.name}-retraining-${each.key}"
  description = "Retrain ${each.key} on its latest history when it has grown (remarketing.retraining)"
  schedule    = var.retrain_schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 2
  }

  http_target {
    http_method = "POST"
    uri         = "${module.api.uri}/retraining?dataset=${each.key}"
    oidc_token {
      service_account_email = local.sa.scheduler
      audience              = local.scheduler_audience
    }
  }

  depends_on = [module.apis]
}
