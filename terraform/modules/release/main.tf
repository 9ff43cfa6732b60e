# The release's two Cloud Build triggers, both running as the deployer service account:
#
#   <name>-release  on every push to the branch: cloudbuild.yaml tests, builds and pushes the images,
#                   compiles the pipelines, plans the infrastructure root and saves that plan (and its
#                   text) beside the state, then runs the deploy trigger at the same commit.
#   <name>-deploy   cloudbuild-deploy.yaml applies exactly that saved plan, plans and applies the in-cluster
#                   root, uploads the pipelines and runs the smoke test. With require_approval (prod) a build
#                   of this trigger waits, PENDING, until one of var.approvers approves it (Cloud Build's
#                   approvalConfig): the approver reads the saved plan's text first (docs/deploy.md).
#
# Manual triggers take their source from the repository at the commit they are run with (--sha), so the
# deploy build applies the plan with the same files that made it.

locals {
  repository_uri = "https://github.com/${var.repository.owner}/${var.repository.name}"
  substitutions = {
    _ENV          = var.environment
    _REGION       = var.region
    _STATE_BUCKET = var.state_bucket
  }
  service_account = "projects/${var.project_id}/serviceAccounts/${var.deployer_service_account}"
}

resource "google_cloudbuild_trigger" "release" {
  project         = var.project_id
  location        = var.trigger_location
  name            = "${var.name}-release"
  description     = "Test, build, push, plan ${var.environment}; then run ${var.name}-deploy at the same commit"
  filename        = "cloudbuild.yaml"
  service_account = local.service_account

  github {
    owner = var.repository.owner
    name  = var.repository.name
    push {
      branch = "^${var.repository.branch}$"
    }
  }

  substitutions = merge(local.substitutions, {
    _TFVARS_URI     = "gs://${var.state_bucket}/${var.environment}.tfvars"
    _DEPLOY_TRIGGER = "${var.name}-deploy"
    _TRIGGER_REGION = var.trigger_location
    _SMOKE_TEST     = tostring(var.smoke_test)
  })

  include_build_logs = "INCLUDE_BUILD_LOGS_WITH_STATUS"
}

resource "google_cloudbuild_trigger" "deploy" {
  project         = var.project_id
  location        = var.trigger_location
  name            = "${var.name}-deploy"
  description     = "Apply the saved plan of ${var.environment}, the in-cluster root, upload the pipelines, smoke test"
  service_account = local.service_account

  source_to_build {
    uri       = local.repository_uri
    ref       = "refs/heads/${var.repository.branch}"
    repo_type = "GITHUB"
  }

  git_file_source {
    path      = "cloudbuild-deploy.yaml"
    uri       = local.repository_uri
    revision  = "refs/heads/${var.repository.branch}"
    repo_type = "GITHUB"
  }

  # A build of this trigger waits for an approver before it starts (prod).
  approval_config {
    approval_required = var.require_approval
  }

  substitutions = merge(local.substitutions, {
    _NAME = var.name # its secrets (the smoke test's API key), and the check that prod starts here
    _TAG  = ""       # the release build passes the commit's tag
  })
}

# Who may approve a pending deploy (the role exists at project level only).
resource "google_project_iam_member" "approvers" {
  for_each = toset(var.approvers)

  project = var.project_id
  role    = "roles/cloudbuild.builds.approver"
  member  = each.value
}
