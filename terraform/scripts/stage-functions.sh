#!/usr/bin/env bash
# Stages the Cloud Functions' sources for deployment (terraform zips each folder: modules/functions).
#
#   build/functions/<function>/            the function's folder (main.py, requirements.txt, ...)
#   build/functions/<function>/wheels/     the project's wheel (remarketing-<version>-py3-none-any.whl)
#   build/functions/<function>/constraints.txt
#
# A function's requirements.txt installs the project from that wheel with the exact pins, e.g.
#   --find-links ./wheels
#   -c constraints.txt
#   remarketing
# Usage: terraform/scripts/stage-functions.sh [OUTPUT_DIR]   (default: build/functions)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/build/functions}"
python="${PYTHON:-python3}"

rm -rf "$out"
mkdir -p "$out/.wheels"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$out/.wheels" "$root"

for fn in on_input_file on_weekly_file on_outcomes_file; do
  if [[ ! -f "$root/cloud_functions/$fn/main.py" ]]; then
    echo "missing $root/cloud_functions/$fn/main.py" >&2
    exit 1
  fi
  mkdir -p "$out/$fn/wheels"
  cp -R "$root/cloud_functions/$fn/." "$out/$fn/"
  cp "$out"/.wheels/remarketing-*.whl "$out/$fn/wheels/"
  cp "$root/constraints.txt" "$out/$fn/constraints.txt"
  find "$out/$fn" -name __pycache__ -type d -prune -exec rm -rf {} +
done
rm -rf "$out/.wheels"
echo "staged: $out"
