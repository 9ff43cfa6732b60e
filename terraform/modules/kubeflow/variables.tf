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

variable "serving_namespace" {
  description = "Namespace of the InferenceServices."
  type        = string
  default     = "remarketing-serving"
}

variable "pipelines_gsa_email" {
  description = "Email of the pipelines service account (Workload Identity of kubeflow/pipeline-runner)."
  type        = string
}

variable "pipelines_gsa_id" {
  description = "Resource id of the pipelines service account."
  type        = string
}

variable "serving_gsa_email" {
  description = "Email of the serving service account (Workload Identity of the predictor pods)."
  type        = string
}

variable "serving_gsa_id" {
  description = "Resource id of the serving service account."
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
