output "serving_namespace" {
  description = "Namespace of the InferenceServices."
  value       = kubernetes_namespace.serving.metadata[0].name
}

output "predictor_service_account" {
  description = "Kubernetes service account to set as serviceAccountName in the InferenceService."
  value       = kubernetes_service_account.predictor.metadata[0].name
}

output "pipeline_runner" {
  description = "Kubernetes service account of the KFP run pods (Workload Identity of the pipelines service account): namespace and name."
  value = {
    namespace       = kubernetes_annotations.pipeline_runner.metadata[0].namespace
    service_account = kubernetes_annotations.pipeline_runner.metadata[0].name
  }
}

output "pipeline_root" {
  description = "KFP's default pipeline root (kfp-launcher's defaultPipelineRoot)."
  value       = var.pipeline_root
}
