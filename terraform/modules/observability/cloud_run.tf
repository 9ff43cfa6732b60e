# The API on Cloud Run: Managed Service for Prometheus reaches Cloud Run through the collector sidecar
# (cloud-run-gmp-sidecar, added to the service by modules/cloud_run_service's metrics_sidecar). Its
# RunMonitoring config is a file, and the only files Cloud Run mounts from outside the image are Secret
# Manager secrets: this one holds no credential, only the scrape config.
#
# RunMonitoring's metadata.name becomes the `job` label, like a PodMonitoring's: "api", the local scrape
# job. The sidecar's default config would name it run-gmp-sidecar. The collector adds the service and
# revision (service_name, revision_name); the per-instance label is left out, the instance resource label
# already tells instances apart.

locals {
  run_monitoring = yamlencode({
    apiVersion = "monitoring.googleapis.com/v1beta"
    kind       = "RunMonitoring"
    metadata   = { name = "api" }
    spec = {
      endpoints = [{
        port     = tostring(var.api_metrics_port)
        path     = "/metrics"
        interval = var.scrape_interval
      }]
      targetLabels = { metadata = ["service", "revision"] }
    }
  })
}

resource "google_secret_manager_secret" "api_run_monitoring" {
  project   = var.project_id
  secret_id = "${var.name}-api-run-monitoring"
  labels    = var.labels

  annotations = {
    description = "RunMonitoring config of the API's Managed Prometheus collector sidecar (not a credential)"
  }

  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }
}

resource "google_secret_manager_secret_version" "api_run_monitoring" {
  secret      = google_secret_manager_secret.api_run_monitoring.id
  secret_data = local.run_monitoring
}

# Cloud Run mounts the secret as the service's account.
resource "google_secret_manager_secret_iam_member" "api_reads_run_monitoring" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.api_run_monitoring.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.api_service_account_email}"
}

# The sidecar writes the scraped series as the service's account. Metric writing exists at project level
# only; the role holds nothing but writing time series and metric descriptors.
resource "google_project_iam_member" "api_writes_metrics" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${var.api_service_account_email}"
}
