#!/usr/bin/env bash
# deploy.compose_up: the shipped compose stack (deploy/docker/docker-compose.yml, profile
# "scaled" included) for real, with Debian's podman + docker-compose 1.29:
#
#  1. a Debian 12 base image, debootstrap --variant=minbase bookworm from apt's mirror +
#     podman import (cached: in the test's podman store and as a tarball, so only the
#     first run pays for it), passed to every Dockerfile as BASE_IMAGE;
#  2. `podman system service` on a private socket as DOCKER_HOST, a private
#     containers.conf (runc, cgroupfs, no default ulimits) and storage (built layers are
#     cached between runs);
#  3. docker-compose up --build on free loopback ports with a generated publish key;
#  4. tests/deploy/compose_browser.mjs: headless Chromium on the host opens the PHP page
#     and receives, over WebSocket, SSE and long-poll, straight from the sidecar and
#     through HAProxy, messages posted through the page's form (comet_publish), also
#     after a sidecar behind HAProxy is stopped; origins and the publish key are checked;
#  5. docker-compose down -v, the service stopped (also on failure or interruption).
#
# Exit 77 (CTest skip) only where podman cannot run here; any other problem fails.
# Environment: COMET_TEST_CACHE (default /var/cache/comet-tests), COMET_DEBIAN_MIRROR
# (default: apt's configured one), COMET_REBUILD_BASE=1 (debootstrap again).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${COMET_TEST_CACHE:-/var/cache/comet-tests}
# podman's run root must stay the same between runs of one store (its database records it)
run=/run/comet-tests-$(printf %s "$cache" | cksum | cut -d" " -f1)
artifacts=$src/tests/artifacts/deploy
base=localhost/comet-debian:12
started=$(date +%s)
step() { echo "[compose_up +$(($(date +%s) - started))s] $*"; }
skip() { echo "SKIP deploy.compose_up: $*"; exit 77; }
fail() { echo "FAIL deploy.compose_up: $*" >&2; exit 1; }

command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc), so the compose stack cannot run here"
[ "$(id -u)" = 0 ] || skip "needs root: the stack runs with rootful podman (CNI networks, published ports); run as root"
for tool in docker-compose debootstrap runc node; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh installs it)"
done
[ -d /usr/lib/cni ] && [ -x /usr/lib/cni/dnsname ] ||
  fail "CNI plugins with dnsname missing (apt-get install golang-github-containernetworking-plugin-dnsname dnsmasq-base)"
[ -d "$src/tests/browser/node_modules/playwright-core" ] ||
  fail "playwright-core missing: npm ci --prefix tests/browser"

mkdir -p "$cache/podman/cni" "$run" "$artifacts"
exec 9>"$cache/compose.lock"
flock -w 900 9 || fail "another deploy.compose_up holds $cache/compose.lock"

work=$(mktemp -d /tmp/comet-compose-up.XXXXXX)
cat >"$work/containers.conf" <<EOF
[containers]
# The host's hard open-file limit (20,000 here) is below podman's default ulimit.
default_ulimits = []
[engine]
runtime = "runc"
# Hybrid/v1 cgroups, no systemd: cgroupfs.
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$run/libpod"
[network]
network_backend = "cni"
network_config_dir = "$cache/podman/cni"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$cache/podman/storage"
runroot = "$run/podman"
EOF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH COMPOSE_FILE COMPOSE_PROFILES COMPOSE_PROJECT_NAME
export DOCKER_HOST=unix://$run/podman.sock COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
project=comettest$$
compose=(docker-compose --project-name "$project" --project-directory "$src/deploy/docker"
         --file "$src/deploy/docker/docker-compose.yml" --env-file "$work/env" --profile scaled)
service_pid=
up=0

dump_logs() {
  "${compose[@]}" logs --no-color --tail=60 >"$artifacts/compose.log" 2>&1 || true
  echo "--- docker-compose logs (tail; all in $artifacts/compose.log) ---" >&2
  tail -n 80 "$artifacts/compose.log" >&2 || true
}

cleanup() {
  local status=$?
  set +e
  if [ "$up" = 1 ]; then
    [ "$status" = 0 ] || dump_logs
    step "docker-compose down -v"
    timeout 120 "${compose[@]}" down -v --remove-orphans --timeout 5 >"$artifacts/compose-down.log" 2>&1 ||
      { echo "docker-compose down failed:" >&2; tail -n 20 "$artifacts/compose-down.log" >&2; status=1; }
  fi
  # Whatever the project left (an interrupted run): containers, networks, volumes.
  if [ -n "$service_pid" ]; then
    podman ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r podman rm -f >/dev/null 2>&1
    podman network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r podman network rm -f >/dev/null 2>&1
    podman volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r podman volume rm -f >/dev/null 2>&1
    left=$(podman ps -aq --filter "label=com.docker.compose.project=$project")
    [ -z "$left" ] || { echo "containers left behind: $left" >&2; status=1; }
    kill "$service_pid" 2>/dev/null
    wait "$service_pid" 2>/dev/null
    # Untagged images of superseded builds, but not this week's: the sidecar's build
    # stage is untagged too, and it is the cache that saves the compiler's apt-get.
    podman image prune -f --filter until=168h >/dev/null 2>&1
  fi
  rm -rf "$work"
  step "done (exit $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

podman info >"$work/podman-info" 2>&1 || skip "podman cannot run here: $(tail -n 3 "$work/podman-info")"

# --- 1. base image -------------------------------------------------------------------
debian_mirror() {
  [ -n "${COMET_DEBIAN_MIRROR:-}" ] && { echo "$COMET_DEBIAN_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
      awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')
  [ -n "$m" ] || m=$(grep -hE '^deb\s+(\[[^]]*\]\s+)?https?://' /etc/apt/sources.list 2>/dev/null |
                     grep -v security | head -n 1 | sed -E 's/^deb\s+(\[[^]]*\]\s+)?//' | awk '{print $1}')
  echo "${m:-http://deb.debian.org/debian}"
}
tarball=$cache/debian-12-minbase.tar.gz
if [ "${COMET_REBUILD_BASE:-0}" = 1 ]; then
  rm -f "$tarball"
  podman rmi -f "$base" >/dev/null 2>&1 || true
fi
if ! podman image exists "$base"; then
  if [ ! -s "$tarball" ]; then
    mirror=$(debian_mirror)
    step "debootstrap --variant=minbase bookworm from $mirror"
    rootfs=$work/rootfs
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$artifacts/debootstrap.log" 2>&1 ||
      { tail -n 20 "$artifacts/debootstrap.log" >&2; fail "debootstrap failed (log: $artifacts/debootstrap.log)"; }
    # Like debian:12-slim: apt sources of the host's Debian mirrors, no docs in images,
    # no package lists or archives in the base.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
      rm -f "$rootfs/etc/apt/sources.list"
    fi
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
      'path-exclude /usr/share/locale/*' >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" --numeric-owner -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  step "podman import $tarball as $base"
  podman import --change 'CMD ["/bin/bash"]' "$tarball" "$base" >"$artifacts/import.log" 2>&1 ||
    { cat "$artifacts/import.log" >&2; fail "podman import failed"; }
fi
probe=$(podman run --rm --network none "$base" sh -c 'echo ok' 2>&1) ||
  skip "podman cannot run a container here: $probe"

# --- 2. the engine ---------------------------------------------------------------------
rm -f "$run/podman.sock"
podman system service --time=0 "$DOCKER_HOST" >"$artifacts/podman-service.log" 2>&1 </dev/null &
service_pid=$!
for _ in $(seq 100); do [ -S "$run/podman.sock" ] && break; sleep 0.1; done
[ -S "$run/podman.sock" ] || fail "podman system service did not create $run/podman.sock"
# Projects of interrupted runs (the lock says none is running).
podman ps -a --filter "label=com.docker.compose.project" --format '{{.ID}} {{index .Labels "com.docker.compose.project"}}' |
  awk '$2 ~ /^comettest[0-9]+$/ {print $1}' | xargs -r podman rm -f >/dev/null 2>&1 || true
podman network ls --format '{{.Name}}' | grep -E '^comettest[0-9]+_' | xargs -r podman network rm -f >/dev/null 2>&1 || true
podman volume ls --format '{{.Name}}' | grep -E '^comettest[0-9]+_' | xargs -r podman volume rm -f >/dev/null 2>&1 || true

# --- 3. the stack ----------------------------------------------------------------------
read -r app_port sidecar_port scaled_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
publish_key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$work/env" <<EOF
BASE_IMAGE=$base
PUBLIC_HOST=127.0.0.1
BIND_ADDRESS=127.0.0.1
APP_PORT=$app_port
SIDECAR_PORT=$sidecar_port
SCALED_PORT=$scaled_port
COMET_PUBLISH_KEY=$publish_key
EOF
step "docker-compose build (log: $artifacts/compose-build.log)"
up=1
"${compose[@]}" build >"$artifacts/compose-build.log" 2>&1 ||
  { tail -n 40 "$artifacts/compose-build.log" >&2; fail "docker-compose build failed"; }
step "docker-compose up (app :$app_port, sidecar :$sidecar_port, haproxy :$scaled_port)"
"${compose[@]}" up -d >"$artifacts/compose-up.log" 2>&1 ||
  { cat "$artifacts/compose-up.log" >&2; fail "docker-compose up failed"; }

wait_http() {   # URL WHAT: 200 within 60 s
  for _ in $(seq 300); do
    curl -fsS -o /dev/null -m 2 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "$2 ($1) did not answer 200 within 60 s"
}
wait_http "http://127.0.0.1:$app_port/" "the app"
wait_http "http://127.0.0.1:$sidecar_port/healthz" "the sidecar"
wait_http "http://127.0.0.1:$scaled_port/healthz" "HAProxy"

# --- 4. Chromium -----------------------------------------------------------------------
step "headless Chromium"
APP_URL=http://127.0.0.1:$app_port SIDECAR_URL=http://127.0.0.1:$sidecar_port \
SCALED_URL=http://127.0.0.1:$scaled_port OTHER_ORIGIN=http://localhost:$app_port \
COMET_PUBLISH_KEY=$publish_key COMPOSE_ARGS="$(printf '%s\n' "${compose[@]}")" \
  node "$src/tests/deploy/compose_browser.mjs"
