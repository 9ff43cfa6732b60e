# Production, infrastructure root: regional GKE control plane and nodes, highly available databases,
# deletion protection. On its own project (labelled remarketing-environment=prod); the cluster's contents
# are envs/prod/cluster's.
module "platform" {
  source = "../../../modules/platform"

  project_id  = var.project_id
  region      = var.region
  environment = "prod"
  name        = "rmk-prod"
  image_tag   = var.image_tag

  gke_location     = var.region
  gke_machine_type = "e2-standard-8"
  gke_min_nodes    = 1
  gke_max_nodes    = 5

  sql_tier              = "db-custom-2-7680"
  kfp_sql_tier          = "db-custom-2-7680"
  sql_high_availability = true
  deletion_protection   = true

  api_max_instances = 10
  app_max_instances = 5

  # 100M customers a week: one replica per shard, 1.5 to 2.3 hours end to end (docs/sizing.md)
  scoring_shards             = 16
  serving_min_replicas       = 0
  serving_max_replicas       = 16
  serving_concurrency_target = 4

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

  # The release: Cloud Build triggers; a deploy to prod waits for an approver, who reads its saved plan first
  state_bucket       = var.state_bucket
  release_repository = var.release_repository
  require_approval   = true
  release_approvers  = var.release_approvers
  release_smoke_test = var.release_smoke_test
}
