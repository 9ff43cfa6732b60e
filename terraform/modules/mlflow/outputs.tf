output "tracking_uri" {
  description = "MLflow server URL (REMARKETING_TRACKING_URI)."
  value       = module.service.uri
}

output "service_name" {
  description = "Cloud Run service name."
  value       = module.service.name
}

output "sql_instance" {
  description = "Cloud SQL instance connection name."
  value       = google_sql_database_instance.this.connection_name
}
