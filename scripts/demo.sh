#!/usr/bin/env bash
# The first README command: install what is missing, build, and run the sidecar with
# the demo page on http://127.0.0.1:8080/ using the embedded bus (no Redis needed).
# Extra arguments go to comet-sidecar (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
echo
echo "Demo: open http://127.0.0.1:8080/ in two tabs, type in one, watch the other."
echo "      curl -N 'http://127.0.0.1:8080/sse?ch=demo'   and   curl -d hi http://127.0.0.1:8080/pub/demo"
echo
exec build/sidecar/comet-sidecar --listen 127.0.0.1:8080 --static-dir deploy/demo \
  --js-client js-client/comet.js "$@"
