variable "project_id" {
  description = "Project the service accounts live in."
  type        = string
}

variable "name" {
  description = "Prefix of the account ids (account ids are 6-30 characters: keep it short, e.g. rmk-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,13}$", var.name))
    error_message = "name must be 3-14 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "cluster_operators" {
  description = "IAM members (user:, group:, serviceAccount:) that may reach the GKE DNS endpoint."
  type        = list(string)
  default     = []
}
