output "serving_namespace" {
  description = "Namespace where InferenceServices are deployed."
  value       = module.cluster.serving_namespace
}

output "pipeline_root" {
  description = "Kubeflow Pipelines' default pipeline root (GCS): every run's artifacts."
  value       = module.cluster.pipeline_root
}

output "observability" {
  description = "Grafana's port-forward command, the in-cluster Pushgateway and query frontend URLs."
  value       = module.cluster.observability
}
