provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

# Kubernetes and Helm reach the cluster through its DNS-based endpoint (IAM-checked, publicly trusted
# certificate) with the caller's Google access token: the machine running Terraform needs no VPN and no
# kubeconfig.
data "google_client_config" "current" {}

provider "kubernetes" {
  host  = "https://${module.platform.cluster.dns_endpoint}"
  token = data.google_client_config.current.access_token
}

provider "helm" {
  kubernetes {
    host  = "https://${module.platform.cluster.dns_endpoint}"
    token = data.google_client_config.current.access_token
  }
}
