#!/usr/bin/env bash
# install.systemd: the shipped unit passes `systemd-analyze verify`, and its exposure
# score (`systemd-analyze security`) stays at most 2.0 ("OK"): the hardening holds.
# usage: systemd.sh SOURCE_DIR
set -euo pipefail
src=$1
command -v systemd-analyze >/dev/null ||
  { echo "install.systemd: systemd-analyze not found (Debian package systemd)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$src/deploy/systemd/comet-sidecar.service" "$dir/"
cd "$dir"
systemd-analyze verify --man=no ./comet-sidecar.service
score=$(systemd-analyze security --offline=yes ./comet-sidecar.service 2>&1 |
  sed -n 's/.*Overall exposure level for comet-sidecar.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "install.systemd: no exposure score" >&2; exit 1; }
echo "install.systemd: verify passed; exposure $score (at most 2.0)"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
  { systemd-analyze security --offline=yes ./comet-sidecar.service >&2; exit 1; }
