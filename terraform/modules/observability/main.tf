# Observability in the cloud, the Google side (the in-cluster side, with the Pushgateway, the query
# frontend, Grafana and the scrape targets, is modules/cluster_observability, applied by the in-cluster
# root): Google Cloud Managed Service for Prometheus (GMP) stores the metrics, Cloud Monitoring evaluates
# the alerts, fed by the same files as the local stack (docs/observability.md).
#
#   what                         here
#   API (Cloud Run)              the Cloud Run GMP collector sidecar's RunMonitoring config and its right to
#                                write metrics (cloud_run.tf)
#   functions (Cloud Run gen2)   not scrapable: log-based metrics over their log lines (logging.tf)
#   alerts                       Cloud Monitoring PromQL alert policies from the rule file, email (alerts.tf);
#                                storage events not delivered, files no run was launched for (delivery.tf)
#   query frontend               its Google identity: monitoring.viewer only, Workload Identity of
#                                <namespace>/<frontend_ksa> (the Kubernetes side in cluster_observability)

# examples/frontend.yaml of GoogleCloudPlatform/prometheus-engine: a Prometheus-compatible HTTP API over
# Cloud Monitoring for Grafana's Prometheus data source, authenticating as its Google service account.
resource "google_project_iam_member" "frontend_reads_metrics" {
  project = var.project_id
  role    = "roles/monitoring.viewer"
  member  = "serviceAccount:${var.frontend_gsa_email}"
}

resource "google_service_account_iam_member" "frontend_wi" {
  service_account_id = var.frontend_gsa_id
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.namespace}/${var.frontend_ksa}]"
}
