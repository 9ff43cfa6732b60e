variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of every regional resource (Cloud Run, functions, Cloud SQL, Artifact Registry, subnets)."
  type        = string
  default     = "europe-west1"
}

variable "environment" {
  description = "Environment label (dev, prod)."
  type        = string
}

variable "name" {
  description = "Short prefix of resource names, unique per environment in the project (3-14 chars), e.g. rmk-dev."
  type        = string
}

variable "image_tag" {
  description = "Tag of the five images in Artifact Registry (the release pipeline uses the commit SHA). Tags are immutable."
  type        = string
}

variable "landing_bucket_name" {
  description = "Landing bucket name (null = <project>-<name>-landing)."
  type        = string
  default     = null
}

variable "artifacts_bucket_name" {
  description = "Artifacts bucket name (null = <project>-<name>-artifacts)."
  type        = string
  default     = null
}

variable "bucket_location" {
  description = "Location of the two buckets (null = var.region; a regional bucket keeps Eventarc in one region)."
  type        = string
  default     = null
}

variable "kms_key_name" {
  description = "Optional CMEK for buckets, registry, secrets, GKE secrets and Cloud SQL (the key must be in var.region and the service agents allowed to use it). null = Google-managed keys."
  type        = string
  default     = null
}

variable "gke_location" {
  description = "Zone (zonal cluster) or region (regional cluster) of GKE."
  type        = string
}

variable "gke_machine_type" {
  description = "GKE node machine type."
  type        = string
  default     = "e2-standard-4"
}

variable "gke_min_nodes" {
  description = "Minimum nodes per zone."
  type        = number
  default     = 1
}

variable "gke_max_nodes" {
  description = "Maximum nodes per zone."
  type        = number
  default     = 4
}

variable "gke_rbac_security_group" {
  description = "Optional Google Groups for RBAC group (gke-security-groups@<domain>)."
  type        = string
  default     = null
}

variable "kfp_version" {
  description = "Kubeflow Pipelines backend release (match kfp-server-api in constraints.txt)."
  type        = string
  default     = "2.17.3"
}

variable "kserve_version" {
  description = "KServe chart version (match the kserve SDK in constraints.txt)."
  type        = string
  default     = "v0.21.0"
}

variable "knative_version" {
  description = "Knative Operator / Serving version."
  type        = string
  default     = "1.21.1"
}

variable "cert_manager_version" {
  description = "cert-manager chart version."
  type        = string
  default     = "v1.17.2"
}

variable "sql_tier" {
  description = "Cloud SQL tier of the MLflow database and of the customer lookup table's."
  type        = string
  default     = "db-custom-1-3840"
}

variable "weekly_retention_days" {
  description = "Days an uploaded weekly customer file is kept (docs/personal-data.md)."
  type        = number
  default     = 180
}

variable "output_retention_days" {
  description = "Days a scored week's customer files (predictions.csv, rejects.csv, contributions.parquet) are kept."
  type        = number
  default     = 180
}

variable "pipeline_root_retention_days" {
  description = "Days the pipelines' hand-offs between tasks (gs://<artifacts>/kfp/) are kept."
  type        = number
  default     = 14
}

variable "sql_high_availability" {
  description = "Regional (HA) Cloud SQL instance."
  type        = bool
  default     = false
}

variable "functions_source_root" {
  description = "Folder with the staged function sources (terraform/scripts/stage-functions.sh writes build/functions)."
  type        = string
}

variable "app_access" {
  description = "How people reach the Streamlit app: \"iap\" (Identity-Aware Proxy; the project must be in an organization) or \"invoker\" (IAM; use `gcloud run services proxy`)."
  type        = string
  default     = "iap"
}

variable "app_users" {
  description = "IAM members (user:, group:, domain:) allowed to open the Streamlit app."
  type        = list(string)
  default     = []
}

variable "api_users" {
  description = "IAM members allowed to call the API directly (besides the app's service account)."
  type        = list(string)
  default     = []
}

variable "mlflow_users" {
  description = "IAM members allowed to open MLflow (besides the pipelines' service account)."
  type        = list(string)
  default     = []
}

variable "cluster_operators" {
  description = "IAM members allowed to reach the GKE DNS endpoint (grant Kubernetes permissions separately, e.g. roles/container.developer)."
  type        = list(string)
  default     = []
}

variable "deployer_service_account" {
  description = "Email of the release pipeline's service account (pushes images, uploads pipelines). null = none."
  type        = string
  default     = null
}

variable "api_max_instances" {
  description = "Maximum API instances."
  type        = number
  default     = 5
}

variable "scoring_shards" {
  description = "Score tasks a scoring run fans out to (dsl.ParallelFor); docs/sizing.md."
  type        = number
  default     = 4
}

variable "serving_min_replicas" {
  description = "InferenceService replicas kept warm (0: scale to zero between runs)."
  type        = number
  default     = 0
}

variable "serving_max_replicas" {
  description = "InferenceService replicas at most."
  type        = number
  default     = 4
}

variable "serving_concurrency_target" {
  description = "In-flight requests per replica before Knative adds one."
  type        = number
  default     = 4
}

variable "app_max_instances" {
  description = "Maximum Streamlit instances."
  type        = number
  default     = 3
}

variable "deletion_protection" {
  description = "Protect the cluster, database and services from deletion."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Extra labels on every labelled resource."
  type        = map(string)
  default     = {}
}

variable "retrain_schedule" {
  description = "Cron expression (UTC) of the retraining schedule's turn; empty: retraining only after monitoring runs."
  type        = string
  default     = "0 6 * * 1"
}

variable "retrain_datasets" {
  description = "Datasets whose history the schedule retrains on."
  type        = list(string)
  default     = ["bank-marketing"]
}

variable "alert_email" {
  description = "Email address the alert policies (made from observability/rules/remarketing.rules.yml) notify. null = no notification channel: incidents show in the console only."
  type        = string
  default     = null
}

variable "cloud_run_gmp_sidecar_image" {
  description = "Managed Prometheus collector sidecar of the API's Cloud Run service (the documented image and release)."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}

variable "api_metrics_cpu_always_allocated" {
  description = "Keep the API's CPU allocated between requests (instance-based billing), as recommended with the collector sidecar so that its scrapes are not throttled. false = request-based billing, some scrapes between requests may fail."
  type        = bool
  default     = true
}

variable "kfp_sql_tier" {
  description = "Cloud SQL tier of Kubeflow Pipelines' database (runs, experiments, ML Metadata)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "state_bucket" {
  description = "Bucket of the Terraform state, the environment's <env>.tfvars and the saved plans (the release builds read them)."
  type        = string
  default     = null
}

variable "release_repository" {
  description = "GitHub repository (connected to Cloud Build) and branch the release triggers build; null = no triggers (release with gcloud builds submit, docs/deploy.md)."
  type = object({
    owner  = string
    name   = string
    branch = string
  })
  default = null

  validation {
    condition     = var.release_repository == null || try(length(var.release_repository.branch) > 0, false)
    error_message = "release_repository needs owner, name and branch."
  }
}

variable "require_approval" {
  description = "Whether a deploy build of this environment waits for an approver before it applies (Cloud Build approvalConfig)."
  type        = bool
  default     = true
}

variable "release_approvers" {
  description = "IAM members who may approve a pending deploy build (roles/cloudbuild.builds.approver)."
  type        = list(string)
  default     = []
}

variable "release_smoke_test" {
  description = "Whether each deploy runs the smoke test (cli/smoke.py); false only until the first model is trained (it scores with the champion)."
  type        = bool
  default     = true
}
