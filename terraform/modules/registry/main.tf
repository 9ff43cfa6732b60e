# One Docker repository for the project's images: components (KFP base image), serving (KServe predictor),
# api, app, mlflow. Tags are immutable: the release pipeline tags every image with the commit it was built
# from, so a tag always names the same bytes.

resource "google_artifact_registry_repository" "this" {
  #checkov:skip=CKV_GCP_84:CMEK is optional (var.kms_key_name); without it images are encrypted with Google-managed keys.
  project       = var.project_id
  location      = var.region
  repository_id = var.repository_id
  description   = "Remarketing container images"
  format        = "DOCKER"
  kms_key_name  = var.kms_key_name
  labels        = var.labels

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_retention_days * 86400}s"
    }
  }
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent_versions
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "readers" {
  for_each = var.readers

  project    = var.project_id
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}

resource "google_artifact_registry_repository_iam_member" "writers" {
  for_each = var.writers

  project    = var.project_id
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.writer"
  member     = each.value
}
