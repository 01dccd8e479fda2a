#!/usr/bin/env bash
# Bytes on the wire of the browser client, next to socket.io-client's and centrifuge-js's
# minified builds. comet.js is measured as the sidecar serves it (GET /comet.js with and
# without Accept-Encoding: gzip); the others from their npm packages (npm pack, the
# registry's current version), raw and gzip -9 (what a server compressing them sends).
#   tests/bench/client-size.sh [path/to/comet-sidecar]     prints a Markdown table
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/build/sidecar/comet-sidecar}"
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" --listen "127.0.0.1:$port" --publish-listen off --log-level warn >"$work/sidecar.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/livez" >/dev/null 2>&1 && break; sleep 0.1; done

served() {  # bytes of the body as sent, for the given Accept-Encoding
  curl -fsS -o /dev/null -w '%{size_download}' -H "Accept-Encoding: $1" "http://127.0.0.1:$port/comet.js"
}
comet_plain="$(served identity)"
comet_gzip="$(served gzip)"
comet_version="$(curl -fsS "http://127.0.0.1:$port/comet.js" | head -c 200 | sed -n 's/^\/\*! comet\.js \([^ ]*\).*/\1/p')"

(cd "$work" && npm pack --silent socket.io-client centrifuge >/dev/null 2>"$work/npm.log") || {
  echo "client-size: npm pack failed (is the npm registry reachable?): $(cat "$work/npm.log")" >&2
  exit 1
}
for tgz in "$work"/*.tgz; do mkdir -p "${tgz%.tgz}" && tar xzf "$tgz" -C "${tgz%.tgz}"; done
sio="$(ls "$work"/socket.io-client-*/package/dist/socket.io.min.js)"
cf="$(ls "$work"/centrifuge-*/package/dist/centrifuge.js)"
version_of() { basename "$(dirname "$(dirname "$(dirname "$1")")")"; }

echo "| client | file | minified bytes | gzip bytes |"
echo "| --- | --- | ---: | ---: |"
echo "| comet.js $comet_version (as served by comet-sidecar) | /comet.js | $comet_plain | $comet_gzip |"
for f in "$sio" "$cf"; do
  echo "| $(version_of "$f") | dist/$(basename "$f") | $(wc -c <"$f") | $(gzip -9c "$f" | wc -c) |"
done
