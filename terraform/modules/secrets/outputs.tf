output "secret_ids" {
  description = "Secret ids by key (api-key, pseudonym-key, mlflow-db, lookup-db, kfp-db, grafana-admin)."
  value       = { for k, s in google_secret_manager_secret.this : k => s.secret_id }
}

output "versions" {
  description = "Secret version resource names by key (empty when generate_values = false)."
  value       = { for k, v in google_secret_manager_secret_version.this : k => v.name }
}

output "mlflow_db_password" {
  description = "The generated database password, for the Cloud SQL user (null when not generated)."
  value       = var.generate_values ? random_password.this["mlflow-db"].result : null
  sensitive   = true
}

output "kfp_db_password" {
  description = "The generated password of KFP's database user, for the Cloud SQL user (null when not generated)."
  value       = var.generate_values ? random_password.this["kfp-db"].result : null
  sensitive   = true
}

output "lookup_db_password" {
  description = "The generated password of the lookup table's database user (null when not generated)."
  value       = var.generate_values ? random_password.this["lookup-db"].result : null
  sensitive   = true
}
