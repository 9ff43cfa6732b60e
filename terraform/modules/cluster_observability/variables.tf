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
variable "dashboards_dir" {
  description = "Folder whose *.json Grafana dashboards are provisioned. null = observability/grafana/dashboards of this repository."
  type        = string
  default     = null
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

variable "project_id" {
  description = "Project whose Managed Service for Prometheus the query frontend reads."
  type        = string
}

variable "frontend_ksa" {
  description = "Kubernetes service account (and name) of the Managed Prometheus query frontend; its Workload Identity binding is modules/observability's."
  type        = string
  default     = "gmp-frontend"
}

variable "pushgateway" {
  description = "The Pushgateway's Helm release (= its service's name) and port, as REMARKETING_PUSHGATEWAY_URL names them (decided by modules/platform)."
  type = object({
    release = string
    port    = number
  })
  default = {
    release = "pushgateway"
    port    = 9091
  }
}
