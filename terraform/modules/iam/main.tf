# One service account per part of the system. This module creates them and grants the few roles that only
# exist at project level; every other grant sits beside the resource it is about (bucket, secret, service,
# Kubernetes namespace), so each account's reach can be read where the resource is declared:
#
#   account            where its other grants are
#   functions          storage (landing read, runs/ write), gke custom role here, kubeflow RBAC (KFP proxy)
#   eventarc           functions (run.invoker on the two functions); eventarc.eventReceiver here
#   functions-build    functions (source bucket read); Cloud Build's builder role here
#   pipelines          storage (landing read; model-output/, output/, runs/ write), mlflow (invoker),
#                      kubeflow (Workload Identity for kubeflow/pipeline-runner, RBAC on InferenceServices)
#   serving            storage (model-output/ read), kubeflow (Workload Identity for the predictor)
#   api                storage (weekly/ write; runs/, output/ read), secrets (API key), signs URLs as itself,
#                      observability (metric writer and its RunMonitoring config: the collector sidecar),
#                      gke custom role here + kubeflow RBAC (read KFP runs), mlflow (invoker)
#   app                cloud run (invoker on the API), secrets (API key)
#   mlflow             storage (mlflow/ prefix), secrets (database password)
#   gke-nodes          container.defaultNodeServiceAccount here, registry (reader)
#   scheduler          cloud run (invoker on the API): Cloud Scheduler's ID token for POST /retraining
#   gmp-frontend       observability (monitoring.viewer; Workload Identity of monitoring/gmp-frontend): the
#                      Managed Prometheus query frontend Grafana reads from
#   kfp-system         kfp_database (Cloud SQL Client on KFP's instance), storage (the pipeline root, read),
#                      platform (Workload Identity of the Cloud SQL Auth Proxy and of KFP's UI)

locals {
  accounts = {
    functions       = "Cloud Functions on_input_file / on_weekly_file: launch KFP runs"
    eventarc        = "Eventarc triggers: deliver landing-bucket events to the functions"
    functions-build = "Cloud Build for the functions' source (gen2 build service account)"
    pipelines       = "Kubeflow Pipelines runs (Workload Identity of kubeflow/pipeline-runner)"
    serving         = "KServe predictor pods (Workload Identity): read model bundles"
    api             = "FastAPI on Cloud Run: uploads, run records, signed URLs"
    app             = "Streamlit on Cloud Run: calls the API"
    mlflow          = "MLflow tracking server on Cloud Run"
    gke-nodes       = "GKE node pool (logging, monitoring, image pulls)"
    scheduler       = "Cloud Scheduler: the retraining schedule's turn (POST /retraining on the API)"
    gmp-frontend    = "Managed Prometheus query frontend in GKE (Workload Identity): read metrics for Grafana"
    kfp-system      = "Kubeflow Pipelines' own pods (Workload Identity): connect to its Cloud SQL database, read its pipeline root"
  }
}

resource "google_service_account" "this" {
  for_each = local.accounts

  project      = var.project_id
  account_id   = "${var.name}-${each.key}"
  display_name = "${var.name} ${each.key}"
  description  = each.value
}

# GKE nodes: the predefined minimal role for node service accounts (logs, metrics, metadata).
resource "google_project_iam_member" "nodes" {
  project = var.project_id
  role    = "roles/container.defaultNodeServiceAccount"
  member  = google_service_account.this["gke-nodes"].member
}

# Eventarc: a trigger's service account must be able to receive events.
resource "google_project_iam_member" "eventarc_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.this["eventarc"].member
}

# Functions build: gen2 functions are built by Cloud Build as this account, into an image in the project's
# gcf-artifacts repository (made by Cloud Functions on the first deploy, so it cannot be scoped here). Google
# documents the Cloud Build Service Account role for a custom build account (Cloud Run functions, "Custom
# service account for Cloud Build"): build logs, the source, the image push.
resource "google_project_iam_member" "build_builder" {
  #checkov:skip=CKV_GCP_49:roles/cloudbuild.builds.builder is the role Google documents for a custom build service account of Cloud Run functions; only this project's function builds run as the account, and nothing here grants anyone the right to act as it.
  project = var.project_id
  role    = "roles/cloudbuild.builds.builder"
  member  = google_service_account.this["functions-build"].member
}

# Functions -> KFP: the functions call the KFP API through the GKE control plane's DNS-based endpoint, which
# checks IAM (container.clusters.connect) before Kubernetes RBAC does. Cluster IAM only exists at project
# level, so a custom role holds exactly the two permissions needed to reach the API server; what the
# function may do inside the cluster is then decided by RBAC (modules/kubeflow: proxy to ml-pipeline only).
resource "google_project_iam_custom_role" "cluster_connect" {
  project     = var.project_id
  role_id     = replace("${var.name}_cluster_connect", "-", "_")
  title       = "${var.name} GKE connect (DNS endpoint)"
  description = "Authenticate to the GKE API server through its DNS endpoint; RBAC decides the rest."
  permissions = ["container.clusters.get", "container.clusters.connect"]
}

# The functions launch runs; the API reads them (GET /runs/{id} reconciles a record with its KFP run).
resource "google_project_iam_member" "kfp_clients_cluster_connect" {
  for_each = toset(["functions", "api"])

  project = var.project_id
  role    = google_project_iam_custom_role.cluster_connect.id
  member  = google_service_account.this[each.key].member
}

moved {
  from = google_project_iam_member.functions_cluster_connect
  to   = google_project_iam_member.kfp_clients_cluster_connect["functions"]
}

# Anyone who applies this stack or operates the cluster (the release pipeline's deployer, people) also needs
# to reach the DNS endpoint; they are granted the same custom role, not cluster admin.
resource "google_project_iam_member" "operators_cluster_connect" {
  for_each = toset(var.cluster_operators)

  project = var.project_id
  role    = google_project_iam_custom_role.cluster_connect.id
  member  = each.value
}
