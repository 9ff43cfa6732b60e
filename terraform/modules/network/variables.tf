variable "project_id" {
  description = "Project to create the network in."
  type        = string
}

variable "region" {
  description = "Region of the subnets, router and NAT."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "gke_nodes_cidr" {
  description = "Primary range of the GKE subnet (nodes)."
  type        = string
  default     = "10.10.0.0/20"
}

variable "gke_pods_cidr" {
  description = "Secondary range for GKE pods."
  type        = string
  default     = "10.20.0.0/14"
}

variable "gke_services_cidr" {
  description = "Secondary range for GKE services."
  type        = string
  default     = "10.24.0.0/20"
}

variable "serverless_cidr" {
  description = "Subnet used by Cloud Run Direct VPC egress (MLflow to Cloud SQL)."
  type        = string
  default     = "10.30.0.0/24"
}

variable "private_services_prefix_length" {
  description = "Size of the range reserved for private services access (Cloud SQL)."
  type        = number
  default     = 20
}

variable "gke_master_cidr" {
  description = "The GKE control plane's /28 (modules/gke master_ipv4_cidr_block), source of webhook calls."
  type        = string
  default     = "172.16.0.0/28"
}
