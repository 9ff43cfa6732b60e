# The customer lookup table in the cloud (docs/personal-data.md): Cloud SQL for PostgreSQL, the tables of
# remarketing.customer_lookup_postgres. The scoring pipelines' publish step writes a run's rows (the
# pipelines' service account, from the run pods on GKE); the API reads them for GET /customers/{id}
# (Cloud Run, through Direct VPC egress). Private IP only, TLS on every connection; one user, whose
# password is the Secret Manager secret lookup-db (modules/secrets), read by those two accounts only.
#
# An instance of its own rather than a database in MLflow's: the table holds customers' ids, scores and
# values, MLflow's instance its runs and models. Apart, the MLflow server (a large web application that
# data scientists reach, whose database user is, as every user made through Cloud SQL's API, a member of
# cloudsqlsuperuser) holds no credential that opens the customers' rows; the lookup's backups are its
# own (few, and no point-in-time log: the table is derived from output/, and every backup is one more
# copy of customers that retention has removed); and either can be sized, restored or deleted alone.

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_6:ssl_mode is ENCRYPTED_ONLY (TLS on every connection, private IP only); TRUSTED_CLIENT_CERTIFICATE_REQUIRED would need client certificates in the API and the run pods.
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
      enabled                        = true
      point_in_time_recovery_enabled = false
      start_time                     = "02:15"
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
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    # DDL only: a statement's text would carry a customer's id (values are bound parameters, but logging
    # every statement logs them too).
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [var.private_services_connection]
}

resource "google_sql_database" "lookup" {
  project  = var.project_id
  name     = var.database
  instance = google_sql_database_instance.this.name
}

resource "google_sql_user" "lookup" {
  project  = var.project_id
  name     = var.user
  instance = google_sql_database_instance.this.name
  password = var.password
}
