# The three Cloud Functions (gen2) and their Eventarc storage triggers on the landing bucket.
#
#   on_input_file     input/<file>     -> training run     (cloud_functions/on_input_file/main.py)
#   on_weekly_file    weekly/<file>    -> scoring run      (cloud_functions/on_weekly_file/main.py)
#   on_outcomes_file  outcomes/<file>  -> monitoring run   (cloud_functions/on_outcomes_file/main.py)
#
# A storage trigger fires for every object of the bucket and cannot filter by prefix (CONTRACTS.md): the
# functions each receive every finalized object of the landing bucket and ignore the ones outside their prefix.
# Delivery is at least once (retry on failure); the run id derived from bucket, name and generation makes a
# redelivery a no-op.
#
# Source: each function's folder is zipped (archive_file) from var.source_root/<function>, which the release
# pipeline stages with terraform/scripts/stage-functions.sh (the function folder, the project's wheel in
# wheels/, constraints.txt). The object name carries the archive's hash, so a changed source redeploys.

locals {
  functions = {
    on_input_file = {
      description = "Launch a Kubeflow training run for each file finalized under input/"
    }
    on_weekly_file = {
      description = "Launch a Kubeflow scoring run for each file finalized under weekly/"
    }
    on_outcomes_file = {
      description = "Launch a Kubeflow monitoring run for each outcomes file finalized under outcomes/"
    }
  }
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs data access logs (modules/storage); usage logs would need another bucket.
  project                     = var.project_id
  name                        = var.source_bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only build inputs, reproducible from git
  labels                      = var.labels

  versioning {
    enabled = true
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle_rule {
    condition {
      age = var.source_retention_days
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

data "archive_file" "source" {
  for_each = local.functions

  type        = "zip"
  source_dir  = "${var.source_root}/${each.key}"
  output_path = "${path.root}/build/functions/${each.key}.zip"
  excludes    = ["__pycache__", ".pytest_cache"]
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  bucket = google_storage_bucket.source.name
  name   = "${each.key}/${data.archive_file.source[each.key].output_sha256}.zip"
  source = data.archive_file.source[each.key].output_path
}

# The functions' build (gen2 functions are built by Cloud Build into an image) runs as its own account and
# needs to read the source archives.
resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${var.build_service_account_email}"
}

resource "google_cloudfunctions2_function" "this" {
  for_each = local.functions

  project     = var.project_id
  name        = replace(each.key, "_", "-")
  location    = var.region
  description = each.value.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = each.key
    service_account = "projects/${var.project_id}/serviceAccounts/${var.build_service_account_email}"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    service_account_email            = var.runtime_service_account_email
    available_memory                 = var.memory
    available_cpu                    = "1"
    timeout_seconds                  = var.timeout_seconds
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 1
    # Events come from Eventarc, inside Google's network: nothing else can reach the function.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    environment_variables          = var.environment
  }

  event_trigger {
    trigger_region        = var.bucket_location
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = var.trigger_service_account_email
    event_filters {
      attribute = "bucket"
      value     = var.landing_bucket
    }
  }

  depends_on = [
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.gcs_publishes_events,
  ]
}

# Eventarc delivers each event by calling the function's Cloud Run service as the trigger's account.
resource "google_cloud_run_v2_service_iam_member" "trigger_invokes" {
  for_each = local.functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.trigger_service_account_email}"
}

# Cloud Storage publishes the bucket's events to Pub/Sub (Eventarc's transport) as its service agent.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_project_iam_member" "gcs_publishes_events" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}
