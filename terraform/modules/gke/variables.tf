variable "project_id" {
  description = "Project of the cluster."
  type        = string
}

variable "name" {
  description = "Cluster name."
  type        = string
}

variable "location" {
  description = "A zone (zonal cluster, cheaper: dev) or a region (regional control plane and nodes: prod)."
  type        = string
}

variable "network_id" {
  description = "VPC id (modules/network)."
  type        = string
}

variable "subnet_id" {
  description = "Subnet id of the nodes (modules/network)."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range for pods."
  type        = string
}

variable "services_range_name" {
  description = "Secondary range for services."
  type        = string
}

variable "master_ipv4_cidr_block" {
  description = "/28 range of the control plane's private endpoint."
  type        = string
  default     = "172.16.0.0/28"
}

variable "release_channel" {
  description = "GKE release channel."
  type        = string
  default     = "REGULAR"
}

variable "node_service_account" {
  description = "Email of the nodes' service account (modules/iam gke-nodes)."
  type        = string
}

variable "machine_type" {
  description = "Node machine type. KFP (MySQL, object store, controllers), Knative and KServe need about 4 vCPU and 12 GB before any workload."
  type        = string
  default     = "e2-standard-4"
}

variable "disk_size_gb" {
  description = "Node boot disk size."
  type        = number
  default     = 100
}

variable "min_nodes" {
  description = "Minimum nodes per zone of the pool."
  type        = number
  default     = 1
}

variable "max_nodes" {
  description = "Maximum nodes per zone of the pool (training steps and predictor replicas scale into these)."
  type        = number
  default     = 4
}

variable "rbac_security_group" {
  description = "Optional Google Groups for RBAC group (gke-security-groups@<your-domain>)."
  type        = string
  default     = null
}

variable "kms_key_name" {
  description = "Optional CMEK for Kubernetes Secrets (application-layer encryption). null = Google-managed."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse `terraform destroy` of the cluster."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Resource labels."
  type        = map(string)
  default     = {}
}
