# Kubeflow Pipelines' database outside the cluster: a Cloud SQL for MySQL instance (KFP's API server, its
# metadata server and its cache server speak MySQL) holding the runs, experiments, pipeline versions and
# ML Metadata, so the run history survives a cluster that is replaced. Private IP only, TLS required, the
# KFP services reach it through the Cloud SQL Auth Proxy in the cluster (modules/kubeflow cloudsql.tf) as
# the kfp-system service account, which may connect to this instance and no other.

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_6:ssl_mode is ENCRYPTED_ONLY (TLS on every connection, private IP only) and the only client is the Cloud SQL Auth Proxy, which brings its own TLS with ephemeral certificates; TRUSTED_CLIENT_CERTIFICATE_REQUIRED adds nothing for it.
  project             = var.project_id
  name                = var.instance_name
  region              = var.region
  database_version    = var.database_version
  deletion_protection = var.deletion_protection
  encryption_key_name = var.kms_key_name

  settings {
    tier              = var.tier
    edition           = "ENTERPRISE"
    availability_type = var.high_availability ? "REGIONAL" : "ZONAL"
    disk_autoresize   = true
    disk_type         = "PD_SSD"
    user_labels       = var.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = var.network_id
      ssl_mode                                      = "ENCRYPTED_ONLY"
      enable_private_path_for_google_cloud_services = false
    }

    backup_configuration {
      enabled            = true
      binary_log_enabled = true # point-in-time recovery of MySQL
      start_time         = "02:30"
      backup_retention_settings {
        retained_backups = var.backup_retention_count
      }
    }

    maintenance_window {
      day  = 7
      hour = 3
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    database_flags {
      name  = "local_infile"
      value = "off"
    }
    database_flags {
      name  = "skip_show_database"
      value = "on"
    }
  }

  depends_on = [var.private_services_connection]
}

# KFP creates its tables itself; the databases are named here (pipeline-install-config's pipelineDb, mlmdDb
# and cacheDb defaults), so that they and the user exist before KFP starts.
resource "google_sql_database" "this" {
  for_each = toset(var.databases)

  project  = var.project_id
  name     = each.value
  instance = google_sql_database_instance.this.name
}

resource "google_sql_user" "kfp" {
  project  = var.project_id
  name     = var.user
  instance = google_sql_database_instance.this.name
  password = var.password
}

# The Cloud SQL Auth Proxy connects as the kfp-system service account: Cloud SQL Client on this instance
# only (the role exists at project level; the condition names the instance).
resource "google_project_iam_member" "proxy_connects" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${var.client_service_account_email}"
  condition {
    title       = "kfp-database-only"
    description = "Connect to Kubeflow Pipelines' Cloud SQL instance and no other"
    expression  = "resource.name == 'projects/${var.project_id}/instances/${google_sql_database_instance.this.name}' && resource.type == 'sqladmin.googleapis.com/Instance'"
  }
}
