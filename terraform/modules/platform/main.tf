# The Google infrastructure of one environment, on a project of its own, composed from the modules beside
# this one: the infrastructure root (envs/<env>/infra) applies it. What runs inside the GKE cluster is the
# in-cluster root's (envs/<env>/cluster, modules/cluster), a second apply with its own state, which reads
# this root's output cluster_inputs: the names decided here (namespaces, Kubernetes service accounts, the
# Pushgateway's address) are the ones both sides use. envs/dev and envs/prod call it with their own sizes and
# protections, so the two environments cannot drift apart in shape, only in the values they are given.
#
# One project per environment: everything here that exists once per project (the Cloud Storage audit
# config, custom roles, project-level grants, Eventarc's publisher, log-based metrics) belongs to this
# environment alone, so destroying dev can never touch prod. The project must say which environment it
# is for (label remarketing-environment), or the plan stops (data.google_project.this).

locals {
  labels = merge(var.labels, {
    app         = "remarketing"
    environment = var.environment
  })

  landing_bucket   = coalesce(var.landing_bucket_name, "${var.project_id}-${var.name}-landing")
  artifacts_bucket = coalesce(var.artifacts_bucket_name, "${var.project_id}-${var.name}-artifacts")
  bucket_location  = coalesce(var.bucket_location, var.region)

  registry = module.registry.repository_url
  # Every image by digest, looked up from the release's tag (pushed before the plan): what is deployed is
  # exactly what was tested and pushed, and Knative, which resolves a tag with its controller's own identity
  # (no access to this private registry), never has to resolve one for the predictor.
  images = {
    components = data.google_artifact_registry_docker_image.release["components"].self_link
    serving    = data.google_artifact_registry_docker_image.release["serving"].self_link
    api        = data.google_artifact_registry_docker_image.release["api"].self_link
    app        = data.google_artifact_registry_docker_image.release["app"].self_link
    mlflow     = data.google_artifact_registry_docker_image.release["mlflow"].self_link
  }

  sa = module.iam.emails
  m  = module.iam.members

  deployer_member = var.deployer_service_account == null ? null : "serviceAccount:${var.deployer_service_account}"

  # The GKE control plane's range: the cluster is made with it, the firewall opens the webhook and KFP ports
  # from it, and the KFP API's NetworkPolicy lets the API server's service proxy in from it.
  control_plane_cidr = "172.16.0.0/28"

  # Names inside the cluster, decided here: the Workload Identity bindings below and the settings use them,
  # the in-cluster root makes the namespaces and service accounts with them (cluster_inputs).
  k8s = {
    kfp_namespace       = "kubeflow"
    pipeline_runner_ksa = "pipeline-runner"
    kfp_ui_ksa          = "ml-pipeline-ui"
    cloud_sql_proxy_ksa = "kubeflow-pipelines-cloudsql-proxy"
    serving_namespace   = "remarketing-serving"
    predictor_ksa       = "remarketing-predictor"
    monitoring          = "monitoring"
    frontend_ksa        = "gmp-frontend"
  }
  pushgateway = {
    release = "pushgateway"
    port    = 9091
  }
  pushgateway_url = "http://${local.pushgateway.release}.${local.k8s.monitoring}.svc.cluster.local:${local.pushgateway.port}"

  # The KFP API behind the API server's service proxy, through the cluster's DNS endpoint.
  kfp_proxy_path = "/api/v1/namespaces/${local.k8s.kfp_namespace}/services/ml-pipeline:8888/proxy"
  kfp_host       = "https://${module.gke.dns_endpoint}${local.kfp_proxy_path}"

  # The audience of Cloud Scheduler's ID tokens for POST /retraining (a custom audience of the API: its
  # own URL would make the API's settings depend on the API).
  scheduler_audience = "${var.name}-retraining"

  # The audience of the assertions IAP signs for the app (IAP on the Cloud Run service itself): the app
  # verifies the person's assertion and forwards it, the API verifies it again. Empty without IAP.
  app_iap_audience = var.app_access == "iap" ? "/projects/${data.google_project.this.number}/locations/${var.region}/services/${var.name}-app" : ""

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
    REMARKETING_SERVING_NAMESPACE       = local.k8s.serving_namespace
    REMARKETING_SERVING_SERVICE_ACCOUNT = local.k8s.predictor_ksa
    # Scale: the score step's shards, and the InferenceService's replicas (docs/sizing.md).
    REMARKETING_SCORING_SHARDS             = tostring(var.scoring_shards)
    REMARKETING_SERVING_MIN_REPLICAS       = tostring(var.serving_min_replicas)
    REMARKETING_SERVING_MAX_REPLICAS       = tostring(var.serving_max_replicas)
    REMARKETING_SERVING_CONCURRENCY_TARGET = tostring(var.serving_concurrency_target)
    # Pipeline runs push their figures to the in-cluster Pushgateway. The functions and the API pass their
    # settings to the runs they launch (Settings.for_pipeline), so the runs get it from here.
    REMARKETING_PUSHGATEWAY_URL = local.pushgateway_url
    # The customer lookup table (modules/lookup_database): publish writes it, the API reads it, over TLS to
    # the instance's private IP.
    REMARKETING_LOOKUP_DB_HOST    = module.lookup_database.host
    REMARKETING_LOOKUP_DB_NAME    = module.lookup_database.database
    REMARKETING_LOOKUP_DB_USER    = module.lookup_database.user
    REMARKETING_LOOKUP_DB_SSLMODE = "require"
    # The secrets a run's tasks read themselves, as the pipelines' service account (components/runner.py):
    # their names travel with the run, their values never do (KFP shows and keeps run parameters).
    REMARKETING_CUSTOMER_ID_KEY_SECRET    = "projects/${var.project_id}/secrets/${module.secrets.secret_ids["pseudonym-key"]}"
    REMARKETING_LOOKUP_DB_PASSWORD_SECRET = "projects/${var.project_id}/secrets/${module.secrets.secret_ids["lookup-db"]}"
  }

  # What the in-cluster root needs from this one (output cluster_inputs, read through its remote state).
  cluster_inputs = {
    project_id         = var.project_id
    region             = var.region
    environment        = var.environment
    cluster            = { name = module.gke.name, location = module.gke.location, dns_endpoint = module.gke.dns_endpoint }
    control_plane_cidr = local.control_plane_cidr
    k8s                = local.k8s
    pushgateway        = local.pushgateway
    versions = {
      kfp          = var.kfp_version
      kserve       = var.kserve_version
      knative      = var.knative_version
      cert_manager = var.cert_manager_version
    }
    service_accounts = {
      pipelines      = local.sa.pipelines
      serving        = local.sa.serving
      kfp_system     = local.sa["kfp-system"]
      query_frontend = local.sa["gmp-frontend"]
    }
    # Who may use the KFP API's service proxy (RBAC): the functions and the deployer create runs and
    # pipeline versions, the API reads runs.
    kfp_client_emails = compact([local.sa.functions, var.deployer_service_account])
    kfp_reader_emails = [local.sa.api]
    pipeline_root     = module.storage.pipeline_root
    kfp_database      = { connection_name = module.kfp_database.connection_name, user = module.kfp_database.user }
    secrets = {
      kfp_db        = module.secrets.secret_ids["kfp-db"]
      grafana_admin = module.secrets.secret_ids["grafana-admin"]
    }
    # The Pushgateway sweep runs the components image with the runs' settings.
    components_image = local.images.components
    settings         = local.settings
  }
}

# One project per environment: the project carries the label remarketing-environment = <environment>
# (`gcloud projects update <project> --update-labels=remarketing-environment=<env>`, docs/deploy.md), and a
# plan against a project labelled for another environment, or for none, stops here.
data "google_project" "this" {
  project_id = var.project_id

  lifecycle {
    postcondition {
      condition     = try(self.labels["remarketing-environment"], "") == var.environment
      error_message = "Project ${var.project_id} is not labelled remarketing-environment=${var.environment}: each environment has a project of its own (docs/deploy.md, step 1)."
    }
  }
}

# The five images' digests, looked up from the release's tag.
data "google_artifact_registry_docker_image" "release" {
  for_each = toset(["components", "serving", "api", "app", "mlflow"])

  project       = var.project_id
  location      = var.region
  repository_id = module.registry.repository_id
  image_name    = "${each.key}:${var.image_tag}"
}

module "apis" {
  source     = "../apis"
  project_id = var.project_id
}

module "network" {
  source          = "../network"
  project_id      = var.project_id
  region          = var.region
  name            = var.name
  gke_master_cidr = local.control_plane_cidr

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
  # How long customers' files are kept (docs/personal-data.md).
  weekly_retention_days        = var.weekly_retention_days
  output_retention_days        = var.output_retention_days
  pipeline_root_retention_days = var.pipeline_root_retention_days
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
  # The API reads its key, the pseudonym key (the HMAC key of customer ids, docs/personal-data.md) and the
  # lookup table's password; the pipelines' tasks read the same pseudonym key (one pseudonym per customer
  # in every part) and the lookup's password (publish writes the table).
  accessors = concat(
    [for name in ["api-key", "pseudonym-key", "lookup-db"] : { secret = name, label = "api", member = local.m.api }],
    [for name in ["pseudonym-key", "lookup-db"] : { secret = name, label = "pipelines", member = local.m.pipelines }],
    [
      { secret = "api-key", label = "app", member = local.m.app },
      { secret = "mlflow-db", label = "mlflow", member = local.m.mlflow },
    ],
    # The release: the smoke test calls the API with its key; the in-cluster root reads KFP's database
    # password and Grafana's admin password into the cluster's Secrets.
    local.deployer_member == null ? [] : [
      for name in ["api-key", "kfp-db", "grafana-admin"] : { secret = name, label = "deployer", member = local.deployer_member }
    ],
  )

  depends_on = [module.apis]
}

module "gke" {
  source                 = "../gke"
  project_id             = var.project_id
  name                   = "${var.name}-kfp"
  location               = var.gke_location
  master_ipv4_cidr_block = local.control_plane_cidr
  network_id             = module.network.network_id
  subnet_id              = module.network.gke_subnet_id
  pods_range_name        = module.network.gke_pods_range_name
  services_range_name    = module.network.gke_services_range_name
  node_service_account   = local.sa["gke-nodes"]
  machine_type           = var.gke_machine_type
  min_nodes              = var.gke_min_nodes
  max_nodes              = var.gke_max_nodes
  rbac_security_group    = var.gke_rbac_security_group
  kms_key_name           = var.kms_key_name
  deletion_protection    = var.deletion_protection
  labels                 = local.labels
}

# Workload Identity: the Kubernetes service accounts the in-cluster root makes (or KFP's manifests do) act
# as these Google service accounts. Google IAM, so here; the names are local.k8s, which the in-cluster
# root is given.
locals {
  workload_identities = {
    pipeline-runner = { gsa = "pipelines", ksa = "${local.k8s.kfp_namespace}/${local.k8s.pipeline_runner_ksa}" }
    predictor       = { gsa = "serving", ksa = "${local.k8s.serving_namespace}/${local.k8s.predictor_ksa}" }
    cloud-sql-proxy = { gsa = "kfp-system", ksa = "${local.k8s.kfp_namespace}/${local.k8s.cloud_sql_proxy_ksa}" }
    kfp-ui          = { gsa = "kfp-system", ksa = "${local.k8s.kfp_namespace}/${local.k8s.kfp_ui_ksa}" }
  }
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each = local.workload_identities

  service_account_id = module.iam.ids[each.value.gsa]
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${each.value.ksa}]"
}

# Kubeflow Pipelines' database: runs, experiments, pipeline versions and ML Metadata outside the cluster.
module "kfp_database" {
  source                       = "../kfp_database"
  project_id                   = var.project_id
  region                       = var.region
  instance_name                = "${var.name}-kfp"
  network_id                   = module.network.network_id
  private_services_connection  = module.network.private_services_connection
  password                     = module.secrets.kfp_db_password
  client_service_account_email = local.sa["kfp-system"]
  tier                         = var.kfp_sql_tier
  high_availability            = var.sql_high_availability
  deletion_protection          = var.deletion_protection
  kms_key_name                 = var.kms_key_name
  labels                       = local.labels
}

# The customer lookup table (GET /customers/{id}): PostgreSQL of its own, private IP only.
module "lookup_database" {
  source                      = "../lookup_database"
  project_id                  = var.project_id
  region                      = var.region
  instance_name               = "${var.name}-lookup"
  network_id                  = module.network.network_id
  private_services_connection = module.network.private_services_connection
  password                    = module.secrets.lookup_db_password
  tier                        = var.sql_tier
  high_availability           = var.sql_high_availability
  deletion_protection         = var.deletion_protection
  kms_key_name                = var.kms_key_name
  labels                      = local.labels
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

# Managed Service for Prometheus, the Google side: the API's collector config, log-based metrics of the
# functions, alert policies from the rule file and on the delivery of storage events, the query frontend's
# Google identity. (The Pushgateway, the scrape targets and Grafana are the in-cluster root's.)
module "observability" {
  source                    = "../observability"
  project_id                = var.project_id
  region                    = var.region
  name                      = var.name
  namespace                 = local.k8s.monitoring
  frontend_ksa              = local.k8s.frontend_ksa
  frontend_gsa_email        = local.sa["gmp-frontend"]
  frontend_gsa_id           = module.iam.ids["gmp-frontend"]
  api_service_account_email = local.sa.api
  function_names            = module.functions.function_names
  alert_email               = var.alert_email
  kms_key_name              = var.kms_key_name
  labels                    = local.labels

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
  # The app, Cloud Scheduler's retraining turn and the release's smoke test (cli/smoke.py) call the API.
  invokers = merge(
    { app = local.m.app, scheduler = local.m.scheduler },
    local.deployer_member == null ? {} : { deployer = local.deployer_member },
    { for i, member in var.api_users : "user-${i}" => member },
  )
  max_instances       = var.api_max_instances
  deletion_protection = var.deletion_protection
  labels              = local.labels
  custom_audiences    = [local.scheduler_audience]
  # Direct VPC egress (private ranges only) reaches the lookup table's private IP.
  vpc_subnet_id = module.network.serverless_subnet_id
  environment = merge(local.settings, {
    REMARKETING_SIGNING_SERVICE_ACCOUNT = local.sa.api
    # POST /retraining takes Cloud Scheduler's ID token of this account, minted for this audience,
    # instead of the API key (Cloud Run checks the audience too: custom_audiences).
    REMARKETING_SCHEDULER_SERVICE_ACCOUNT = local.sa.scheduler
    REMARKETING_SCHEDULER_AUDIENCE        = local.scheduler_audience
    REMARKETING_RETRAIN_SCHEDULE          = var.retrain_schedule
    # The app forwards the IAP assertion of the person signed in to it; the API verifies it for the app's
    # audience and acts with the role the access book binds the email to (empty without IAP: keys only).
    REMARKETING_IAP_AUDIENCE = local.app_iap_audience
  })
  secret_environment = {
    REMARKETING_API_KEY            = module.secrets.secret_ids["api-key"]
    REMARKETING_CUSTOMER_ID_KEY    = module.secrets.secret_ids["pseudonym-key"]
    REMARKETING_LOOKUP_DB_PASSWORD = module.secrets.secret_ids["lookup-db"]
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
    # Behind IAP the app acts as the person signed in (their verified assertion, forwarded to the API),
    # never with the API key; empty (app_access = "invoker"): the key, as everyone's.
    REMARKETING_IAP_AUDIENCE = local.app_iap_audience
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

# The release: Cloud Build triggers of this environment (cloudbuild.yaml, cloudbuild-deploy.yaml), the deploy
# waiting for an approval where var.require_approval (prod).
module "release" {
  source = "../release"
  count  = var.release_repository == null ? 0 : 1

  project_id               = var.project_id
  region                   = var.region
  name                     = var.name
  environment              = var.environment
  repository               = var.release_repository
  state_bucket             = var.state_bucket
  deployer_service_account = var.deployer_service_account
  require_approval         = var.require_approval
  approvers                = var.release_approvers
  smoke_test               = var.release_smoke_test

  depends_on = [module.apis]
}
