# Everything inside one environment's GKE cluster, composed from modules/kubeflow (cert-manager, Knative with
# Kourier as a ClusterIP service, KServe, Kubeflow Pipelines on Cloud SQL and GCS, the NetworkPolicies, the
# project's namespaces and RBAC) and modules/cluster_observability (Pushgateway, scrape targets, the Managed
# Prometheus query frontend, Grafana, the Pushgateway sweep). The in-cluster root (envs/<env>/cluster)
# applies it after the infrastructure root, from that root's output cluster_inputs: the cluster exists and
# its credentials are minted per request by the exec plugin (the root's providers.tf), so an apply can last
# as long as it needs.
#
# Secrets are read from Secret Manager here, never passed through the infrastructure root's outputs.

locals {
  i = var.inputs
}

data "google_secret_manager_secret_version_access" "kfp_db" {
  project = local.i.project_id
  secret  = local.i.secrets.kfp_db
}

data "google_secret_manager_secret_version_access" "grafana_admin" {
  project = local.i.project_id
  secret  = local.i.secrets.grafana_admin
}

module "kubeflow" {
  source               = "../kubeflow"
  project_id           = local.i.project_id
  cluster_name         = local.i.cluster.name
  cluster_location     = local.i.cluster.location
  kfp_version          = local.i.versions.kfp
  kserve_version       = local.i.versions.kserve
  knative_version      = local.i.versions.knative
  cert_manager_version = local.i.versions.cert_manager
  kfp_namespace        = local.i.k8s.kfp_namespace
  pipeline_runner_ksa  = local.i.k8s.pipeline_runner_ksa
  ui_ksa               = local.i.k8s.kfp_ui_ksa
  cloud_sql_proxy_ksa  = local.i.k8s.cloud_sql_proxy_ksa
  serving_namespace    = local.i.k8s.serving_namespace
  predictor_ksa        = local.i.k8s.predictor_ksa
  pipelines_gsa_email  = local.i.service_accounts.pipelines
  serving_gsa_email    = local.i.service_accounts.serving
  kfp_system_gsa_email = local.i.service_accounts.kfp_system
  kfp_client_emails    = local.i.kfp_client_emails
  kfp_reader_emails    = local.i.kfp_reader_emails
  control_plane_cidr   = local.i.control_plane_cidr
  pipeline_root        = local.i.pipeline_root
  database             = local.i.kfp_database
  database_password    = data.google_secret_manager_secret_version_access.kfp_db.secret_data
}

module "observability" {
  source                  = "../cluster_observability"
  project_id              = local.i.project_id
  namespace               = local.i.k8s.monitoring
  frontend_ksa            = local.i.k8s.frontend_ksa
  frontend_gsa_email      = local.i.service_accounts.query_frontend
  pushgateway             = local.i.pushgateway
  serving_namespace       = module.kubeflow.serving_namespace
  grafana_admin_password  = data.google_secret_manager_secret_version_access.grafana_admin.secret_data
  sweeper_image           = local.i.components_image
  sweeper_environment     = local.i.settings
  sweeper_namespace       = module.kubeflow.pipeline_runner.namespace
  sweeper_service_account = module.kubeflow.pipeline_runner.service_account
}

# The pipeline runs push to the Pushgateway named in their settings: it must be the one made here.
check "pushgateway_in_settings" {
  assert {
    condition     = local.i.settings.REMARKETING_PUSHGATEWAY_URL == module.observability.pushgateway_url
    error_message = "REMARKETING_PUSHGATEWAY_URL (${local.i.settings.REMARKETING_PUSHGATEWAY_URL}) is not the Pushgateway this root runs (${module.observability.pushgateway_url})."
  }
}
