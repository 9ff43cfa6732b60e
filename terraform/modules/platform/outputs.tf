output "landing_bucket" {
  description = "Landing bucket: drop training files under input/, weekly files arrive under weekly/."
  value       = module.storage.landing_bucket
}

output "artifacts_bucket" {
  description = "Artifacts bucket: model-output/, output/, runs/, mlflow/."
  value       = module.storage.artifacts_bucket
}

output "registry" {
  description = "Artifact Registry prefix for the images."
  value       = module.registry.repository_url
}

output "images" {
  description = "Image references this deployment uses."
  value       = local.images
}

output "api_url" {
  description = "API URL (IAM invoker)."
  value       = module.api.uri
}

output "app_url" {
  description = "Streamlit app URL (IAP or IAM invoker)."
  value       = module.app.uri
}

output "mlflow_url" {
  description = "MLflow tracking server URL (IAM invoker; `gcloud run services proxy` for the UI)."
  value       = module.mlflow.tracking_uri
}

output "kfp_host" {
  description = "KFP API address for kfp.Client(host=...) through the GKE DNS endpoint and the API server's service proxy (send a Google access token)."
  value       = local.kfp_host
}

output "cluster" {
  description = "GKE cluster name, location and DNS endpoint."
  value = {
    name         = module.gke.name
    location     = module.gke.location
    dns_endpoint = module.gke.dns_endpoint
  }
}

output "service_accounts" {
  description = "Service account emails by part."
  value       = module.iam.emails
}

output "functions" {
  description = "Deployed Cloud Functions."
  value       = module.functions.function_names
}

output "settings" {
  description = "REMARKETING_* environment of GCP mode (no secrets)."
  value       = local.settings
}

output "secret_ids" {
  description = "Secret Manager secret ids (api-key, mlflow-db, grafana-admin)."
  value       = module.secrets.secret_ids
}

output "observability" {
  description = "Cloud Monitoring's side: the alert policies and their notification channel, the functions' log-based metrics (Grafana and the Pushgateway: the in-cluster root's outputs)."
  value = {
    alert_policies       = module.observability.alert_policies
    notification_channel = module.observability.notification_channel
    log_metrics          = module.observability.log_metrics
  }
}

output "cluster_inputs" {
  description = "What the in-cluster root (envs/<env>/cluster, modules/cluster) reads from this one's state: the cluster, the names inside it, the service accounts to bind, KFP's database and pipeline root, the images and settings of the Pushgateway sweep. No secret: the in-cluster root reads those from Secret Manager."
  value       = local.cluster_inputs
}

output "release" {
  description = "The Cloud Build triggers of this environment (null without release_repository)."
  value       = one(module.release[*].triggers)
}
