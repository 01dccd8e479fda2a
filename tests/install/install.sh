#!/usr/bin/env bash
# install.prefix: `cmake --install` into a temporary prefix checks the installed files,
# then starts the installed binary with only the example environment file (its two
# ports moved to free ones, so the test runs beside anything), fetches /comet.js (the
# built-in client, equal to the installed comet.min.js), subscribes and receives a message
# published on the publish listener.
# usage: install.sh BUILD_DIR
set -euo pipefail
build=$1
prefix=$(mktemp -d)
log=$(mktemp)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$prefix" "$log" "$log.sse"
}
trap cleanup EXIT
fail() { echo "install.prefix: $*" >&2; cat "$log" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/comet-sidecar share/comet-sidecar/comet.js share/comet-sidecar/comet.min.js share/comet-sidecar/php/comet.php \
  share/comet-sidecar/lua/publish.lua share/comet-sidecar/lua/history.lua \
  share/comet-sidecar/comet-sidecar.env lib/systemd/system/comet-sidecar.service; do
  [ -e "$prefix/$f" ] || fail "missing $f in the installed tree"
done
echo "installed: $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"

(
  set -a
  # shellcheck disable=SC1091
  . "$prefix/share/comet-sidecar/comet-sidecar.env"
  set +a
  COMET_LISTEN=127.0.0.1:0 COMET_PUBLISH_LISTEN=127.0.0.1:0 exec "$prefix/bin/comet-sidecar"
) >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$log" && break
  kill -0 "$pid" 2>/dev/null || fail "the installed sidecar exited"
  sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
pub_port=$(sed -n 's/.*publish listener on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
[ -n "$port" ] && [ -n "$pub_port" ] || fail "no listening lines"

curl -fsS "http://127.0.0.1:$port/comet.js" | cmp -s - "$prefix/share/comet-sidecar/comet.min.js" ||
  fail "/comet.js is not the installed comet.min.js"
curl -sN --max-time 3 "http://127.0.0.1:$port/sse?ch=installed" >"$log.sse" &
sse=$!
for _ in $(seq 1 50); do grep -q "^id: installed@" "$log.sse" 2>/dev/null && break; sleep 0.05; done
curl -fsS -d "hello from the installed sidecar" "http://127.0.0.1:$pub_port/pub/installed" >/dev/null ||
  fail "publish on the publish listener failed"
wait "$sse" || true
grep -q "^data: hello from the installed sidecar$" "$log.sse" || fail "the SSE subscriber got: $(cat "$log.sse")"
echo "install.prefix: installed into a temporary prefix, served /comet.js and delivered a message"
