output "emails" {
  description = "Service account emails by part (functions, eventarc, functions-build, pipelines, serving, api, app, mlflow, gke-nodes, scheduler, gmp-frontend)."
  value       = { for k, sa in google_service_account.this : k => sa.email }
}

output "members" {
  description = "IAM member strings (serviceAccount:...) by part."
  value       = { for k, sa in google_service_account.this : k => sa.member }
}

output "ids" {
  description = "Service account resource ids by part (for service-account-level IAM)."
  value       = { for k, sa in google_service_account.this : k => sa.name }
}
