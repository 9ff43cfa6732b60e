# Kubernetes and Helm reach the cluster through its DNS-based endpoint (IAM-checked, publicly trusted
# certificate) made by the infrastructure root. Credentials come from the exec credential plugin
# gke-gcloud-auth-plugin (gcloud's account: the deploy build's service account, or yours), which is asked
# again whenever the last token expires: an apply can last longer than any one token. Never a static token.
locals {
  cluster = data.terraform_remote_state.infra.outputs.cluster_inputs.cluster
}

provider "google" {
  project = data.terraform_remote_state.infra.outputs.cluster_inputs.project_id
  region  = data.terraform_remote_state.infra.outputs.cluster_inputs.region
}

provider "kubernetes" {
  host = "https://${local.cluster.dns_endpoint}"
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "gke-gcloud-auth-plugin"
  }
}

provider "helm" {
  kubernetes {
    host = "https://${local.cluster.dns_endpoint}"
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "gke-gcloud-auth-plugin"
    }
  }
}
