output "landing_bucket" {
  description = "Landing bucket: drop training files under input/; the app uploads weekly files under weekly/."
  value       = module.platform.landing_bucket
}

output "artifacts_bucket" {
  description = "Artifacts bucket: model-output/, output/, runs/, mlflow/."
  value       = module.platform.artifacts_bucket
}

output "registry" {
  description = "Artifact Registry prefix (push images here)."
  value       = module.platform.registry
}

output "images" {
  description = "Image references deployed."
  value       = module.platform.images
}

output "app_url" {
  description = "Streamlit app."
  value       = module.platform.app_url
}

output "api_url" {
  description = "API."
  value       = module.platform.api_url
}

output "mlflow_url" {
  description = "MLflow (IAM invoker: `gcloud run services proxy <name> --region <region>`)."
  value       = module.platform.mlflow_url
}

output "kfp_host" {
  description = "REMARKETING_KFP_HOST: the KFP API through the GKE DNS endpoint."
  value       = module.platform.kfp_host
}

output "cluster" {
  description = "GKE cluster (name, location, dns_endpoint). KFP UI: kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80."
  value       = module.platform.cluster
}

output "service_accounts" {
  description = "Service account per part."
  value       = module.platform.service_accounts
}

output "settings" {
  description = "REMARKETING_* settings of GCP mode (export them to run the CLI against this deployment)."
  value       = module.platform.settings
}

output "secret_ids" {
  description = "Secret Manager secret ids."
  value       = module.platform.secret_ids
}

output "observability" {
  description = "Managed Prometheus and Grafana: Grafana's port-forward command, in-cluster Pushgateway and query frontend URLs, alert policies, notification channel, the functions' log-based metrics."
  value       = module.platform.observability
}
