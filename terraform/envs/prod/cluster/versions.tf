terraform {
  required_version = ">= 1.6"

  # State beside the infrastructure root's, in the same bucket (its outputs are read from there):
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="prefix=remarketing/prod/cluster"
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.38"
    }
  }
}
