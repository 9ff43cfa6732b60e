#!/usr/bin/env bash
# Installs standalone Kubeflow Pipelines from its kustomize manifests (KFP ships no Helm chart), in two
# phases so that Terraform can put what KFP reads in place in between:
#   install-kfp.sh cluster-scoped PROJECT LOCATION CLUSTER KFP_VERSION
#       CRDs, cluster roles and the kubeflow namespace
#   install-kfp.sh pipelines PROJECT LOCATION CLUSTER KFP_VERSION PIPELINE_ROOT
#       the KFP services (kfp/kustomization.yaml, rendered with the version and the pipeline root), once
#       Terraform made the Secret mysql-secret and the Cloud SQL Auth Proxy behind the Service mysql
# Needs gcloud, kubectl and gke-gcloud-auth-plugin, and the custom role that allows the DNS endpoint.
set -euo pipefail

phase="$1" project="$2" location="$3" cluster="$4" version="$5"

KUBECONFIG="$(mktemp)"
export KUBECONFIG
work="$(mktemp -d)"
trap 'rm -rf "$KUBECONFIG" "$work"' EXIT

gcloud container clusters get-credentials "$cluster" \
  --project "$project" --location "$location" --dns-endpoint

base="github.com/kubeflow/pipelines/manifests/kustomize"
case "$phase" in
  cluster-scoped)
    kubectl apply -k "${base}/cluster-scoped-resources?ref=${version}"
    kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
    ;;
  pipelines)
    root="$6"
    case "$root" in
      gs://*/) ;;
      *) echo "install-kfp.sh: the pipeline root must be a gs:// folder ending in /, not '$root'" >&2; exit 2 ;;
    esac
    here="$(cd "$(dirname "$0")" && pwd)"
    cp "$here"/kfp/*.yaml "$work"/
    sed -i "s|KFP_VERSION|${version}|g" "$work/kustomization.yaml"
    sed -i "s|PIPELINE_ROOT|${root}|g" "$work/kfp-launcher.yaml"
    kubectl apply -k "$work"
    kubectl -n kubeflow rollout status deployment/ml-pipeline --timeout=900s
    ;;
  *)
    echo "install-kfp.sh: unknown phase '$phase' (cluster-scoped or pipelines)" >&2
    exit 2
    ;;
esac
