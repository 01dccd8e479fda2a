#!/usr/bin/env bash
# The first README command: install what is missing, build, and run the demo the way an
# application is wired (embedded bus, no Redis needed):
#  * comet-sidecar: browsers subscribe on 127.0.0.1:8080; its publish listener,
#    127.0.0.1:8081, takes keyless publishes from the app on this host;
#  * PHP's built-in server on 127.0.0.1:8000 (deploy/demo): the page, and publish.php,
#    which publishes what the page sends with comet_publish() (php-client). Browsers
#    never publish to the sidecar themselves.
# Extra arguments go to comet-sidecar. Ctrl-C stops both servers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release

command -v php >/dev/null 2>&1 || { echo "demo: php not found (apt-get install php-cli)" >&2; exit 1; }

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The page's origin. Its request log goes to a file (it logs every request).
php_log=build/demo-php.log
DEMO_SIDECAR_URL=http://127.0.0.1:8080 php -S 127.0.0.1:8000 -t deploy/demo >"$php_log" 2>&1 &
php_pid=$!
pids+=("$php_pid")
sleep 0.5
if ! kill -0 "$php_pid" 2>/dev/null; then
  echo "demo: PHP's built-in server did not start on 127.0.0.1:8000:" >&2
  cat "$php_log" >&2
  exit 1
fi

# The page can also be opened on the sidecar itself (--static-dir), but only PHP
# publishes for it.
build/sidecar/comet-sidecar --listen 127.0.0.1:8080 --publish-listen 127.0.0.1:8081 \
  --static-dir deploy/demo --js-client js-client/comet.js "$@" &
sidecar_pid=$!
pids+=("$sidecar_pid")

cat <<'EOF'

Demo: open http://127.0.0.1:8000/ in two tabs, type in one, watch the other.
      The page (PHP, :8000) subscribes to the sidecar (:8080) and posts what you type to
      publish.php, which publishes with comet_publish() on the sidecar's publish listener (:8081).
      subscribe:  curl -N 'http://127.0.0.1:8080/sse?ch=demo'
      publish:    curl -d hi http://127.0.0.1:8081/pub/demo
      (the public port refuses keyless publishes: curl -d hi http://127.0.0.1:8080/pub/demo -> 403)
      PHP server log: build/demo-php.log. Ctrl-C stops both servers.

EOF

# Whichever stops first, the other is stopped too (the EXIT trap).
status=0
wait -n "$sidecar_pid" "$php_pid" || status=$?
if ! kill -0 "$php_pid" 2>/dev/null; then
  echo "demo: PHP's built-in server stopped (see $php_log)" >&2
fi
exit "$status"
