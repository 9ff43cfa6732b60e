# A private network for the stack: GKE nodes have no public IP (Cloud NAT gives them egress to pull the
# Kubeflow, Knative and KServe images), Cloud SQL has only a private IP (private services access), and the
# MLflow Cloud Run service reaches it through Direct VPC egress on a subnet of its own.

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "gke" {
  project                  = var.project_id
  name                     = "${var.name}-gke"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.gke_nodes_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.gke_pods_cidr
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.gke_services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "serverless" {
  project                  = var.project_id
  name                     = "${var.name}-serverless"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.serverless_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  project = var.project_id
  name    = "${var.name}-router"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  project                            = var.project_id
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.gke.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Private services access: the range Cloud SQL's private IP is taken from.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_services_prefix_length
  network       = google_compute_network.this.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# Private clusters only open 443 and 10250 from the control plane to the nodes. The admission webhooks of
# Knative (8443), KServe (9443) and cert-manager (10250, already open) must be reachable from it, or every
# InferenceService and KnativeServing change is rejected; and the API server's service proxy, the only way
# to Kubeflow Pipelines (.../services/ml-pipeline:8888/proxy), connects to the ml-pipeline pod on 8888,
# or every KFP call times out.
resource "google_compute_firewall" "control_plane_webhooks" {
  project     = var.project_id
  name        = "${var.name}-gke-webhooks"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 1000
  description = "GKE control plane to admission webhooks (Knative, KServe) and the KFP API (service proxy)"

  source_ranges = [var.gke_master_cidr]
  allow {
    protocol = "tcp"
    ports    = ["8443", "9443", "8888"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
