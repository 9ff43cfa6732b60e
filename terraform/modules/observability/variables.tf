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
  description = "Kubernetes namespace of the Pushgateway, the Managed Prometheus query frontend and Grafana (made by modules/cluster_observability)."
  type        = string
  default     = "monitoring"
}
variable "scrape_interval" {
  description = "Scrape interval of the PodMonitorings and of the Cloud Run collector (a Prometheus duration)."
  type        = string
  default     = "30s"
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

variable "frontend_ksa" {
  description = "Kubernetes service account of the Managed Prometheus query frontend (in var.namespace, made by modules/cluster_observability): its Workload Identity binding."
  type        = string
  default     = "gmp-frontend"
}

variable "undelivered_event_age_seconds" {
  description = "Age of the oldest storage event not yet accepted by a function (Eventarc's Pub/Sub subscription) above which the undelivered-events policy opens an incident."
  type        = number
  default     = 900
}
