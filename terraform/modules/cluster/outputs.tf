output "serving_namespace" {
  description = "Namespace where InferenceServices are deployed."
  value       = module.kubeflow.serving_namespace
}

output "pipeline_root" {
  description = "Kubeflow Pipelines' default pipeline root (GCS)."
  value       = module.kubeflow.pipeline_root
}

output "observability" {
  description = "Grafana's port-forward command, the in-cluster Pushgateway and query frontend URLs."
  value = {
    grafana         = module.observability.grafana
    pushgateway_url = module.observability.pushgateway_url
    frontend_url    = module.observability.frontend_url
  }
}
