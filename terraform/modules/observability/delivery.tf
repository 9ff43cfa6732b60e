# Alerts of the cloud's own delivery path, beside the rule file's (alerts.tf). A failed run is the rule
# file's RemarketingPipelineRunFailed: its status is pushed by the run's steps, and the Pushgateway sweep
# pushes it again from the record when the record ended without the run pushing (a run KFP killed, one the
# API's reconcile failed). What no run record ever shows is the event that never became a run:
#
#   storage events not delivered   Eventarc delivers each finalized object through a Pub/Sub push
#                                  subscription (eventarc-<region>-<trigger>-sub-<n>) and redelivers what a
#                                  function refused (KFP out of reach: the function errs on purpose, the run
#                                  stays queued). The oldest event still waiting above
#                                  var.undelivered_event_age_seconds means uploads start no runs. One
#                                  project per environment, so every Eventarc subscription here is ours.
#   files no run was launched for  a function acknowledged an event without launching (the object's
#                                  generation gone, launch() refused it): the log-based metric's
#                                  reason "not launched" (log_metrics.yaml).

resource "google_monitoring_alert_policy" "events_not_delivered" {
  project               = var.project_id
  display_name          = "${var.name}: storage events not delivered"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.notification_channels
  user_labels           = merge(var.labels, { rule_group = "remarketing-delivery", severity = "page" })

  conditions {
    display_name = "Oldest storage event waiting for a function"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.labels.subscription_id = starts_with(\"eventarc-\")"
      comparison      = "COMPARISON_GT"
      threshold_value = var.undelivered_event_age_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Storage events not delivered to the functions"
    content   = "A finalized object in the landing bucket has waited more than ${var.undelivered_event_age_seconds} s for a function to accept its event (Eventarc keeps redelivering it): uploads and dropped files do not start runs. The functions err on purpose while Kubeflow Pipelines cannot be reached (their log says `not launched yet`); see docs/deploy.md, \"When KFP cannot be reached\"."
  }
}

resource "google_monitoring_alert_policy" "not_launched" {
  project               = var.project_id
  display_name          = "${var.name}: files no run was launched for"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels
  user_labels           = merge(var.labels, { rule_group = "remarketing-delivery", severity = "ticket" })

  conditions {
    display_name = "A function acknowledged an event without launching a run"
    condition_prometheus_query_language {
      query                     = "sum by (function) (increase(logging_googleapis_com:user_${google_logging_metric.functions["remarketing_function_events_ignored"].name}{reason=\"not launched\"}[15m])) > 0"
      duration                  = "0s"
      evaluation_interval       = "60s"
      disable_metric_validation = true
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "A file in the landing bucket started no run"
    content   = "A function (the incident's `function` label) acknowledged a storage event without launching a run (its log line `not launched gs://...` says why, e.g. the object's generation no longer exists). The file stays where it was put; drop it again to run it."
  }
}
