variable "project_id" {
  description = "Project of the secrets."
  type        = string
}

variable "region" {
  description = "Replica location of the secrets."
  type        = string
}

variable "name" {
  description = "Prefix of the secret ids."
  type        = string
}

variable "generate_values" {
  description = "Generate the secret values (random, stored in state). false = add versions yourself."
  type        = bool
  default     = true
}

variable "kms_key_name" {
  description = "Optional CMEK for the secrets' replica (must be in var.region). null = Google-managed keys."
  type        = string
  default     = null
}

variable "accessors" {
  description = "Who may read which secret: list of {secret = \"api-key\" | \"pseudonym-key\" | \"mlflow-db\" | \"lookup-db\" | \"kfp-db\" | \"grafana-admin\", label, member}."
  type = list(object({
    secret = string
    label  = string
    member = string
  }))
  default = []
}

variable "labels" {
  description = "Labels on the secrets."
  type        = map(string)
  default     = {}
}
