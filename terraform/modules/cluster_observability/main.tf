# Observability inside the cluster (applied by the in-cluster root, envs/<env>/cluster): the Pushgateway the
# pipeline runs push to, the PodMonitorings GKE's managed collection scrapes, the Managed Prometheus query
# frontend and Grafana on it, and the Pushgateway's sweep (sweeper.tf). The Google side (alert policies,
# log-based metrics, the API's collector config, the frontend's Google identity) is modules/observability.
#
#   what                         how it reaches Managed Prometheus
#   model servers (KServe)       PodMonitoring "model-server" in the serving namespace (GKE managed collection)
#   pipeline runs                push to the in-cluster Pushgateway (this namespace), PodMonitorings
#                                "remarketing-pipeline" and "pushgateway" (charts/gmp-targets)
#   dashboards                   Grafana (this namespace) on the GMP query frontend, the repository's JSON
#   Pushgateway clean-up         a CronJob running observability.push.sweep, as the bridge does locally
#                                (sweeper.tf)
#
# Managed collection must be on in the cluster (modules/gke: monitoring_config.managed_prometheus); it
# installs the PodMonitoring CRD and runs the collectors, which write as the nodes' service account.
#
# The query frontend runs as <namespace>/<frontend_ksa>, bound by Workload Identity (modules/observability)
# to its own Google service account that holds roles/monitoring.viewer and nothing else; only Grafana's pods
# may reach the frontend (NetworkPolicy), since it answers queries unauthenticated. None of the pods here
# gets a Kubernetes API token.

locals {
  namespace = kubernetes_namespace_v1.monitoring.metadata[0].name

  # The release, namespace and port the settings' REMARKETING_PUSHGATEWAY_URL names (modules/platform
  # local.monitoring): the infrastructure root decides them, this root makes the service.
  pushgateway_release = var.pushgateway.release
  pushgateway_port    = var.pushgateway.port

  frontend_name = var.frontend_ksa
  frontend_port = 9090
  frontend_url  = "http://${local.frontend_name}.${var.namespace}.svc.cluster.local:${local.frontend_port}"
  frontend_labels = {
    "app.kubernetes.io/name"    = local.frontend_name
    "app.kubernetes.io/part-of" = "remarketing"
  }

  grafana_release = "grafana"
  grafana_pod_labels = {
    "app.kubernetes.io/name"     = "grafana"
    "app.kubernetes.io/instance" = local.grafana_release
  }

  dashboards_dir = coalesce(var.dashboards_dir, "${path.module}/../../../observability/grafana/dashboards")
  dashboards     = { for f in fileset(local.dashboards_dir, "*.json") : f => file("${local.dashboards_dir}/${f}") }
}

resource "kubernetes_namespace_v1" "monitoring" {
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of"          = "remarketing"
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

# ---------------------------------------------------------------- Pushgateway
# Pipeline runs push their figures here (observability/push.py, grouping key run_id); the sweep deletes a
# run's group pipeline_metrics_retention_seconds after it ended (sweeper.tf). In memory: a restart loses the groups of
# runs in progress until their next step pushes again.
resource "helm_release" "pushgateway" {
  name       = local.pushgateway_release
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "prometheus-pushgateway"
  version    = var.pushgateway_chart_version
  namespace  = local.namespace
  atomic     = true
  timeout    = 600

  values = [yamlencode({
    fullnameOverride             = local.pushgateway_release
    automountServiceAccountToken = false
    service = {
      port       = local.pushgateway_port
      targetPort = local.pushgateway_port
    }
    securityContext = {
      runAsNonRoot   = true
      runAsUser      = 65534
      fsGroup        = 65534
      seccompProfile = { type = "RuntimeDefault" }
    }
    containerSecurityContext = {
      allowPrivilegeEscalation = false
      readOnlyRootFilesystem   = true
      capabilities             = { drop = ["ALL"] }
    }
    resources = {
      requests = { cpu = "50m", memory = "64Mi" }
      limits   = { cpu = "500m", memory = "256Mi" }
    }
  })]
}

# ---------------------------------------------------------------- PodMonitorings
# From a local chart, like the KnativeServing object in modules/kubeflow: the PodMonitoring CRD (installed
# by GKE's managed collection) does not have to exist when Terraform plans.
resource "helm_release" "gmp_targets" {
  name      = "gmp-targets"
  chart     = "${path.module}/charts/gmp-targets"
  namespace = local.namespace
  atomic    = true
  timeout   = 300

  values = [yamlencode({
    servingNamespace    = var.serving_namespace
    monitoringNamespace = local.namespace
    interval            = var.scrape_interval
    modelServerPort     = var.model_server_port
    pushgatewaySelector = {
      "app.kubernetes.io/name"     = "prometheus-pushgateway"
      "app.kubernetes.io/instance" = local.pushgateway_release
    }
  })]

  depends_on = [helm_release.pushgateway]
}

# ---------------------------------------------------------------- GMP query frontend
# examples/frontend.yaml of GoogleCloudPlatform/prometheus-engine: a Prometheus-compatible HTTP API over
# Cloud Monitoring for Grafana's Prometheus data source, authenticating as its Google service account.
resource "kubernetes_service_account_v1" "frontend" {
  metadata {
    name      = local.frontend_name
    namespace = local.namespace
    labels    = local.frontend_labels
    annotations = {
      "iam.gke.io/gcp-service-account" = var.frontend_gsa_email
    }
  }
  automount_service_account_token = false
}

resource "kubernetes_deployment_v1" "frontend" {
  #checkov:skip=CKV_K8S_43:Google's GKE-published query frontend, referenced by the release tag of the documented manifest (prometheus-engine examples/frontend.yaml), which publishes no digest; set var.frontend_image to image@sha256:... to pin it.
  metadata {
    name      = local.frontend_name
    namespace = local.namespace
    labels    = local.frontend_labels
  }

  spec {
    replicas = var.frontend_replicas
    selector {
      match_labels = local.frontend_labels
    }

    template {
      metadata {
        labels = local.frontend_labels
      }

      spec {
        service_account_name = kubernetes_service_account_v1.frontend.metadata[0].name
        # Workload Identity goes through the GKE metadata server; the frontend never calls the Kubernetes API.
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
          name              = "frontend"
          image             = var.frontend_image
          image_pull_policy = "Always"
          args = [
            "--web.listen-address=:${local.frontend_port}",
            "--query.project-id=${var.project_id}",
          ]

          port {
            name           = "web"
            container_port = local.frontend_port
          }

          liveness_probe {
            http_get {
              path = "/-/healthy"
              port = "web"
            }
          }
          readiness_probe {
            http_get {
              path = "/-/ready"
              port = "web"
            }
          }

          resources {
            requests = {
              cpu    = "50m"
              memory = "64Mi"
            }
            limits = {
              cpu    = "500m"
              memory = "256Mi"
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

}

resource "kubernetes_service_v1" "frontend" {
  metadata {
    name      = local.frontend_name
    namespace = local.namespace
    labels    = local.frontend_labels
  }
  spec {
    type     = "ClusterIP"
    selector = local.frontend_labels
    port {
      name        = "web"
      port        = local.frontend_port
      target_port = "web"
    }
  }
}

# The frontend answers every query on the project's metrics without authentication: only Grafana may ask.
# (GKE Dataplane V2 enforces NetworkPolicy; the kubelet's probes are always allowed.)
resource "kubernetes_network_policy_v1" "frontend" {
  metadata {
    name      = "${local.frontend_name}-from-grafana"
    namespace = local.namespace
  }
  spec {
    pod_selector {
      match_labels = local.frontend_labels
    }
    policy_types = ["Ingress"]
    ingress {
      from {
        pod_selector {
          match_labels = local.grafana_pod_labels
        }
      }
      ports {
        port     = tostring(local.frontend_port)
        protocol = "TCP"
      }
    }
  }
}

# ---------------------------------------------------------------- Grafana
# The admin password comes from Secret Manager (modules/secrets grafana-admin), never from code.
resource "kubernetes_secret_v1" "grafana_admin" {
  metadata {
    name      = "grafana-admin"
    namespace = local.namespace
  }
  data = {
    admin-user     = "admin"
    admin-password = var.grafana_admin_password
  }
}

# Every observability/grafana/dashboards/*.json (generated from observability/dashboards.py), mounted as the
# chart's dashboard provider "remarketing": the same files and folder as the local Grafana's provisioning.
resource "kubernetes_config_map_v1" "dashboards" {
  metadata {
    name      = "grafana-dashboards-remarketing"
    namespace = local.namespace
    labels = {
      "app.kubernetes.io/part-of" = "remarketing"
    }
  }
  data = local.dashboards
}

resource "helm_release" "grafana" {
  name       = local.grafana_release
  repository = var.grafana_chart_repository
  chart      = "grafana"
  version    = var.grafana_chart_version
  namespace  = local.namespace
  atomic     = true
  timeout    = 600

  values = [yamlencode({
    fullnameOverride = local.grafana_release
    testFramework    = { enabled = false }
    # RBAC and a token are only for the chart's sidecars (dashboards and data sources from ConfigMaps
    # across namespaces); they are off: both are provisioned from files here.
    rbac                         = { create = false }
    serviceAccount               = { create = true, automountServiceAccountToken = false }
    automountServiceAccountToken = false
    # The Secret's keys are the chart's defaults (admin.userKey admin-user, admin.passwordKey admin-password).
    admin       = { existingSecret = kubernetes_secret_v1.grafana_admin.metadata[0].name }
    persistence = { enabled = false } # everything it shows is provisioned; users and preferences are not kept
    resources = {
      requests = { cpu = "100m", memory = "128Mi" }
      limits   = { cpu = "1", memory = "512Mi" }
    }
    "grafana.ini" = {
      analytics        = { reporting_enabled = false, check_for_updates = false }
      users            = { allow_sign_up = false }
      "auth.anonymous" = { enabled = false }
      security         = { disable_gravatar = true }
    }
    datasources = {
      "datasources.yaml" = {
        apiVersion = 1
        datasources = [{
          # uid "prometheus", like the local provisioning (observability/grafana/provisioning/datasources)
          name      = "Managed Prometheus"
          uid       = "prometheus"
          type      = "prometheus"
          access    = "proxy"
          url       = local.frontend_url
          isDefault = true
          editable  = false
          jsonData  = { timeInterval = var.scrape_interval, httpMethod = "GET" }
        }]
      }
    }
    dashboardProviders = {
      "dashboardproviders.yaml" = {
        apiVersion = 1
        providers = [{
          name                  = "remarketing"
          orgId                 = 1
          folder                = "Remarketing"
          type                  = "file"
          disableDeletion       = true
          allowUiUpdates        = false
          updateIntervalSeconds = 30
          options               = { path = "/var/lib/grafana/dashboards/remarketing" }
        }]
      }
    }
    dashboardsConfigMaps = {
      remarketing = kubernetes_config_map_v1.dashboards.metadata[0].name
    }
  })]

  depends_on = [kubernetes_service_v1.frontend]
}
