terraform {
  required_version = ">= 1.6"

  # State in a GCS bucket of this environment's project that only the deployers can read (it holds the
  # generated secrets); the in-cluster root reads this root's outputs from it:
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="prefix=remarketing/dev/infra"
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.50"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
  }
}
