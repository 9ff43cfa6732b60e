# The MLflow tracking server and model registry: Cloud Run (image from mlflow/Dockerfile), Cloud SQL for
# PostgreSQL as the backend store (private IP only, reached over Direct VPC egress, TLS required), and
# gs://<artifacts>/mlflow as the artifact root, proxied by the server (clients never need bucket access
# for MLflow artifacts). Access is IAM invoker only: the pipelines' service account and var.invokers
# (people open the UI with `gcloud run services proxy`).

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_6:ssl_mode is ENCRYPTED_ONLY (TLS on every connection, private IP only); TRUSTED_CLIENT_CERTIFICATE_REQUIRED would need the Cloud SQL Auth Proxy inside the MLflow container.
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
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
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

resource "google_sql_database" "mlflow" {
  project  = var.project_id
  name     = "mlflow"
  instance = google_sql_database_instance.this.name
}

resource "google_sql_user" "mlflow" {
  project  = var.project_id
  name     = "mlflow"
  instance = google_sql_database_instance.this.name
  password = var.db_password
}

module "service" {
  source = "../cloud_run_service"

  project_id            = var.project_id
  region                = var.region
  name                  = var.service_name
  description           = "MLflow tracking server and model registry"
  image                 = var.image
  service_account_email = var.service_account_email
  access                = "invoker"
  invokers              = var.invokers
  vpc_subnet_id         = var.vpc_subnet_id
  cpu                   = "1"
  memory                = "2Gi"
  min_instances         = var.min_instances
  max_instances         = 3
  deletion_protection   = var.deletion_protection
  labels                = var.labels

  # Read by mlflow/serve.py, which builds the backend URI and starts `mlflow server`.
  environment = {
    MLFLOW_DB_HOST               = google_sql_database_instance.this.private_ip_address
    MLFLOW_DB_NAME               = google_sql_database.mlflow.name
    MLFLOW_DB_USER               = google_sql_user.mlflow.name
    MLFLOW_DB_SSLMODE            = "require"
    MLFLOW_ARTIFACTS_DESTINATION = var.artifacts_destination
    MLFLOW_ALLOWED_HOSTS         = "*.run.app,localhost,localhost:*"
    MLFLOW_WORKERS               = "2"
  }
  secret_environment = {
    MLFLOW_DB_PASSWORD = var.db_password_secret_id
  }
}
