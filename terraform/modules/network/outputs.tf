output "network_id" {
  description = "VPC id."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "VPC name."
  value       = google_compute_network.this.name
}

output "gke_subnet_id" {
  description = "Subnet of the GKE nodes."
  value       = google_compute_subnetwork.gke.id
}

output "gke_pods_range_name" {
  description = "Secondary range name for pods."
  value       = "pods"
}

output "gke_services_range_name" {
  description = "Secondary range name for services."
  value       = "services"
}

output "serverless_subnet_id" {
  description = "Subnet for Cloud Run Direct VPC egress."
  value       = google_compute_subnetwork.serverless.id
}

output "private_services_connection" {
  description = "The private services access connection (Cloud SQL depends on it)."
  value       = google_service_networking_connection.private_services.id
}
