# The Pushgateway keeps every group until someone deletes it. Locally the bridge sweeps it
# (observability.push.sweep: a group whose run ended more than pipeline_metrics_retention_seconds ago, or
# whose run no longer exists, is deleted; one whose pushed status lags its record is pushed again). In the
# cloud nothing else would, and a failed run's series would keep RemarketingPipelineRunFailed firing
# forever: this CronJob runs the same function with the components image, as the KFP run pods' account
# (it reads the run records in runs/, as the runs that pushed do) with the same settings.

# The image is the components image by its commit tag (immutable tags in modules/registry), the reference
# the pipelines run.
resource "kubernetes_cron_job_v1" "pushgateway_sweep" {
  metadata {
    name      = "remarketing-pushgateway-sweep"
    namespace = var.sweeper_namespace
    labels = {
      "app.kubernetes.io/name"    = "pushgateway-sweep"
      "app.kubernetes.io/part-of" = "remarketing"
    }
  }

  spec {
    schedule                      = var.sweeper_schedule
    concurrency_policy            = "Forbid"
    starting_deadline_seconds     = 300
    successful_jobs_history_limit = 1
    failed_jobs_history_limit     = 3

    job_template {
      metadata {
        labels = {
          "app.kubernetes.io/name" = "pushgateway-sweep"
        }
      }
      spec {
        backoff_limit              = 0
        active_deadline_seconds    = 240
        ttl_seconds_after_finished = 3600

        template {
          metadata {
            labels = {
              "app.kubernetes.io/name" = "pushgateway-sweep"
            }
          }
          spec {
            service_account_name            = var.sweeper_service_account
            automount_service_account_token = false # Workload Identity goes through the metadata server
            restart_policy                  = "Never"

            security_context {
              run_as_non_root = true
              run_as_user     = 10001
              run_as_group    = 10001
              seccomp_profile {
                type = "RuntimeDefault"
              }
            }

            container {
              name              = "sweep"
              image             = var.sweeper_image
              image_pull_policy = "Always"
              command           = ["python", "-m", "observability.push"]

              dynamic "env" {
                for_each = var.sweeper_environment
                content {
                  name  = env.key
                  value = env.value
                }
              }

              resources {
                requests = {
                  cpu    = "100m"
                  memory = "256Mi"
                }
                limits = {
                  cpu    = "1"
                  memory = "1Gi"
                }
              }

              security_context {
                allow_privilege_escalation = false
                privileged                 = false
                read_only_root_filesystem  = true
                run_as_non_root            = true
                capabilities {
                  drop = ["ALL"]
                }
                seccomp_profile {
                  type = "RuntimeDefault"
                }
              }

              volume_mount {
                name       = "tmp"
                mount_path = "/tmp"
              }
            }

            volume {
              name = "tmp"
              empty_dir {
                size_limit = "64Mi"
              }
            }
          }
        }
      }
    }
  }

  depends_on = [helm_release.pushgateway]
}
