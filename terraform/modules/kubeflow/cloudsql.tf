# Kubeflow Pipelines' database in Cloud SQL (modules/kfp_database), so that runs, experiments, pipeline
# versions and ML Metadata outlive the cluster. KFP's services connect to the Service "mysql" on 3306 with
# the Secret "mysql-secret", as they would to the in-cluster MySQL the upstream manifests bring; behind
# them is the Cloud SQL Auth Proxy (private IP, TLS to the instance, IAM-checked as the kfp-system service
# account through Workload Identity), as KFP's own env/gcp overlay does.

locals {
  proxy_labels = {
    "app"                       = "cloudsqlproxy" # what networkpolicies.tf selects
    "app.kubernetes.io/name"    = "cloud-sql-proxy"
    "app.kubernetes.io/part-of" = "remarketing"
  }
  proxy_health_port = 9090
}

# The database user KFP logs in as (its password from Secret Manager, read by modules/cluster).
resource "kubernetes_secret_v1" "kfp_database" {
  metadata {
    name      = "mysql-secret"
    namespace = local.kfp_namespace
  }
  data = {
    username = var.database.user
    password = var.database_password
  }

  depends_on = [terraform_data.kfp_cluster_scoped]
}

resource "kubernetes_service_account_v1" "cloud_sql_proxy" {
  metadata {
    name      = var.cloud_sql_proxy_ksa
    namespace = local.kfp_namespace
    annotations = {
      "iam.gke.io/gcp-service-account" = var.kfp_system_gsa_email
    }
  }
  automount_service_account_token = false

  depends_on = [terraform_data.kfp_cluster_scoped]
}

resource "kubernetes_deployment_v1" "cloud_sql_proxy" {
  #checkov:skip=CKV_K8S_43:Google's Cloud SQL Auth Proxy image by the release tag of its documented Kubernetes examples (var.cloud_sql_proxy_image), which publish no digest; set the variable to image@sha256:... to pin it.
  metadata {
    name      = "cloudsqlproxy"
    namespace = local.kfp_namespace
    labels    = local.proxy_labels
  }

  spec {
    replicas = var.cloud_sql_proxy_replicas
    selector {
      match_labels = local.proxy_labels
    }

    template {
      metadata {
        labels = local.proxy_labels
      }

      spec {
        service_account_name = kubernetes_service_account_v1.cloud_sql_proxy.metadata[0].name
        # Workload Identity goes through the GKE metadata server; the proxy never calls the Kubernetes API.
        automount_service_account_token = false

        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "cloud-sql-proxy"
          image             = var.cloud_sql_proxy_image
          image_pull_policy = "Always"
          args = [
            "--private-ip",
            "--address=0.0.0.0",
            "--port=3306",
            "--health-check",
            "--http-address=0.0.0.0",
            "--http-port=${local.proxy_health_port}",
            "--structured-logs",
            var.database.connection_name,
          ]

          port {
            name           = "mysql"
            container_port = 3306
          }
          port {
            name           = "health"
            container_port = local.proxy_health_port
          }

          startup_probe {
            http_get {
              path = "/startup"
              port = "health"
            }
            period_seconds    = 1
            timeout_seconds   = 5
            failure_threshold = 20
          }
          liveness_probe {
            http_get {
              path = "/liveness"
              port = "health"
            }
            period_seconds    = 60
            timeout_seconds   = 30
            failure_threshold = 5
          }
          readiness_probe {
            http_get {
              path = "/readiness"
              port = "health"
            }
            period_seconds    = 10
            timeout_seconds   = 5
            failure_threshold = 1
          }

          resources {
            requests = {
              cpu    = "100m"
              memory = "128Mi"
            }
            limits = {
              cpu    = "1"
              memory = "512Mi"
            }
          }

          security_context {
            allow_privilege_escalation = false
            privileged                 = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            capabilities {
              drop = ["ALL"]
            }
            seccomp_profile {
              type = "RuntimeDefault"
            }
          }
        }
      }
    }
  }

  depends_on = [terraform_data.kfp_cluster_scoped]
}

# The name KFP's manifests connect to (pipeline-install-config mysqlHost: mysql).
resource "kubernetes_service_v1" "kfp_database" {
  metadata {
    name      = "mysql"
    namespace = local.kfp_namespace
    labels    = local.proxy_labels
  }
  spec {
    type     = "ClusterIP"
    selector = local.proxy_labels
    port {
      name        = "mysql"
      port        = 3306
      target_port = "mysql"
    }
  }

  depends_on = [terraform_data.kfp_cluster_scoped]
}
