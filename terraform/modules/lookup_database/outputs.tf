output "host" {
  description = "The instance's private IP (REMARKETING_LOOKUP_DB_HOST)."
  value       = google_sql_database_instance.this.private_ip_address
}

output "database" {
  description = "The lookup's database (REMARKETING_LOOKUP_DB_NAME)."
  value       = google_sql_database.lookup.name
}

output "user" {
  description = "The user publish writes and the API reads as (REMARKETING_LOOKUP_DB_USER)."
  value       = google_sql_user.lookup.name
}

output "connection_name" {
  description = "Instance connection name (project:region:instance)."
  value       = google_sql_database_instance.this.connection_name
}
