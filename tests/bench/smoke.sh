#!/usr/bin/env bash
# bench.smoke: starts a sidecar (embedded bus) on a free loopback port and runs small
# comet-bench scenarios against it. Fails on any lost or duplicated message, failed
# connection or unexpected disconnect (comet-bench exits non-zero on those).
# usage: smoke.sh COMET_SIDECAR COMET_BENCH
set -euo pipefail
sidecar=$1
bench=$2
log=$(mktemp)
"$sidecar" --listen 127.0.0.1:0 --publish-listen 127.0.0.1:0 --workers 2 --log-level warn --heartbeat 30s >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  pub_port=$(sed -n 's/.*publish listener on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "bench.smoke: sidecar exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$log"; echo "bench.smoke: sidecar did not start" >&2; exit 1; }

failed=0
ran=0
run() {
  local name=$1
  shift
  ran=$((ran + 1))
  echo "--- $name: comet-bench $*"
  if ! "$bench" "$@" --port "$port" --pub-port "$pub_port" --server-pid "$pid" --settle 0.3 --drain-timeout 10 --ramp-timeout 20 --quiet --label "$name"; then
    echo "bench.smoke: $name FAILED" >&2
    failed=$((failed + 1))
  fi
}
run hold-sse      hold      --transport sse -n 200 --channels 2 --duration 1
run fanout-ws     fanout    --transport ws  -n 200 --channels 4 --messages 200 --rate 1000
run fanout-sse    fanout    --transport sse -n 200 --channels 4 --messages 200 --rate 1000
run fanout-xhr    fanout    --transport xhr -n 200 --channels 4 --messages 200 --rate 1000
run fanout-iframe fanout    --transport iframe -n 100 --channels 4 --messages 200 --rate 1000
run fanout-multipart fanout --transport multipart -n 100 --channels 4 --messages 200 --rate 1000
run fanout-lp     fanout    --transport longpoll -n 50 --channels 2 --messages 100 --rate 200
run poll          poll      --transport poll -n 20 --channels 2 --duration 2 --messages 40 --rate 20
run reconnect-ws  reconnect --transport ws  -n 100 --channels 4 --rate 200 --duration 2 --window 0.5 --storm-at 0.5
run reconnect-sse reconnect --transport sse -n 100 --channels 4 --rate 200 --duration 2 --window 0.5 --storm-at 0.5
run reconnect-xhr reconnect --transport xhr -n 100 --channels 4 --rate 200 --duration 2 --window 0.5 --storm-at 0.5
run reconnect-multipart reconnect --transport multipart -n 100 --channels 4 --rate 200 --duration 2 --window 0.5 --storm-at 0.5
kill -0 "$pid" 2>/dev/null || { echo "bench.smoke: sidecar died" >&2; cat "$log"; exit 1; }
echo
echo "$((ran - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
