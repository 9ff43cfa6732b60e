output "frontend_url" {
  description = "In-cluster URL of the Managed Prometheus query frontend (Grafana's data source; Prometheus HTTP API, no authentication)."
  value       = local.frontend_url
}

output "namespace" {
  description = "Namespace of the Pushgateway, the query frontend and Grafana."
  value       = local.namespace
}

output "grafana" {
  description = "How to open Grafana: its service and the port-forward command (user admin, password in Secret Manager)."
  value = {
    service      = "${local.grafana_release}.${local.namespace}"
    port_forward = "kubectl -n ${local.namespace} port-forward svc/${local.grafana_release} 3000:80"
  }
}

output "pushgateway_url" {
  description = "In-cluster URL of the Pushgateway this module runs (it must be REMARKETING_PUSHGATEWAY_URL of the settings)."
  value       = "http://${helm_release.pushgateway.name}.${local.namespace}.svc.cluster.local:${local.pushgateway_port}"
}
