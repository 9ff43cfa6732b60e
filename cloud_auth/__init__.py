"""Google credentials for the deployment's own calls between its parts (:mod:`cloud_auth.tokens`): an
access token for GKE's endpoint in front of Kubeflow Pipelines, an ID token for a Cloud Run service. The
adapters that make those calls use it; the core never does."""
