# One Cloud Run service (the API, the Streamlit app, the MLflow server), never public:
#   access = "iap"      people sign in through Identity-Aware Proxy (the project must belong to an
#                       organization); IAP calls the service as its service agent, which is the only invoker
#                       besides var.invokers.
#   access = "invoker"  callers need roles/run.invoker and send a Google ID token (service-to-service calls;
#                       people use `gcloud run services proxy`).
#
# metrics_sidecar: Managed Service for Prometheus scrapes nothing on Cloud Run by itself; the Google-built
# collector (cloud-run-gmp-sidecar) runs as a second container, reads its RunMonitoring config from a Secret
# Manager secret mounted at /etc/rungmp/config.yaml (the only path it reads), scrapes the service container
# on localhost and writes to Managed Prometheus as the service's account (roles/monitoring.metricWriter and
# read access to the config secret are granted by the caller, modules/observability). The collector starts
# after the service container (depends_on) and scrapes once more at shutdown.

locals {
  iap     = var.access == "iap"
  sidecar = var.metrics_sidecar != null
  # The service container's name (a sidecar's depends_on names it).
  main_container = "service"
  # The docs recommend always-allocated CPU with the collector, so that scrapes between requests run.
  cpu_idle = local.sidecar ? !var.metrics_sidecar.cpu_always_allocated : true
}

resource "google_cloud_run_v2_service" "this" {
  provider = google-beta

  project             = var.project_id
  name                = var.name
  location            = var.region
  description         = var.description
  ingress             = "INGRESS_TRAFFIC_ALL"
  iap_enabled         = local.iap
  launch_stage        = local.iap ? "BETA" : "GA"
  deletion_protection = var.deletion_protection
  labels              = var.labels
  custom_audiences    = var.custom_audiences

  template {
    service_account                  = var.service_account_email
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    timeout                          = "${var.timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    labels                           = var.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    dynamic "vpc_access" {
      for_each = var.vpc_subnet_id == null ? [] : [var.vpc_subnet_id]
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          subnetwork = vpc_access.value
        }
      }
    }

    containers {
      name  = local.main_container
      image = var.image
      args  = var.args

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = local.cpu_idle
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = var.environment
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_environment
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      startup_probe {
        tcp_socket {
          port = 8080
        }
        initial_delay_seconds = 0
        period_seconds        = 5
        failure_threshold     = var.startup_failure_threshold
      }
    }

    dynamic "containers" {
      for_each = local.sidecar ? [var.metrics_sidecar] : []
      content {
        name       = "metrics-collector"
        image      = containers.value.image
        depends_on = [local.main_container]

        resources {
          limits = {
            cpu    = containers.value.cpu
            memory = containers.value.memory
          }
          cpu_idle = local.cpu_idle
        }

        volume_mounts {
          name       = "rungmp-config"
          mount_path = "/etc/rungmp"
        }

        # The collector's health endpoint (the documented sidecar definition).
        liveness_probe {
          http_get {
            path = "/liveness"
            port = 13133
          }
          timeout_seconds = 30
          period_seconds  = 30
        }
      }
    }

    dynamic "volumes" {
      for_each = local.sidecar ? [var.metrics_sidecar] : []
      content {
        name = "rungmp-config"
        secret {
          secret = volumes.value.config_secret
          items {
            version = "latest"
            path    = "config.yaml"
          }
        }
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = var.invokers

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

# ---------------------------------------------------------------- IAP
resource "google_project_service_identity" "iap" {
  count    = local.iap ? 1 : 0
  provider = google-beta

  project = var.project_id
  service = "iap.googleapis.com"
}

resource "google_cloud_run_v2_service_iam_member" "iap_invokes" {
  count = local.iap ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_project_service_identity.iap[0].email}"
}

resource "google_iap_web_cloud_run_service_iam_member" "users" {
  for_each = local.iap ? var.iap_members : {}
  provider = google-beta

  project                = var.project_id
  location               = var.region
  cloud_run_service_name = google_cloud_run_v2_service.this.name
  role                   = "roles/iap.httpsResourceAccessor"
  member                 = each.value
}
