output "repository_url" {
  description = "Image prefix: <region>-docker.pkg.dev/<project>/<repository>."
  value       = "${google_artifact_registry_repository.this.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}

output "repository_id" {
  description = "Repository name (the data source that resolves an image's tag to its digest needs it)."
  value       = google_artifact_registry_repository.this.repository_id
}
