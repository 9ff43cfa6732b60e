#!/usr/bin/env bash
# Install the Debian packages listed in the given files that are not installed yet (sudo when not root).
set -euo pipefail
recommends=()
if [[ "${1:-}" == "--no-recommends" ]]; then
  recommends=(--no-install-recommends)  # e.g. no node exporter beside Prometheus
  shift
fi
missing=()
for list in "$@"; do
  while read -r package; do
    [[ -z "$package" || "$package" == \#* ]] && continue
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done < "$list"
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "needs the Debian packages: ${missing[*]} (no apt-get here: install them with your system's tools)" >&2
  exit 1
fi
SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "needs the Debian packages ${missing[*]}: run as root, or install sudo" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${recommends[@]}" "${missing[@]}" >/dev/null
