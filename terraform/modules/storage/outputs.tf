output "landing_bucket" {
  description = "Landing bucket name."
  value       = google_storage_bucket.landing.name
}

output "artifacts_bucket" {
  description = "Artifacts bucket name."
  value       = google_storage_bucket.artifacts.name
}

output "mlflow_artifacts_uri" {
  description = "MLflow's artifact root."
  value       = "gs://${google_storage_bucket.artifacts.name}/mlflow"
}

output "pipeline_root" {
  description = "Kubeflow Pipelines' default pipeline root (gs://<artifacts>/kfp/): granted to the pipelines account (write) and kfp-system (read)."
  value       = "gs://${google_storage_bucket.artifacts.name}/${local.pipeline_root_prefix}"
}
