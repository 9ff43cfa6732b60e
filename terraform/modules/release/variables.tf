variable "project_id" {
  description = "Project of the triggers (the environment's own)."
  type        = string
}

variable "region" {
  description = "Region of the deployment (_REGION of the builds)."
  type        = string
}

variable "trigger_location" {
  description = "Location of the triggers (global for GitHub repositories connected with the Cloud Build GitHub App)."
  type        = string
  default     = "global"
}

variable "name" {
  description = "Prefix of the triggers' names (e.g. rmk-prod)."
  type        = string
}

variable "environment" {
  description = "Environment the triggers release (dev, prod): the Terraform roots envs/<environment>/infra and cluster."
  type        = string
}

variable "repository" {
  description = "The GitHub repository connected to Cloud Build (the Cloud Build GitHub App) and the branch that is released."
  type = object({
    owner  = string
    name   = string
    branch = string
  })
}

variable "state_bucket" {
  description = "Bucket of the Terraform state, the environment's <env>.tfvars and the saved plans (deployers only)."
  type        = string
  nullable    = false
}

variable "deployer_service_account" {
  description = "Email of the release pipeline's service account the builds run as."
  type        = string
  nullable    = false
}

variable "require_approval" {
  description = "Whether a deploy build waits for an approver (Cloud Build approvalConfig). true for prod."
  type        = bool
}

variable "approvers" {
  description = "IAM members who may approve a pending deploy build (roles/cloudbuild.builds.approver)."
  type        = list(string)
  default     = []
}

variable "smoke_test" {
  description = "Whether the deploy build runs the smoke test (false only until the first model is trained: it scores with the champion)."
  type        = bool
  default     = true
}
