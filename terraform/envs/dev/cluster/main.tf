# Dev, in-cluster root: what runs inside the cluster the infrastructure root (envs/dev/infra) made,
# applied after it with a state of its own. It reads that root's outputs from its state, so both agree on
# the cluster, the names inside it and the service accounts; its providers mint credentials per request
# (providers.tf).
data "terraform_remote_state" "infra" {
  backend = "gcs"
  config = {
    bucket = var.state_bucket
    prefix = "remarketing/dev/infra"
  }
}

module "cluster" {
  source = "../../../modules/cluster"
  inputs = data.terraform_remote_state.infra.outputs.cluster_inputs
}
