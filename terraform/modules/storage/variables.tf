variable "project_id" {
  description = "Project of the buckets."
  type        = string
}

variable "name" {
  description = "Prefix for custom role ids."
  type        = string
}

variable "location" {
  description = "Bucket location (a region, e.g. europe-west1, or a multi-region such as EU)."
  type        = string
}

variable "landing_bucket_name" {
  description = "Globally unique name of the landing bucket (input/, weekly/; triggers attached)."
  type        = string
}

variable "artifacts_bucket_name" {
  description = "Globally unique name of the artifacts bucket (model-output/, output/, runs/, mlflow/)."
  type        = string
}

variable "kms_key_name" {
  description = "Optional CMEK (projects/P/locations/L/keyRings/R/cryptoKeys/K) for both buckets. null = Google-managed keys."
  type        = string
  default     = null
}

variable "noncurrent_retention_days" {
  description = "Days a superseded (noncurrent) object generation is kept before deletion."
  type        = number
  default     = 30
}

variable "cold_after_days" {
  description = "Days after which uploaded files and scored outputs move to NEARLINE."
  type        = number
  default     = 90
}

variable "weekly_retention_days" {
  description = "Days an uploaded weekly customer file (landing weekly/) is kept: at least as long as a week's outcomes may come back (monitoring reads it)."
  type        = number
  default     = 180
  validation {
    condition     = var.weekly_retention_days >= 30
    error_message = "Keep weekly files at least 30 days: a week's outcomes come back after its campaign."
  }
}

variable "output_retention_days" {
  description = "Days a scored week's customer files (output/<run>/predictions.csv, rejects.csv, contributions.parquet) are kept: the contact list, and monitoring when outcomes come back."
  type        = number
  default     = 180
  validation {
    condition     = var.output_retention_days >= 30
    error_message = "Keep scored files at least 30 days: a week's outcomes come back after its campaign."
  }
}

variable "pipeline_root_retention_days" {
  description = "Days Kubeflow Pipelines' hand-offs between tasks (gs://<artifacts>/kfp/, raw ids included) are kept."
  type        = number
  default     = 14
  validation {
    condition     = var.pipeline_root_retention_days >= 2
    error_message = "Keep the pipeline root at least 2 days: a run still running reads its hand-offs."
  }
}

variable "enable_data_access_audit_logs" {
  description = "Turn on DATA_READ/DATA_WRITE audit logs for Cloud Storage in the project."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on the buckets."
  type        = map(string)
  default     = {}
}

variable "members" {
  description = "IAM members by part (from modules/iam): functions, pipelines, serving, api, mlflow."
  type        = map(string)
}
