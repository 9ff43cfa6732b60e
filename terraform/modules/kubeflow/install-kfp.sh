#!/usr/bin/env bash
# Installs standalone Kubeflow Pipelines from its kustomize manifests (KFP ships no Helm chart).
# Usage: install-kfp.sh PROJECT LOCATION CLUSTER KFP_VERSION
# Needs gcloud, kubectl and gke-gcloud-auth-plugin, and the custom role that allows the DNS endpoint.
set -euo pipefail

project="$1" location="$2" cluster="$3" version="$4"

KUBECONFIG="$(mktemp)"
export KUBECONFIG
trap 'rm -f "$KUBECONFIG"' EXIT

gcloud container clusters get-credentials "$cluster" \
  --project "$project" --location "$location" --dns-endpoint

base="github.com/kubeflow/pipelines/manifests/kustomize"
kubectl apply -k "${base}/cluster-scoped-resources?ref=${version}"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "${base}/env/platform-agnostic?ref=${version}"
kubectl -n kubeflow rollout status deployment/ml-pipeline --timeout=900s
