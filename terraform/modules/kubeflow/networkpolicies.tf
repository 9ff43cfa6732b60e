# Who may reach Kubeflow Pipelines' API, its database and its object store inside the cluster (GKE
# Dataplane V2 enforces NetworkPolicy; a pod selected by a policy takes only what a policy lets in; the
# kubelet's probes are always allowed). Everything else in the cluster (the predictors, Grafana, the
# Pushgateway, a pod an attacker got to run) is refused.
#
#   ml-pipeline (the KFP API, 8888 HTTP, 8887 gRPC)
#     the GKE control plane, on 8888: the API server's service proxy, which is how the functions (launch),
#       the API (read a run) and the release (upload pipelines) call KFP; who may use the proxy is decided
#       before that by IAM (container.clusters.connect) and RBAC (Roles kfp-api-client and kfp-api-reader)
#     the pipelines' run pods (Argo's workflow pods, as kubeflow/pipeline-runner) and KFP's own UI,
#       persistence agent and scheduled-workflow controller
#   mysql (the Cloud SQL Auth Proxy, 3306): the KFP API, the metadata (MLMD) server and the cache server
#   seaweedfs (KFP's own objects: uploaded pipeline files, archived pod logs; 8333 S3): the KFP API, its UI
#     and the run pods (Argo archives their logs there). Upstream's policy, which let in every pod of the
#     namespace, is deleted by kfp/kustomization.yaml.
# A pod's service account cannot be selected by a NetworkPolicy; the run pods are Argo's (label
# workflows.argoproj.io/workflow), which KFP runs as pipeline-runner in this namespace.

locals {
  kfp_components = ["ml-pipeline-ui", "ml-pipeline-persistenceagent", "ml-pipeline-scheduledworkflow"]
  run_pod_label  = "workflows.argoproj.io/workflow"
}

resource "kubernetes_network_policy_v1" "kfp_api" {
  metadata {
    name      = "ml-pipeline-api"
    namespace = local.kfp_namespace
  }
  spec {
    pod_selector {
      match_labels = {
        app = "ml-pipeline"
      }
    }
    policy_types = ["Ingress"]

    # The API server's service proxy (the functions, the API, the release): IAM and RBAC decide who.
    ingress {
      from {
        ip_block {
          cidr = var.control_plane_cidr
        }
      }
      ports {
        port     = "8888"
        protocol = "TCP"
      }
    }

    # The pipelines' run pods and KFP's own components.
    ingress {
      from {
        pod_selector {
          match_expressions {
            key      = local.run_pod_label
            operator = "Exists"
          }
        }
      }
      from {
        pod_selector {
          match_expressions {
            key      = "app"
            operator = "In"
            values   = local.kfp_components
          }
        }
      }
      ports {
        port     = "8888"
        protocol = "TCP"
      }
      ports {
        port     = "8887"
        protocol = "TCP"
      }
    }
  }

  depends_on = [terraform_data.kfp_cluster_scoped]
}

resource "kubernetes_network_policy_v1" "kfp_database" {
  metadata {
    name      = "mysql"
    namespace = local.kfp_namespace
  }
  spec {
    pod_selector {
      match_labels = {
        app = "cloudsqlproxy"
      }
    }
    policy_types = ["Ingress"]

    ingress {
      from {
        pod_selector {
          match_expressions {
            key      = "app"
            operator = "In"
            values   = ["ml-pipeline", "cache-server"]
          }
        }
      }
      from {
        pod_selector {
          match_labels = {
            component = "metadata-grpc-server"
          }
        }
      }
      ports {
        port     = "3306"
        protocol = "TCP"
      }
    }
  }

  depends_on = [terraform_data.kfp_cluster_scoped]
}

resource "kubernetes_network_policy_v1" "kfp_object_store" {
  metadata {
    name      = "seaweedfs"
    namespace = local.kfp_namespace
  }
  spec {
    pod_selector {
      match_labels = {
        app = "seaweedfs"
      }
    }
    policy_types = ["Ingress"]

    ingress {
      from {
        pod_selector {
          match_expressions {
            key      = "app"
            operator = "In"
            values   = ["ml-pipeline", "ml-pipeline-ui"]
          }
        }
      }
      from {
        pod_selector {
          match_expressions {
            key      = local.run_pod_label
            operator = "Exists"
          }
        }
      }
      ports {
        port     = "8333"
        protocol = "TCP"
      }
    }
  }

  # After KFP's manifests, so that the upstream policy of the same name is gone (kfp/kustomization.yaml).
  depends_on = [terraform_data.kfp]
}
