variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the regional resources."
  type        = string
  default     = "europe-west1"
}

variable "image_tag" {
  description = "Tag of the images to deploy (the release pipeline passes the commit SHA)."
  type        = string
}

variable "functions_source_root" {
  description = "Staged function sources (terraform/scripts/stage-functions.sh)."
  type        = string
  default     = "../../../../build/functions"
}

variable "kms_key_name" {
  description = "Optional CMEK key for data at rest. null = Google-managed keys."
  type        = string
  default     = null
}

variable "app_access" {
  description = "\"iap\" (needs an organization) or \"invoker\"."
  type        = string
  default     = "iap"
}

variable "app_users" {
  description = "Members allowed to open the Streamlit app (e.g. group:marketing@example.com)."
  type        = list(string)
  default     = []
}

variable "api_users" {
  description = "Members allowed to call the API directly."
  type        = list(string)
  default     = []
}

variable "mlflow_users" {
  description = "Members allowed to open MLflow (e.g. group:data-science@example.com)."
  type        = list(string)
  default     = []
}

variable "cluster_operators" {
  description = "Members allowed to reach the GKE DNS endpoint."
  type        = list(string)
  default     = []
}

variable "deployer_service_account" {
  description = "Email of the release pipeline's service account (null = none)."
  type        = string
  default     = null
}

variable "gke_rbac_security_group" {
  description = "Optional gke-security-groups@<domain> for Google Groups RBAC."
  type        = string
  default     = null
}

variable "alert_email" {
  description = "Email address the alert policies notify (e.g. an on-call list). null = incidents in the console only."
  type        = string
  default     = null
}

variable "state_bucket" {
  description = "Bucket of this root's state (and the saved plans, <env>.tfvars): the release triggers read it."
  type        = string
  default     = null
}

variable "release_repository" {
  description = "GitHub repository connected to Cloud Build, and the branch to release: {owner, name, branch}. null = no triggers."
  type = object({
    owner  = string
    name   = string
    branch = string
  })
  default = null
}

variable "release_approvers" {
  description = "Members who may approve a pending deploy build (e.g. group:platform@example.com)."
  type        = list(string)
  default     = []
}

variable "release_smoke_test" {
  description = "Whether each deploy runs the smoke test; false only until the first model is trained (docs/deploy.md)."
  type        = bool
  default     = true
}
