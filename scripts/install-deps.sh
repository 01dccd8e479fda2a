#!/usr/bin/env bash
# Installs the Debian packages Comet Sidecar needs to build, run and test. Idempotent:
# installs only what is missing, runs apt-get update only when something is.
# Works as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates curl clang-format clang libclang-rt-14-dev
  libevent-dev libhttp-parser-dev libhiredis-dev rapidjson-dev libssl-dev zlib1g-dev doctest-dev
  redis-server nginx apache2-bin libapache2-mod-php haproxy systemd python3-yaml terser
  podman runc docker-compose debootstrap golang-github-containernetworking-plugin-dnsname dnsmasq-base
  php-cli phpunit php-parser php-redis php-predis
  chromium
)
# Node.js (with npm) for the integration tests; keep an existing install (e.g. NodeSource).
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
