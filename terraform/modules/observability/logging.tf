# The functions run on Cloud Run (gen2), which Managed Service for Prometheus does not scrape, and they
# serve no /metrics there: the same counts are log-based metrics over the lines they log
# (log_metrics.yaml). In PromQL they are logging_googleapis_com:user_<name> (counters of DELTA kind), e.g.
#   sum by (function, reason) (increase(logging_googleapis_com:user_remarketing_function_events_ignored[1h]))
# Gen2 functions log as their Cloud Run service (resource.type cloud_run_revision, service_name = the
# function's name); the label `function` is that name. Log-based metric names are per project: one
# environment per project (the functions' names are not prefixed either).

locals {
  log_metrics = yamldecode(file("${path.module}/log_metrics.yaml"))

  functions_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(${join(" OR ", [for n in sort(values(var.function_names)) : "\"${n}\""])})",
  ])
}

resource "google_logging_metric" "functions" {
  for_each = local.log_metrics

  project     = var.project_id
  name        = each.key
  description = trimspace(each.value.description)
  filter      = "${local.functions_filter} AND textPayload=~\"${each.value.match}\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name} ${each.key}"

    labels {
      key         = "function"
      value_type  = "STRING"
      description = "The function (its Cloud Run service name, e.g. on-input-file)."
    }

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = "A fixed phrase of the log line (bounded values)."
      }
    }
  }

  label_extractors = merge(
    { function = "EXTRACT(resource.labels.service_name)" },
    { for key, regex in each.value.labels : key => "REGEXP_EXTRACT(textPayload, \"${regex}\")" },
  )
}
