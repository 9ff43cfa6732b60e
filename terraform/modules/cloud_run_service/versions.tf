terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.40, < 7.0"
    }
    # IAP directly on a Cloud Run service (iap_enabled, google_iap_web_cloud_run_service_iam_member) is in
    # the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.40, < 7.0"
    }
  }
}
