# The GKE cluster that runs standalone Kubeflow Pipelines and KServe (Knative mode). What runs inside it is
# installed by modules/kubeflow.
#
# Control plane access: the IP endpoint is private (enable_private_endpoint); everyone outside the VPC --
# people, the release pipeline, and the Cloud Functions that launch KFP runs -- uses the DNS-based endpoint
# (gke-<id>.<region>.gke.goog). That endpoint checks IAM (container.clusters.connect) before the request
# reaches the API server, and Kubernetes RBAC decides what the caller may do once there. No IP allowlist
# to maintain, and nothing of the cluster is reachable without a Google identity.
#
# Nodes: private (no public IP; Cloud NAT for egress), Shielded (secure boot, integrity monitoring),
# Container-Optimized OS, their own least-privilege service account, Workload Identity (GKE_METADATA) so
# pods never see the node's credentials.

resource "google_container_cluster" "this" {
  #checkov:skip=CKV_GCP_12:GKE Dataplane V2 (datapath_provider = ADVANCED_DATAPATH) enforces NetworkPolicy natively; the legacy Calico network_policy block must stay unset with it.
  #checkov:skip=CKV_GCP_24:PodSecurityPolicy was removed from Kubernetes in 1.25 and from GKE; Pod Security Admission replaces it and is on by default.
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Google Workspace domain (gke-security-groups@<domain>); set var.rbac_security_group to enable it.
  #checkov:skip=CKV_GCP_66:Binary Authorization would need attestations for the third-party Kubeflow, Knative and KServe images; the project's own images are deployed by digest (modules/platform looks each up from the release's tag).
  provider = google

  project  = var.project_id
  name     = var.name
  location = var.location

  network         = var.network_id
  subnetwork      = var.subnet_id
  networking_mode = "VPC_NATIVE"
  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  # GKE Dataplane V2 (eBPF): NetworkPolicy enforcement built in.
  datapath_provider = "ADVANCED_DATAPATH"

  remove_default_node_pool = true
  initial_node_count       = 1

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = true
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block
    master_global_access_config {
      enabled = false
    }
  }

  control_plane_endpoints_config {
    dns_endpoint_config {
      allow_external_traffic = true
    }
  }

  # Only the VPC reaches the private IP endpoint; no public CIDR is allowed.
  master_authorized_networks_config {
    gcp_public_cidrs_access_enabled = false
  }

  enable_shielded_nodes       = true
  enable_legacy_abac          = false
  enable_intranode_visibility = true

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  dynamic "authenticator_groups_config" {
    for_each = var.rbac_security_group == null ? [] : [var.rbac_security_group]
    content {
      security_group = authenticator_groups_config.value
    }
  }

  dynamic "database_encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      state    = "ENCRYPTED"
      key_name = database_encryption.value
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }
  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  addons_config {
    http_load_balancing {
      disabled = false
    }
    horizontal_pod_autoscaling {
      disabled = false
    }
  }

  resource_labels     = var.labels
  deletion_protection = var.deletion_protection

  node_config {
    # Only for the default pool that is removed right away; kept hardened all the same.
    service_account = var.node_service_account
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    image_type      = "COS_CONTAINERD"
    metadata = {
      disable-legacy-endpoints = "true"
    }
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  lifecycle {
    ignore_changes = [node_config, initial_node_count]
  }
}

resource "google_container_node_pool" "default" {
  project  = var.project_id
  name     = "default"
  location = var.location
  cluster  = google_container_cluster.this.name

  autoscaling {
    min_node_count = var.min_nodes
    max_node_count = var.max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.machine_type
    disk_size_gb    = var.disk_size_gb
    disk_type       = "pd-balanced"
    image_type      = "COS_CONTAINERD"
    service_account = var.node_service_account
    # Access is decided by IAM on the node service account; the scope only allows it to be used.
    oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]
    labels       = var.labels
    metadata = {
      disable-legacy-endpoints = "true"
    }
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}
