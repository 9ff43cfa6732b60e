output "name" {
  description = "Cluster name."
  value       = google_container_cluster.this.name
}

output "location" {
  description = "Cluster location."
  value       = google_container_cluster.this.location
}

output "dns_endpoint" {
  description = "DNS-based control plane endpoint (IAM-checked), e.g. gke-<id>.<region>.gke.goog."
  value       = google_container_cluster.this.control_plane_endpoints_config[0].dns_endpoint_config[0].endpoint
}

output "workload_pool" {
  description = "Workload Identity pool."
  value       = "${var.project_id}.svc.id.goog"
}
