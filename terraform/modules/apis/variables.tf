variable "project_id" {
  description = "Project to enable the APIs in."
  type        = string
}

variable "services" {
  description = "APIs to enable."
  type        = list(string)
  default = [
    "artifactregistry.googleapis.com", # images
    "cloudbuild.googleapis.com",       # release pipeline, Cloud Functions builds
    "cloudfunctions.googleapis.com",   # on_input_file, on_weekly_file (gen2)
    "cloudkms.googleapis.com",         # optional CMEK
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",   # VPC, NAT
    "container.googleapis.com", # GKE (Kubeflow Pipelines, KServe)
    "eventarc.googleapis.com",  # storage triggers
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # signBlob for V4 signed URLs, ID tokens
    "cloudscheduler.googleapis.com", # the retraining schedule
    "iap.googleapis.com",            # IAP in front of the Streamlit app
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com", # Eventarc's transport for storage events
    "run.googleapis.com",    # Cloud Run (API, app, MLflow) and functions gen2
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com", # private IP for Cloud SQL
    "sqladmin.googleapis.com",          # Cloud SQL (MLflow backend store)
    "storage.googleapis.com",
  ]
}
