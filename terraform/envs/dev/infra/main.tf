# Development, infrastructure root: one zone, scale to zero, no deletion protection, small databases. On its
# own project (labelled remarketing-environment=dev); the cluster's contents are envs/dev/cluster's.
module "platform" {
  source = "../../../modules/platform"

  project_id  = var.project_id
  region      = var.region
  environment = "dev"
  name        = "rmk-dev"
  image_tag   = var.image_tag

  gke_location     = "${var.region}-b"
  gke_machine_type = "e2-standard-4"
  gke_min_nodes    = 1
  gke_max_nodes    = 3

  sql_tier              = "db-custom-1-3840"
  sql_high_availability = false
  deletion_protection   = false

  functions_source_root    = var.functions_source_root
  kms_key_name             = var.kms_key_name
  app_access               = var.app_access
  app_users                = var.app_users
  api_users                = var.api_users
  mlflow_users             = var.mlflow_users
  cluster_operators        = var.cluster_operators
  deployer_service_account = var.deployer_service_account
  gke_rbac_security_group  = var.gke_rbac_security_group
  alert_email              = var.alert_email

  # The release: Cloud Build triggers; a deploy to dev runs as soon as its plan is made
  state_bucket       = var.state_bucket
  release_repository = var.release_repository
  require_approval   = false
  release_approvers  = var.release_approvers
  release_smoke_test = var.release_smoke_test
}
