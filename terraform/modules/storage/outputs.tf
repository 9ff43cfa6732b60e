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
