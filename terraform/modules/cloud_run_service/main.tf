# One Cloud Run service (the API, the Streamlit app, the MLflow server), never public:
#   access = "iap"      people sign in through Identity-Aware Proxy (the project must belong to an
#                       organization); IAP calls the service as its service agent, which is the only invoker
#                       besides var.invokers.
#   access = "invoker"  callers need roles/run.invoker and send a Google ID token (service-to-service calls;
#                       people use `gcloud run services proxy`).

locals {
  iap = var.access == "iap"
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
        cpu_idle          = true
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
