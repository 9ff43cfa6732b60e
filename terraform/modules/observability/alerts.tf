# Alerts in the cloud: Cloud Monitoring alert policies made from the same rule file the local Prometheus
# loads (observability/rules/remarketing.rules.yml, Prometheus rule-group YAML), one policy per alerting
# rule, each with one PromQL condition (query = expr, duration = for, labels, rule_group / alert_rule), and
# routed to an email notification channel.
#
# Recording rules: an alert policy evaluates one PromQL expression and Cloud Monitoring keeps no recording
# rules of its own (only the in-cluster GMP rule-evaluator, with Rules/GlobalRules objects, writes recorded
# series; the API's series come from Cloud Run, outside any cluster namespace, so they would need
# GlobalRules). Instead, every recording rule an alert uses is inlined into the alert's query: each name
# token of the expression that is a recording rule's name is replaced by "(<its expr>)", one level of
# nesting included. The preconditions refuse a rule file where that would not be the same query: a
# recorded series used with a selector or a range, a recording rule with labels, or deeper nesting.
#
# Annotations: Cloud Monitoring's documentation knows ${metric.label.KEY}; `{{ $labels.KEY }}` is turned
# into it. Other Prometheus template expressions ({{ $value }}, {{ query ... }}) are not evaluated by Cloud
# Monitoring and stay as written.
#
# The metrics do not exist before the first scrape (or push), so metric validation is off.

locals {
  rules_file  = coalesce(var.rules_file, "${path.module}/../../../observability/rules/remarketing.rules.yml")
  rule_groups = try(yamldecode(file(local.rules_file)).groups, [])

  all_rules = flatten([
    for g in local.rule_groups : [
      for r in try(g.rules, []) : merge(r, { group = g.name, group_interval = try(g.interval, null) })
    ]
  ])
  record_rules = { for r in local.all_rules : r.record => r if try(r.record, null) != null }
  alert_rules = {
    for r in local.all_rules : "${r.group}/${r.alert}" => r
    if try(r.alert, null) != null && !contains(var.alert_rules_excluded, try(r.alert, ""))
  }

  # PromQL split into name tokens and everything between them (the pieces join back into the expression).
  token      = "[A-Za-z_:][A-Za-z0-9_:]*|[^A-Za-z_:]+"
  recorded   = { for name, r in local.record_rules : name => "(${trimspace(r.expr)})" }
  recorded_2 = { for name, e in local.recorded : name => join("", [for t in regexall(local.token, e) : lookup(local.recorded, t, t)]) }
  alert_queries = {
    for k, r in local.alert_rules : k => trimspace(join("", [for t in regexall(local.token, trimspace(r.expr)) : lookup(local.recorded_2, t, t)]))
  }
  # The recording rules an alert uses, directly (names in its expression) or through another one (names
  # in the expressions of those).
  alert_records = {
    for k, r in local.alert_rules : k => distinct([
      for t in regexall(local.token, join(" ", concat([r.expr], [for piece in regexall(local.token, r.expr) : lookup(local.recorded, piece, "")]))) : t
      if contains(keys(local.record_rules), t)
    ])
  }

  # Prometheus durations ("1m", "1h30m") in seconds.
  unit_seconds = { ms = 0.001, s = 1, m = 60, h = 3600, d = 86400, w = 604800, y = 31536000 }
  for_seconds = {
    for k, r in local.alert_rules : k => floor(sum(concat([0], [
      for m in regexall("([0-9]+)(ms|s|m|h|d|w|y)", try(r["for"], "0s")) : tonumber(m[0]) * local.unit_seconds[m[1]]
    ])))
  }
  # A group's interval, rounded up to the multiple of 30 s Cloud Monitoring takes (null: its default, 30 s).
  evaluation_intervals = {
    for k, r in local.alert_rules : k => r.group_interval == null ? null : format("%ds", max(30, 30 * ceil(sum(concat([0], [
      for m in regexall("([0-9]+)(ms|s|m|h|d|w|y)", coalesce(r.group_interval, "0s")) : tonumber(m[0]) * local.unit_seconds[m[1]]
    ])) / 30)))
  }

  severities = { page = "CRITICAL", ticket = "WARNING" }

  # {{ $labels.KEY }} -> ${metric.label.KEY} (through a placeholder: a regex replacement would read "${" as
  # a group reference).
  label_ref = "/\\{\\{\\s*\\$labels\\.([A-Za-z_][A-Za-z0-9_]*)\\s*\\}\\}/"
  # "${metric.label." (spelled without a template escape, which python-hcl2 does not read)
  label_var_open = join("", ["$", "{metric.label."])
  annotations_marked = {
    for k, r in local.alert_rules : k => {
      for name, text in try(r.annotations, {}) : name => replace(trimspace(tostring(text)), local.label_ref, "@@label:$1@@")
    }
  }
  annotations = {
    for k, texts in local.annotations_marked : k => {
      for name, text in texts : name => replace(replace(text, "@@label:", local.label_var_open), "@@", "}")
    }
  }

  notification_channels = [for c in google_monitoring_notification_channel.email : c.name]
}

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email == null ? 0 : 1

  project      = var.project_id
  display_name = "${var.name} alerts"
  description  = "Remarketing alert policies (observability/rules/remarketing.rules.yml)"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
  user_labels = var.labels
}

resource "google_monitoring_alert_policy" "rules" {
  for_each = local.alert_rules

  project               = var.project_id
  display_name          = "${var.name}: ${each.value.alert}"
  combiner              = "OR"
  severity              = lookup(local.severities, try(each.value.labels.severity, ""), null)
  notification_channels = local.notification_channels
  user_labels = merge(var.labels, {
    rule_group = substr(replace(lower(each.value.group), "/[^a-z0-9_-]/", "_"), 0, 63)
    severity   = substr(replace(lower(try(each.value.labels.severity, "none")), "/[^a-z0-9_-]/", "_"), 0, 63)
  })

  conditions {
    display_name = each.value.alert
    condition_prometheus_query_language {
      query                     = local.alert_queries[each.key]
      duration                  = "${local.for_seconds[each.key]}s"
      evaluation_interval       = local.evaluation_intervals[each.key]
      labels                    = { for name, value in try(each.value.labels, {}) : name => tostring(value) }
      rule_group                = each.value.group
      alert_rule                = each.value.alert
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = substr(lookup(local.annotations[each.key], "summary", each.value.alert), 0, 1000)
    content = substr(join("\n\n", compact([
      lookup(local.annotations[each.key], "summary", ""),
      lookup(local.annotations[each.key], "description", ""),
      "Alerting rule `${each.value.alert}` of group `${each.value.group}` in observability/rules/remarketing.rules.yml, evaluated by Cloud Monitoring on Managed Service for Prometheus (recording rules inlined). Template expressions in braces other than label references are shown as written.",
    ])), 0, 8000)
  }

  lifecycle {
    precondition {
      condition     = alltrue([for t in regexall(local.token, local.alert_queries[each.key]) : !contains(keys(local.record_rules), t)])
      error_message = "Alert ${each.value.alert} uses recording rules nested more than two deep; they cannot be inlined."
    }
    precondition {
      condition = alltrue(flatten([
        for n in local.alert_records[each.key] : [
          for expr in concat([each.value.expr], [for m in local.alert_records[each.key] : local.record_rules[m].expr]) :
          length(regexall("(^|[^A-Za-z0-9_:])${n}\\s*[{\\[]", expr)) == 0
        ]
      ]))
      error_message = "Alert ${each.value.alert} selects from or takes a range of a recorded series; inlining its recording rule would not be the same query."
    }
    precondition {
      condition     = alltrue([for n in local.alert_records[each.key] : length(try(local.record_rules[n].labels, {})) == 0])
      error_message = "Alert ${each.value.alert} uses a recording rule with labels; inlining it would drop them."
    }
  }
}
