output "function_names" {
  description = "Deployed function names by entry point."
  value       = { for k, f in google_cloudfunctions2_function.this : k => f.name }
}

output "source_bucket" {
  description = "Bucket of the source archives."
  value       = google_storage_bucket.source.name
}
