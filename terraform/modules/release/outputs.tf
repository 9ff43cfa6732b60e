output "triggers" {
  description = "The release and deploy triggers' names, and whether a deploy waits for an approval."
  value = {
    release          = google_cloudbuild_trigger.release.name
    deploy           = google_cloudbuild_trigger.deploy.name
    require_approval = var.require_approval
  }
}
