# What runs inside the GKE cluster (applied by the in-cluster root, envs/<env>/cluster, once the
# infrastructure root has made the cluster):
#   cert-manager                (Helm, jetstack)           webhook certificates for KServe
#   Knative Operator + Serving  (Helm + local chart)       KServe's Knative ("Serverless") mode, Kourier ingress
#                                                          as a ClusterIP service: revisions, scale to zero,
#                                                          canary traffic split, reachable in the cluster only
#   KServe                      (Helm, kserve-crd + kserve-resources, OCI charts)
#   Kubeflow Pipelines          (kustomize manifests, kfp/ and install-kfp.sh): metadata in Cloud SQL through
#                                the Cloud SQL Auth Proxy (cloudsql.tf), pipeline root in GCS
#   NetworkPolicies             who may reach the KFP API, its database and its object store
#                                (networkpolicies.tf)
#   the project's own objects   (namespaces, service accounts, RBAC)
#
# Identities inside the cluster (their Workload Identity bindings are Google IAM, made by the infrastructure
# root with the same names, modules/platform local.k8s):
#   kubeflow/pipeline-runner (KSA of every KFP run pod) -> pipelines GSA
#   remarketing-serving/remarketing-predictor (KSA of the predictor pods) -> serving GSA
#   kubeflow/kubeflow-pipelines-cloudsql-proxy and kubeflow/ml-pipeline-ui -> kfp-system GSA (Cloud SQL
#     client; reads the pipeline root for the UI)
#   functions GSA (a Google identity, user = its email) -> Role kfp-api-client: proxy to the ml-pipeline service
#   api GSA -> Role kfp-api-reader: GET through the same proxy only (reading a run's state)
#   pipelines -> Role inferenceservice-manager in the serving namespace (create, patch, delete InferenceServices)

locals {
  kfp_namespace     = var.kfp_namespace
  kfp_runner_ksa    = var.pipeline_runner_ksa
  serving_namespace = var.serving_namespace
  predictor_ksa     = var.predictor_ksa
  kfp_install       = "bash ${path.module}/install-kfp.sh"
  kfp_cluster       = "${var.project_id} ${var.cluster_location} ${var.cluster_name} ${var.kfp_version}"
}

# ---------------------------------------------------------------- cert-manager
resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_version
  namespace        = "cert-manager"
  create_namespace = true
  atomic           = true
  timeout          = 600

  set {
    name  = "crds.enabled"
    value = "true"
  }
}

# ---------------------------------------------------------------- Knative Serving (operator)
resource "helm_release" "knative_operator" {
  name             = "knative-operator"
  chart            = "https://github.com/knative/operator/releases/download/knative-v${var.knative_version}/knative-operator-v${var.knative_version}.tgz"
  namespace        = "knative-operator"
  create_namespace = true
  atomic           = true
  timeout          = 600
}

# The KnativeServing custom resource, from a local chart so that its CRD (installed by the operator above)
# does not have to exist when Terraform plans.
resource "helm_release" "knative_serving" {
  name             = "knative-serving"
  chart            = "${path.module}/charts/knative-serving"
  namespace        = "knative-serving"
  create_namespace = true
  atomic           = true
  timeout          = 900

  set {
    name  = "version"
    value = var.knative_version
  }
  # Kourier's gateway as a ClusterIP service (spec.ingress.kourier.service-type): the operator would
  # otherwise give it a LoadBalancer, a public address in front of every predictor.
  set {
    name  = "kourierServiceType"
    value = "ClusterIP"
  }

  depends_on = [helm_release.knative_operator]
}

# ---------------------------------------------------------------- KServe
resource "helm_release" "kserve_crd" {
  name             = "kserve-crd"
  repository       = "oci://ghcr.io/kserve/charts"
  chart            = "kserve-crd"
  version          = var.kserve_version
  namespace        = "kserve"
  create_namespace = true
  atomic           = true
  timeout          = 600

  depends_on = [helm_release.cert_manager]
}

resource "helm_release" "kserve" {
  name             = "kserve"
  repository       = "oci://ghcr.io/kserve/charts"
  chart            = "kserve-resources"
  version          = var.kserve_version
  namespace        = "kserve"
  create_namespace = true
  atomic           = true
  timeout          = 900

  # Knative mode (called "Serverless" before KServe 0.17): InferenceServices become Knative Services, so a
  # canary (canaryTrafficPercent) is a traffic split between two revisions.
  set {
    name  = "kserve.controller.deploymentMode"
    value = "Knative"
  }
  # Kourier, not Istio, is the Knative ingress here: KServe must not create Istio VirtualServices.
  set {
    name  = "kserve.controller.gateway.disableIstioVirtualHost"
    value = "true"
  }

  depends_on = [helm_release.kserve_crd, helm_release.knative_serving]
}

# ---------------------------------------------------------------- Kubeflow Pipelines (standalone)
# KFP publishes kustomize manifests, not a Helm chart. They are applied with kubectl from the machine that
# runs Terraform (it needs gcloud, kubectl and gke-gcloud-auth-plugin; the deploy build has them), in two
# phases: the cluster-scoped objects and the namespace first, then (once the database's Secret and proxy
# exist, cloudsql.tf) the services. Re-applied when the version, the cluster or the pipeline root changes.
resource "terraform_data" "kfp_cluster_scoped" {
  triggers_replace = {
    version = var.kfp_version
    cluster = var.cluster_name
  }

  provisioner "local-exec" {
    command = "${local.kfp_install} cluster-scoped ${local.kfp_cluster}"
  }
}

resource "terraform_data" "kfp" {
  triggers_replace = {
    version       = var.kfp_version
    cluster       = var.cluster_name
    pipeline_root = var.pipeline_root
    database      = var.database.connection_name
  }

  provisioner "local-exec" {
    command = "${local.kfp_install} pipelines ${local.kfp_cluster} ${var.pipeline_root}"
  }

  depends_on = [
    kubernetes_secret_v1.kfp_database,
    kubernetes_service_v1.kfp_database,
    kubernetes_deployment_v1.cloud_sql_proxy,
  ]
}

# ---------------------------------------------------------------- the project's namespace and identities
resource "kubernetes_namespace" "serving" {
  metadata {
    name = local.serving_namespace
    labels = {
      "app.kubernetes.io/part-of"          = "remarketing"
      # baseline is enforced (KServe's storage-initializer does not declare every restricted field);
      # restricted violations are reported as warnings.
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }

  depends_on = [helm_release.kserve]
}

resource "kubernetes_service_account" "predictor" {
  metadata {
    name      = local.predictor_ksa
    namespace = kubernetes_namespace.serving.metadata[0].name
    annotations = {
      "iam.gke.io/gcp-service-account" = var.serving_gsa_email
    }
  }
  automount_service_account_token = false
}

# KFP creates kubeflow/pipeline-runner; bind it to the pipelines service account.
resource "kubernetes_annotations" "pipeline_runner" {
  api_version = "v1"
  kind        = "ServiceAccount"
  metadata {
    name      = local.kfp_runner_ksa
    namespace = local.kfp_namespace
  }
  annotations = {
    "iam.gke.io/gcp-service-account" = var.pipelines_gsa_email
  }
  force = true

  depends_on = [terraform_data.kfp]
}

# KFP's UI shows the runs' artifacts, which are in the GCS pipeline root now: it reads them as the kfp-system
# service account (objectViewer on the root's prefix only).
resource "kubernetes_annotations" "pipeline_ui" {
  api_version = "v1"
  kind        = "ServiceAccount"
  metadata {
    name      = var.ui_ksa
    namespace = local.kfp_namespace
  }
  annotations = {
    "iam.gke.io/gcp-service-account" = var.kfp_system_gsa_email
  }
  force = true

  depends_on = [terraform_data.kfp]
}

# Pipelines deploy the champion on KServe: manage InferenceServices in the serving namespace, nothing else.
resource "kubernetes_role" "isvc_manager" {
  metadata {
    name      = "inferenceservice-manager"
    namespace = kubernetes_namespace.serving.metadata[0].name
  }
  rule {
    api_groups = ["serving.kserve.io"]
    resources  = ["inferenceservices"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }
  rule {
    api_groups = ["serving.kserve.io"]
    resources  = ["inferenceservices/status"]
    verbs      = ["get"]
  }
}

resource "kubernetes_role_binding" "isvc_manager" {
  metadata {
    name      = "pipelines-inferenceservice-manager"
    namespace = kubernetes_namespace.serving.metadata[0].name
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role.isvc_manager.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = local.kfp_runner_ksa
    namespace = local.kfp_namespace
  }
}

# Functions (and the release pipeline, to upload pipelines) reach the KFP API through the API server's
# service proxy: https://<dns-endpoint>/api/v1/namespaces/kubeflow/services/ml-pipeline:8888/proxy/...
# This Role allows exactly that proxy and nothing else in the cluster.
resource "kubernetes_role" "kfp_client" {
  metadata {
    name      = "kfp-api-client"
    namespace = local.kfp_namespace
  }
  rule {
    api_groups     = [""]
    resources      = ["services/proxy"]
    resource_names = ["ml-pipeline", "ml-pipeline:8888", "ml-pipeline:http"]
    verbs          = ["get", "create"]
  }

  depends_on = [terraform_data.kfp]
}

resource "kubernetes_role_binding" "kfp_client" {
  metadata {
    name      = "kfp-api-clients"
    namespace = local.kfp_namespace
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role.kfp_client.metadata[0].name
  }
  dynamic "subject" {
    for_each = var.kfp_client_emails
    content {
      kind      = "User"
      name      = subject.value
      api_group = "rbac.authorization.k8s.io"
    }
  }
}

# The API only reads runs (GET /runs/{id} reconciles a record with its KFP run): the proxy's "get" verb is an
# HTTP GET through it, so this Role cannot create, change or delete anything in KFP.
resource "kubernetes_role" "kfp_reader" {
  metadata {
    name      = "kfp-api-reader"
    namespace = local.kfp_namespace
  }
  rule {
    api_groups     = [""]
    resources      = ["services/proxy"]
    resource_names = ["ml-pipeline", "ml-pipeline:8888", "ml-pipeline:http"]
    verbs          = ["get"]
  }

  depends_on = [terraform_data.kfp]
}

resource "kubernetes_role_binding" "kfp_reader" {
  metadata {
    name      = "kfp-api-readers"
    namespace = local.kfp_namespace
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role.kfp_reader.metadata[0].name
  }
  dynamic "subject" {
    for_each = var.kfp_reader_emails
    content {
      kind      = "User"
      name      = subject.value
      api_group = "rbac.authorization.k8s.io"
    }
  }
}
