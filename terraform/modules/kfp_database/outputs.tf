output "connection_name" {
  description = "Instance connection name (project:region:instance), what the Cloud SQL Auth Proxy connects to."
  value       = google_sql_database_instance.this.connection_name
}

output "user" {
  description = "The database user KFP logs in as."
  value       = google_sql_user.kfp.name
}

output "databases" {
  description = "KFP's databases."
  value       = [for d in google_sql_database.this : d.name]
}
