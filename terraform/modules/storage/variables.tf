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
