#!/usr/bin/env bash
# Installs the Terraform binary the release pins (cloudbuild.yaml, cloudbuild-deploy.yaml) into
# /usr/local/bin, after checking the archive against HashiCorp's published SHA-256 sums.
# Usage: terraform/scripts/install-terraform.sh VERSION
set -euo pipefail

version="${1:?usage: install-terraform.sh VERSION}"
base="https://releases.hashicorp.com/terraform/${version}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
curl -fsSLO "${base}/terraform_${version}_linux_amd64.zip"
curl -fsSLO "${base}/terraform_${version}_SHA256SUMS"
grep "terraform_${version}_linux_amd64.zip" "terraform_${version}_SHA256SUMS" | sha256sum -c -
python3 -c "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).extract('terraform', '/usr/local/bin')" \
  "terraform_${version}_linux_amd64.zip"
chmod +x /usr/local/bin/terraform
terraform version
