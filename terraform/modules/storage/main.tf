# The two buckets of CONTRACTS.md and who may touch what in them.
#
#   landing   (Eventarc triggers attached)  input/  weekly/
#   artifacts (no trigger)                  model-output/<model>/<version>/  output/<run_id>/  runs/<run_id>.json
#                                           mlflow/ (MLflow's artifact root)  audit/  access/
#                                           uploads/<run_id>.json (the API's receipt of an upload)
#                                           kfp/ (Kubeflow Pipelines' pipeline root: every run's artifacts)
#
# Least privilege inside a bucket: GCS IAM has no per-folder grant on a plain bucket, so object access is
# granted with IAM conditions on the object name prefix:
#   resource.name.startsWith("projects/_/buckets/<bucket>/objects/<prefix>")
# A list request is authorised against the bucket, not an object, so a prefix condition can never allow it.
# Readers that must list (the KServe storage initializer lists a model directory, the API lists run
# records) get a custom role holding only storage.objects.list on the bucket: it reveals object names, not
# their content. (Managed folders would also scope listing; they are not used to keep the bucket layout
# exactly the plain prefixes of CONTRACTS.md.)

locals {
  artifacts_objects = "projects/_/buckets/${google_storage_bucket.artifacts.name}/objects"
  landing_objects   = "projects/_/buckets/${google_storage_bucket.landing.name}/objects"

  # KFP's default pipeline root (kfp-launcher's defaultPipelineRoot, modules/kubeflow): the run pods write
  # each step's artifacts under it as the pipelines account, KFP's UI reads them as kfp-system.
  pipeline_root_prefix = "kfp/"

  # One condition expression per set of prefixes.
  prefix_expr = {
    for k, prefixes in {
      runs         = ["runs/"]
      model_output = ["model-output/"]
      pipelines    = ["model-output/", "output/", "runs/", "history/", "experiments/", "decisions/", "kfp/"]
      api_read     = ["runs/", "output/", "history/", "model-output/", "uploads/"]
      api_write    = ["experiments/", "decisions/", "runs/"]
      api_receipts = ["uploads/"]
      mlflow       = ["mlflow/"]
      kfp_root     = ["kfp/"]
    } : k => join(" || ", [for p in prefixes : "resource.name.startsWith(\"${local.artifacts_objects}/${p}\")"])
  }
}

# Data access (read and write) audit logs for Cloud Storage: who read or wrote which object. They replace
# the legacy bucket usage logs (see the skips below).
resource "google_project_iam_audit_config" "storage" {
  count = var.enable_data_access_audit_logs ? 1 : 0

  project = var.project_id
  service = "storage.googleapis.com"
  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

resource "google_storage_bucket" "landing" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs data access logs (google_project_iam_audit_config.storage); legacy usage logs would need a third bucket that cannot log itself.
  project                     = var.project_id
  name                        = var.landing_bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
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

  # Uploaded files stay where they were put (ARCHITECTURE.md) until their retention ends; superseded
  # generations expire.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age            = var.cold_after_days
      matches_prefix = ["input/", "weekly/", "outcomes/"]
      with_state     = "LIVE"
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }
  # Retention of the weekly customer files (docs/personal-data.md): deleted once the week's outcomes can no
  # longer come back (monitoring reads the scored week's file to grow the history). On this versioned
  # bucket the delete leaves a noncurrent generation, removed noncurrent_retention_days later (above).
  lifecycle_rule {
    condition {
      age            = var.weekly_retention_days
      matches_prefix = ["weekly/"]
      with_state     = "LIVE"
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}

resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs data access logs (google_project_iam_audit_config.storage); legacy usage logs would need a third bucket that cannot log itself.
  project                     = var.project_id
  name                        = var.artifacts_bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
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

  # Model bundles and run records are never deleted (promotion and rollback move an alias, CONTRACTS.md);
  # old scored files move to a colder class, then the customers' files expire; superseded generations
  # expire.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age            = var.cold_after_days
      matches_prefix = ["output/"]
      with_state     = "LIVE"
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }
  # Retention (docs/personal-data.md): the files of a run that name customers (the contact list, its
  # rejects, every customer's contributions) are deleted; the run's manifest and a monitoring run's report,
  # aggregates only, stay with its record (both conditions must hold: the prefix and one of the names).
  lifecycle_rule {
    condition {
      age            = var.output_retention_days
      matches_prefix = ["output/"]
      matches_suffix = ["/predictions.csv", "/rejects.csv", "/contributions.parquet"]
      with_state     = "LIVE"
    }
    action {
      type = "Delete"
    }
  }
  # Kubeflow Pipelines' pipeline root: each run's hand-offs between its tasks (the validated rows, raw ids
  # and all; scored chunks), needed only while the run runs and for a look at a recent run in KFP's UI.
  lifecycle_rule {
    condition {
      age            = var.pipeline_root_retention_days
      matches_prefix = [local.pipeline_root_prefix]
      with_state     = "LIVE"
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}

# Optional CMEK: the project's Cloud Storage service agent must be able to use the key.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "gcs_agent" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# Listing without reading (see the header).
resource "google_project_iam_custom_role" "object_lister" {
  project     = var.project_id
  role_id     = replace("${var.name}_object_lister", "-", "_")
  title       = "${var.name} object lister"
  description = "List object names in a bucket; reading them needs a separate, prefix-conditioned grant."
  permissions = ["storage.objects.list"]
}

# ---------------------------------------------------------------- landing bucket
# functions: read the landing bucket (the object that fired the event, its metadata).
resource "google_storage_bucket_iam_member" "landing_functions_read" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = var.members.functions
}

# pipelines: read the landing bucket (the training or weekly file of the run).
resource "google_storage_bucket_iam_member" "landing_pipelines_read" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = var.members.pipelines
}

# pipelines: create the retraining files (input/history-*) the monitoring pipeline's policy writes; the
# trigger then launches them like any training file. Create-only: never over an existing object.
resource "google_storage_bucket_iam_member" "landing_pipelines_history_create" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectCreator"
  member = var.members.pipelines
  condition {
    title       = "retraining-files"
    description = "Only objects under input/history-"
    expression  = "resource.name.startsWith(\"${local.landing_objects}/input/history-\")"
  }
}

# api: read the training files a history version names (the schedule's turn puts them together).
resource "google_storage_bucket_iam_member" "landing_api_input_read" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = var.members.api
  condition {
    title       = "input-prefix"
    description = "Only objects under input/"
    expression  = "resource.name.startsWith(\"${local.landing_objects}/input/\")"
  }
}

# api: create the retraining files of the schedule's turn (POST /retraining), as the pipelines do.
resource "google_storage_bucket_iam_member" "landing_api_history_create" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectCreator"
  member = var.members.api
  condition {
    title       = "retraining-files"
    description = "Only objects under input/history-"
    expression  = "resource.name.startsWith(\"${local.landing_objects}/input/history-\")"
  }
}

# api: create objects under weekly/ and outcomes/ only. objectCreator cannot overwrite or delete, so an
# upload can never replace a file that is already there (the API names each upload uniquely).
resource "google_storage_bucket_iam_member" "landing_api_weekly_create" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectCreator"
  member = var.members.api
  condition {
    title       = "weekly-and-outcomes-prefixes"
    description = "Only objects under weekly/ and outcomes/"
    expression  = "resource.name.startsWith(\"${local.landing_objects}/weekly/\") || resource.name.startsWith(\"${local.landing_objects}/outcomes/\")"
  }
}

# ---------------------------------------------------------------- artifacts bucket
# functions: create and update run records (create-only precondition, then the status if launching fails).
resource "google_storage_bucket_iam_member" "artifacts_functions_runs" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = var.members.functions
  condition {
    title       = "runs-prefix"
    description = "Only run records under runs/"
    expression  = local.prefix_expr.runs
  }
}

# pipelines: write model bundles, scored files and run records, and (KFP's launcher in the run pods) every
# step's artifacts under the pipeline root.
resource "google_storage_bucket_iam_member" "artifacts_pipelines_write" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = var.members.pipelines
  condition {
    title       = "pipeline-prefixes"
    description = "model-output/, output/, runs/, history/, experiments/, decisions/ and kfp/ (the pipeline root)"
    expression  = local.prefix_expr.pipelines
  }
}

# serving: read model bundles only.
resource "google_storage_bucket_iam_member" "artifacts_serving_read" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = var.members.serving
  condition {
    title       = "model-output-prefix"
    description = "Only model bundles under model-output/"
    expression  = local.prefix_expr.model_output
  }
}

# api: read run records, scored files and upload receipts (and sign URLs for them, as itself: see
# modules/cloud_run_service).
resource "google_storage_bucket_iam_member" "artifacts_api_read" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = var.members.api
  condition {
    title       = "api-read-prefixes"
    description = "runs/, output/, history/, model-output/ and uploads/ (receipts)"
    expression  = local.prefix_expr.api_read
  }
}

# api: start and stop experiments and record the decisions (experiments/, decisions/); close a run record
# whose Kubeflow run ended without closing it (runs/: GET /runs/{id} reconciles, pipelines.launchers).
resource "google_storage_bucket_iam_member" "artifacts_api_experiments" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = var.members.api
  condition {
    title       = "experiments-decisions-runs-prefixes"
    description = "experiments/, decisions/ and runs/"
    expression  = local.prefix_expr.api_write
  }
}

# api: the receipt of each upload (uploads/<run_id>.json, written create-only) that lets GET /runs/{id}
# answer "queued" before the trigger has created the run record. objectCreator cannot replace one.
resource "google_storage_bucket_iam_member" "artifacts_api_receipts_create" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectCreator"
  member = var.members.api
  condition {
    title       = "upload-receipts-create"
    description = "Create upload receipts under uploads/ (never replace them)"
    expression  = local.prefix_expr.api_receipts
  }
}

# The audit trail (docs/personal-data.md): its records are created and read, never replaced or deleted
# (objectCreator cannot overwrite an object, objectViewer cannot change one); the head, a hint of where
# the trail ends, is updated in place. The API audits requests; the pipelines audit the gate's and the
# experiments' promotions.
resource "google_storage_bucket_iam_member" "artifacts_audit_create" {
  for_each = toset(["api", "pipelines"])

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectCreator"
  member = var.members[each.key]
  condition {
    title       = "audit-records-create"
    description = "Create audit records under audit/records/ (never replace them)"
    expression  = "resource.name.startsWith(\"${local.artifacts_objects}/audit/records/\")"
  }
}

resource "google_storage_bucket_iam_member" "artifacts_audit_read" {
  for_each = toset(["api", "pipelines"])

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = var.members[each.key]
  condition {
    title       = "audit-read"
    description = "Read the audit trail (each record follows the one before)"
    expression  = "resource.name.startsWith(\"${local.artifacts_objects}/audit/\")"
  }
}

resource "google_storage_bucket_iam_member" "artifacts_audit_head" {
  for_each = toset(["api", "pipelines"])

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = var.members[each.key]
  condition {
    title       = "audit-head"
    description = "Move the audit trail's head (audit/head.json) forward"
    expression  = "resource.name == \"${local.artifacts_objects}/audit/head.json\""
  }
}

# api: read the access book (principals, roles, hashed keys); the operator's own account writes it
# (`remarketing keys`), never the API.
resource "google_storage_bucket_iam_member" "artifacts_api_access_read" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = var.members.api
  condition {
    title       = "access-book-read"
    description = "Read access/principals.json"
    expression  = "resource.name.startsWith(\"${local.artifacts_objects}/access/\")"
  }
}

# mlflow: its artifact root, gs://<artifacts>/mlflow (--artifacts-destination, proxied artifact access).
resource "google_storage_bucket_iam_member" "artifacts_mlflow" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = var.members.mlflow
  condition {
    title       = "mlflow-prefix"
    description = "Only MLflow's artifact root"
    expression  = local.prefix_expr.mlflow
  }
}

# kfp-system: KFP's UI shows the runs' artifacts from the pipeline root (read only).
resource "google_storage_bucket_iam_member" "artifacts_kfp_ui_read" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = var.members["kfp-system"]
  condition {
    title       = "pipeline-root-read"
    description = "Read the runs' artifacts under kfp/ (KFP's UI)"
    expression  = local.prefix_expr.kfp_root
  }
}

# Listing (names only) for the parts that must list.
resource "google_storage_bucket_iam_member" "artifacts_list" {
  for_each = toset(["pipelines", "serving", "api", "mlflow"])

  bucket = google_storage_bucket.artifacts.name
  role   = google_project_iam_custom_role.object_lister.id
  member = var.members[each.key]
}
