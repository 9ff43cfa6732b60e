variable "project_id" {
  description = "Project of the cluster."
  type        = string
}

variable "cluster_name" {
  description = "GKE cluster name (modules/gke)."
  type        = string
}

variable "cluster_location" {
  description = "GKE cluster location."
  type        = string
}

variable "kfp_version" {
  description = "Kubeflow Pipelines release (backend). Keep it in step with kfp-server-api in constraints.txt."
  type        = string
  default     = "2.17.3"
}

variable "kserve_version" {
  description = "KServe Helm charts version. Keep it in step with the kserve SDK in constraints.txt."
  type        = string
  default     = "v0.21.0"
}

variable "knative_version" {
  description = "Knative Operator and Serving version."
  type        = string
  default     = "1.21.1"
}

variable "cert_manager_version" {
  description = "cert-manager Helm chart version."
  type        = string
  default     = "v1.17.2"
}

variable "kfp_namespace" {
  description = "Namespace of Kubeflow Pipelines (the upstream manifests' kubeflow)."
  type        = string
  default     = "kubeflow"
}

variable "pipeline_runner_ksa" {
  description = "Kubernetes service account of the KFP run pods (made by KFP's manifests)."
  type        = string
  default     = "pipeline-runner"
}

variable "ui_ksa" {
  description = "Kubernetes service account of KFP's UI (made by KFP's manifests)."
  type        = string
  default     = "ml-pipeline-ui"
}

variable "cloud_sql_proxy_ksa" {
  description = "Kubernetes service account of the Cloud SQL Auth Proxy in front of KFP's database."
  type        = string
  default     = "kubeflow-pipelines-cloudsql-proxy"
}

variable "serving_namespace" {
  description = "Namespace of the InferenceServices."
  type        = string
  default     = "remarketing-serving"
}

variable "predictor_ksa" {
  description = "Kubernetes service account of the predictor pods (serviceAccountName of the InferenceServices)."
  type        = string
  default     = "remarketing-predictor"
}

variable "pipelines_gsa_email" {
  description = "Email of the pipelines service account (Workload Identity of kubeflow/pipeline-runner)."
  type        = string
}

variable "serving_gsa_email" {
  description = "Email of the serving service account (Workload Identity of the predictor pods)."
  type        = string
}

variable "kfp_system_gsa_email" {
  description = "Email of the kfp-system service account (Workload Identity of the Cloud SQL Auth Proxy and of KFP's UI)."
  type        = string
}

variable "kfp_client_emails" {
  description = "Google identities (emails) allowed to call the KFP API through the service proxy: the functions' service account, the release pipeline's deployer."
  type        = list(string)
}

variable "kfp_reader_emails" {
  description = "Google identities (emails) allowed to read KFP through the service proxy (HTTP GET only): the API's service account, which reconciles run records."
  type        = list(string)
  default     = []
}

variable "control_plane_cidr" {
  description = "The GKE control plane's range (modules/gke master_ipv4_cidr_block): the API server's service proxy reaches the KFP API from there."
  type        = string
}

variable "pipeline_root" {
  description = "KFP's default pipeline root: a gs:// folder ending in / (gs://<artifacts>/kfp/), where the run pods write every artifact."
  type        = string

  validation {
    condition     = can(regex("^gs://[a-z0-9][-_.a-z0-9]*/.+/$", var.pipeline_root))
    error_message = "pipeline_root must be a gs://<bucket>/<folder>/ address ending in /."
  }
}

variable "database" {
  description = "KFP's Cloud SQL for MySQL database (modules/kfp_database): the instance connection name (project:region:instance) and the user."
  type = object({
    connection_name = string
    user            = string
  })
}

variable "database_password" {
  description = "Password of KFP's database user (the Secret Manager secret kfp-db, read by modules/cluster)."
  type        = string
  sensitive   = true
  nullable    = false
}

variable "cloud_sql_proxy_image" {
  description = "Cloud SQL Auth Proxy v2 image (the documented Kubernetes examples' image and release)."
  type        = string
  default     = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.19.0"
}

variable "cloud_sql_proxy_replicas" {
  description = "Replicas of the Cloud SQL Auth Proxy."
  type        = number
  default     = 2
}
