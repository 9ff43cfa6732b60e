variable "project_id" {
  description = "Project of the service."
  type        = string
}

variable "region" {
  description = "Region of the service."
  type        = string
}

variable "name" {
  description = "Service name."
  type        = string
}

variable "description" {
  description = "Service description."
  type        = string
  default     = null
}

variable "image" {
  description = "Container image, by digest or immutable tag (<region>-docker.pkg.dev/<project>/<repo>/<image>:<tag>)."
  type        = string
}

variable "args" {
  description = "Container arguments (null = the image's CMD)."
  type        = list(string)
  default     = null
}

variable "service_account_email" {
  description = "Service account the service runs as."
  type        = string
}

variable "access" {
  description = "\"iap\" (people, through Identity-Aware Proxy) or \"invoker\" (IAM run.invoker + ID token)."
  type        = string
  default     = "invoker"

  validation {
    condition     = contains(["iap", "invoker"], var.access)
    error_message = "access must be \"iap\" or \"invoker\"."
  }
}

variable "invokers" {
  description = "Map of label => IAM member granted roles/run.invoker."
  type        = map(string)
  default     = {}
}

variable "iap_members" {
  description = "Map of label => IAM member (user:, group:, domain:) allowed through IAP (access = \"iap\")."
  type        = map(string)
  default     = {}
}

variable "environment" {
  description = "Plain environment variables (no secrets)."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Environment variables read from Secret Manager: map of variable name => secret id (latest version)."
  type        = map(string)
  default     = {}
}

variable "vpc_subnet_id" {
  description = "Subnet for Direct VPC egress to private ranges (null = no VPC access)."
  type        = string
  default     = null
}

variable "cpu" {
  description = "CPU limit."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit."
  type        = string
  default     = "1Gi"
}

variable "concurrency" {
  description = "Requests per instance."
  type        = number
  default     = 40
}

variable "timeout_seconds" {
  description = "Request timeout."
  type        = number
  default     = 300
}

variable "min_instances" {
  description = "Minimum instances (0 = scale to zero)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Maximum instances."
  type        = number
  default     = 5
}

variable "startup_failure_threshold" {
  description = "Startup probe failures (every 5 s) before the instance is replaced."
  type        = number
  default     = 24
}

variable "deletion_protection" {
  description = "Refuse to delete the service."
  type        = bool
  default     = false
}

variable "custom_audiences" {
  description = "Audiences, beside the service's URL, that ID tokens for this service may name (Cloud Scheduler's)."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels."
  type        = map(string)
  default     = {}
}

variable "metrics_sidecar" {
  description = "Managed Prometheus collector sidecar (cloud-run-gmp-sidecar) scraping the service container: its image, the Secret Manager secret holding the RunMonitoring config (mounted as /etc/rungmp/config.yaml), its CPU and memory, and whether CPU stays allocated between requests (recommended for the collector). null = no sidecar."
  type = object({
    image                = string
    config_secret        = string
    cpu                  = optional(string, "1")
    memory               = optional(string, "512Mi")
    cpu_always_allocated = optional(bool, true)
  })
  default = null
}
