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
  description = "Cloud Monitoring: alert policies, notification channel, the functions' log-based metrics (Grafana and the Pushgateway: envs/prod/cluster's outputs)."
  value       = module.platform.observability
}

output "cluster_inputs" {
  description = "Read by the in-cluster root (envs/prod/cluster) through this root's state."
  value       = module.platform.cluster_inputs
}

output "release" {
  description = "The Cloud Build triggers of this environment."
  value       = module.platform.release
}
