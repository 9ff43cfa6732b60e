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

variable "network_id" {
  description = "VPC whose private services access range gives the instance its private IP (modules/network)."
  type        = string
}

variable "private_services_connection" {
  description = "The private services connection (modules/network), so the instance waits for it."
  type        = string
}

variable "database" {
  description = "The lookup's database (REMARKETING_LOOKUP_DB_NAME)."
  type        = string
  default     = "lookup"
}

variable "user" {
  description = "The user publish writes and the API reads as (REMARKETING_LOOKUP_DB_USER)."
  type        = string
  default     = "lookup"
}

variable "password" {
  description = "The user's password (the Secret Manager secret lookup-db, modules/secrets; never set it in code)."
  type        = string
  sensitive   = true
  nullable    = false
}

variable "database_version" {
  description = "Cloud SQL PostgreSQL version."
  type        = string
  default     = "POSTGRES_18"
}

variable "tier" {
  description = "Machine tier (a week's million customers is about 250 MB a run, eight runs kept)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "high_availability" {
  description = "Regional (HA) instance."
  type        = bool
  default     = false
}

variable "backup_retention_count" {
  description = "Automated backups kept (each one more copy of the customers retention removed: few)."
  type        = number
  default     = 3
}

variable "kms_key_name" {
  description = "Optional CMEK of the instance."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the instance."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels of the instance."
  type        = map(string)
  default     = {}
}
