output "api_metrics_sidecar_config_secret" {
  description = "Secret Manager secret of the API collector's RunMonitoring config, readable by the API's account (modules/cloud_run_service metrics_sidecar.config_secret)."
  value       = google_secret_manager_secret.api_run_monitoring.secret_id
  # The revision must find the version, the read grant and the right to write metrics in place.
  depends_on = [
    google_secret_manager_secret_version.api_run_monitoring,
    google_secret_manager_secret_iam_member.api_reads_run_monitoring,
    google_project_iam_member.api_writes_metrics,
  ]
}

output "alert_policies" {
  description = "Cloud Monitoring alert policies by rule (group/alert) => policy name."
  value       = { for k, p in google_monitoring_alert_policy.rules : k => p.name }
}

output "notification_channel" {
  description = "The email notification channel of the alert policies (null without alert_email)."
  value       = one(google_monitoring_notification_channel.email[*].name)
}

output "log_metrics" {
  description = "Log-based metrics of the functions, as PromQL names (logging_googleapis_com:user_<name>)."
  value       = { for k, m in google_logging_metric.functions : k => "logging_googleapis_com:user_${m.name}" }
}
