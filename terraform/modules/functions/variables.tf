variable "project_id" {
  description = "Project of the functions."
  type        = string
}

variable "region" {
  description = "Region of the functions."
  type        = string
}

variable "bucket_location" {
  description = "Location of the landing bucket (the trigger region must match it; lower-case region, e.g. europe-west1)."
  type        = string
}

variable "landing_bucket" {
  description = "Name of the landing bucket whose finalized objects trigger the functions."
  type        = string
}

variable "source_root" {
  description = "Folder holding one staged source folder per function (terraform/scripts/stage-functions.sh)."
  type        = string
}

variable "source_bucket_name" {
  description = "Bucket for the functions' source archives."
  type        = string
}

variable "source_retention_days" {
  description = "Days a source archive is kept (old ones only matter for rollbacks)."
  type        = number
  default     = 90
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "memory" {
  description = "Memory of each function instance."
  type        = string
  default     = "1Gi"
}

variable "timeout_seconds" {
  description = "Request timeout (launching a KFP run takes seconds)."
  type        = number
  default     = 120
}

variable "max_instances" {
  description = "Upper bound of concurrent instances per function (each handles one event at a time)."
  type        = number
  default     = 10
}

variable "runtime_service_account_email" {
  description = "Service account the functions run as (modules/iam functions)."
  type        = string
}

variable "trigger_service_account_email" {
  description = "Service account of the Eventarc triggers (modules/iam eventarc)."
  type        = string
}

variable "build_service_account_email" {
  description = "Service account of the functions' builds (modules/iam functions-build)."
  type        = string
}

variable "environment" {
  description = "Environment of the functions: the REMARKETING_* settings for GCP mode (no secrets)."
  type        = map(string)
}

variable "kms_key_name" {
  description = "Optional CMEK for the source bucket."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels."
  type        = map(string)
  default     = {}
}
