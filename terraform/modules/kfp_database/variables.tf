variable "project_id" {
  description = "Project of the instance."
  type        = string
}

variable "region" {
  description = "Region of the instance."
  type        = string
}

variable "instance_name" {
  description = "Cloud SQL instance name."
  type        = string
}

variable "database_version" {
  description = "MySQL version (KFP's manifests are tested on MySQL 8.0)."
  type        = string
  default     = "MYSQL_8_0"
}

variable "tier" {
  description = "Machine tier of the instance."
  type        = string
  default     = "db-custom-1-3840"
}

variable "high_availability" {
  description = "Regional (HA) instance."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the instance from deletion (the run history lives here)."
  type        = bool
  default     = true
}

variable "network_id" {
  description = "VPC whose private services access range gives the instance its private IP (modules/network)."
  type        = string
}

variable "private_services_connection" {
  description = "The private services connection (modules/network), so the instance waits for it."
  type        = string
}

variable "databases" {
  description = "Databases of KFP: the pipelines' (pipelineDb), ML Metadata's (mlmdDb) and the cache's (cacheDb)."
  type        = list(string)
  default     = ["mlpipeline", "metadb", "cachedb"]
}

variable "user" {
  description = "The database user KFP logs in as."
  type        = string
  default     = "kfp"
}

variable "password" {
  description = "The user's password (the Secret Manager secret kfp-db, modules/secrets)."
  type        = string
  sensitive   = true
  nullable    = false
}

variable "client_service_account_email" {
  description = "Service account the Cloud SQL Auth Proxy in the cluster runs as (kfp-system)."
  type        = string
}

variable "backup_retention_count" {
  description = "Automated backups kept."
  type        = number
  default     = 14
}

variable "kms_key_name" {
  description = "Optional CMEK of the instance."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels of the instance."
  type        = map(string)
  default     = {}
}
