variable "project_id" {
  description = "Project of the MLflow server and database."
  type        = string
}

variable "region" {
  description = "Region of Cloud SQL and Cloud Run."
  type        = string
}

variable "instance_name" {
  description = "Cloud SQL instance name."
  type        = string
}

variable "service_name" {
  description = "Cloud Run service name."
  type        = string
  default     = "mlflow"
}

variable "image" {
  description = "MLflow server image (mlflow/Dockerfile)."
  type        = string
}

variable "service_account_email" {
  description = "Service account of the server (modules/iam mlflow)."
  type        = string
}

variable "invokers" {
  description = "Map of label => IAM member allowed to call MLflow (the pipelines' service account, data scientists)."
  type        = map(string)
}

variable "network_id" {
  description = "VPC of Cloud SQL's private IP."
  type        = string
}

variable "private_services_connection" {
  description = "Private services access connection id (ordering only)."
  type        = string
}

variable "vpc_subnet_id" {
  description = "Subnet for Cloud Run's Direct VPC egress."
  type        = string
}

variable "artifacts_destination" {
  description = "MLflow artifact root, gs://<artifacts-bucket>/mlflow."
  type        = string
}

variable "db_password" {
  description = "Password of the mlflow database user (from modules/secrets; never set it in code)."
  type        = string
  sensitive   = true
}

variable "db_password_secret_id" {
  description = "Secret Manager secret id holding the same password (read by the server at start)."
  type        = string
}

variable "database_version" {
  description = "Cloud SQL PostgreSQL version."
  type        = string
  default     = "POSTGRES_18"
}

variable "tier" {
  description = "Cloud SQL machine tier."
  type        = string
  default     = "db-custom-1-3840"
}

variable "high_availability" {
  description = "Regional (HA) instance."
  type        = bool
  default     = false
}

variable "backup_retention_count" {
  description = "Automated backups kept."
  type        = number
  default     = 7
}

variable "min_instances" {
  description = "Minimum Cloud Run instances (1 avoids a cold start on the first tracking call of a run)."
  type        = number
  default     = 0
}

variable "kms_key_name" {
  description = "Optional CMEK for Cloud SQL."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the instance and service."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels."
  type        = map(string)
  default     = {}
}
