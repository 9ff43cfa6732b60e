variable "project_id" {
  description = "Project whose Managed Service for Prometheus (Cloud Monitoring) holds the metrics."
  type        = string
}

variable "region" {
  description = "Replica location of the RunMonitoring config secret."
  type        = string
}

variable "name" {
  description = "Short prefix of resource names (e.g. rmk-dev): alert policies, log-based metrics' display names, the config secret."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the Pushgateway, the Managed Prometheus query frontend and Grafana."
  type        = string
  default     = "monitoring"
}

variable "serving_namespace" {
  description = "Namespace of the InferenceServices (modules/kubeflow): the model servers' PodMonitoring lives there."
  type        = string
}

variable "scrape_interval" {
  description = "Scrape interval of the PodMonitorings and of the Cloud Run collector (a Prometheus duration)."
  type        = string
  default     = "30s"
}

variable "model_server_port" {
  description = "Container port on which the predictor (python -m serving) serves /metrics."
  type        = number
  default     = 8080
}

variable "pushgateway_chart_version" {
  description = "prometheus-community/prometheus-pushgateway chart version."
  type        = string
  default     = "3.8.0"
}

variable "grafana_chart_repository" {
  description = "Helm repository of the grafana chart (grafana/helm-charts moved it to grafana-community in January 2026)."
  type        = string
  default     = "https://grafana-community.github.io/helm-charts"
}

variable "grafana_chart_version" {
  description = "grafana chart version."
  type        = string
  default     = "12.11.1"
}

variable "grafana_admin_password" {
  description = "Password of Grafana's admin user (the value of the Secret Manager secret grafana-admin, modules/secrets)."
  type        = string
  sensitive   = true
  nullable    = false
}

variable "frontend_image" {
  description = "Managed Service for Prometheus query frontend image (the documented examples/frontend.yaml release)."
  type        = string
  default     = "gke.gcr.io/prometheus-engine/frontend:v0.15.3-gke.0"
}

variable "frontend_replicas" {
  description = "Replicas of the query frontend."
  type        = number
  default     = 1
}

variable "frontend_gsa_email" {
  description = "Email of the frontend's Google service account (modules/iam gmp-frontend); it gets roles/monitoring.viewer only."
  type        = string
}

variable "frontend_gsa_id" {
  description = "Resource id of the frontend's Google service account (for its Workload Identity binding)."
  type        = string
}

variable "api_service_account_email" {
  description = "Service account of the API's Cloud Run service: its metrics collector sidecar writes as it."
  type        = string
}

variable "api_metrics_port" {
  description = "Port of the API container's /metrics (the Cloud Run collector scrapes localhost on it)."
  type        = number
  default     = 8080
}

variable "function_names" {
  description = "Deployed Cloud Functions (modules/functions function_names): entry point => function (Cloud Run service) name. Their log lines become log-based metrics."
  type        = map(string)
}

variable "rules_file" {
  description = "Prometheus rule file the alert policies are made from. null = observability/rules/remarketing.rules.yml of this repository."
  type        = string
  default     = null
}

variable "dashboards_dir" {
  description = "Folder whose *.json Grafana dashboards are provisioned. null = observability/grafana/dashboards of this repository."
  type        = string
  default     = null
}

variable "alert_rules_excluded" {
  description = "Alerting rules of the rule file not made into alert policies (local-stack only: the bridge does not run in the cloud)."
  type        = list(string)
  default     = ["RemarketingBridgeNotDelivering"]
}

variable "alert_email" {
  description = "Email address the alert policies notify (a Cloud Monitoring email channel). null = policies without a channel (incidents in the console only)."
  type        = string
  default     = null
}

variable "kms_key_name" {
  description = "Optional CMEK for the RunMonitoring config secret's replica (must be in var.region). null = Google-managed keys."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the labelled resources (secret, alert policies)."
  type        = map(string)
  default     = {}
}

variable "sweeper_image" {
  description = "Image with the project's distribution (the components image) for the Pushgateway sweep."
  type        = string
}

variable "sweeper_environment" {
  description = "REMARKETING_* settings of GCP mode for the sweep (no secrets): buckets, tracking URI, REMARKETING_PUSHGATEWAY_URL."
  type        = map(string)
}

variable "sweeper_namespace" {
  description = "Namespace of the sweep's Kubernetes service account (modules/kubeflow pipeline_runner)."
  type        = string
}

variable "sweeper_service_account" {
  description = "Kubernetes service account the sweep runs as: the KFP run pods' (reads the run records, like the runs that pushed)."
  type        = string
}

variable "sweeper_schedule" {
  description = "Cron schedule (UTC) of the Pushgateway sweep (locally the bridge sweeps every reconcile cycle)."
  type        = string
  default     = "*/5 * * * *"
}
