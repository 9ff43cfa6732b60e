variable "project_id" {
  description = "Project of the repository."
  type        = string
}

variable "region" {
  description = "Repository location (same region as GKE and Cloud Run keeps pulls local)."
  type        = string
}

variable "repository_id" {
  description = "Repository name."
  type        = string
  default     = "remarketing"
}

variable "kms_key_name" {
  description = "Optional CMEK for the repository. null = Google-managed keys."
  type        = string
  default     = null
}

variable "readers" {
  description = "Map of label => IAM member allowed to pull (GKE nodes; Cloud Run pulls through its service agent)."
  type        = map(string)
  default     = {}
}

variable "writers" {
  description = "Map of label => IAM member allowed to push (the release pipeline's service account)."
  type        = map(string)
  default     = {}
}

variable "untagged_retention_days" {
  description = "Untagged image versions older than this are deleted."
  type        = number
  default     = 14
}

variable "keep_recent_versions" {
  description = "Most recent versions of each image always kept."
  type        = number
  default     = 20
}

variable "labels" {
  description = "Labels on the repository."
  type        = map(string)
  default     = {}
}
