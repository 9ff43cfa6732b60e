# Secret Manager holds every credential; nothing secret is in code or in a variable default.
#   api-key        REMARKETING_API_KEY of the API; the Streamlit app sends it. Generated here.
#   pseudonym-key REMARKETING_CUSTOMER_ID_KEY: the HMAC key of customer pseudonyms (docs/personal-data.md);
#                  rotated by adding a version (records made under the old key keep its key id).
#   mlflow-db      the MLflow database user's password. Generated here, also set on the Cloud SQL user.
#   lookup-db      the password of the customer lookup table's Cloud SQL user (modules/lookup_database).
#                  Generated here; the API reads it (Cloud Run) and the pipelines' tasks read it themselves
#                  (REMARKETING_LOOKUP_DB_PASSWORD_SECRET), as they read pseudonym-key.
#   kfp-db         the password of Kubeflow Pipelines' Cloud SQL user (modules/kfp_database). Generated here;
#                  the in-cluster root reads it (modules/cluster) into the Kubernetes Secret KFP reads.
#   grafana-admin  Grafana's admin password. Generated here; the in-cluster root reads it (modules/cluster)
#                  into the Kubernetes Secret the Grafana chart reads (modules/cluster_observability)
#                  (operators: `gcloud secrets versions access`).
# Generated values live in the Terraform state as well: keep the state in a bucket only the deployers can
# read (docs/deploy.md). Set generate_values = false to create empty secrets and add versions yourself
# (`gcloud secrets versions add`), in which case the MLflow module must be applied after that.

locals {
  secrets = {
    api-key       = "API key of the Remarketing API (REMARKETING_API_KEY)"
    pseudonym-key = "HMAC key of customer pseudonyms (REMARKETING_CUSTOMER_ID_KEY)"
    mlflow-db     = "Password of the MLflow Cloud SQL user"
    lookup-db     = "Password of the customer lookup table's Cloud SQL user (REMARKETING_LOOKUP_DB_PASSWORD)"
    kfp-db        = "Password of the Kubeflow Pipelines Cloud SQL user"
    grafana-admin = "Password of Grafana's admin user (the Managed Prometheus dashboards)"
  }
}

resource "google_secret_manager_secret" "this" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = "${var.name}-${each.key}"
  labels    = var.labels

  annotations = {
    description = each.value
  }

  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }
}

resource "random_password" "this" {
  for_each = var.generate_values ? local.secrets : {}

  length  = 40
  special = false # URL- and shell-safe: the password goes into a database URI
}

resource "google_secret_manager_secret_version" "this" {
  for_each = var.generate_values ? local.secrets : {}

  secret      = google_secret_manager_secret.this[each.key].id
  secret_data = random_password.this[each.key].result
}

resource "google_secret_manager_secret_iam_member" "accessors" {
  for_each = { for a in var.accessors : "${a.secret}/${a.label}" => a }

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
