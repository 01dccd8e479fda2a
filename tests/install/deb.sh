#!/usr/bin/env bash
# install.deb: `cpack -G DEB` builds the Debian package; its file list, dependencies and
# maintainer scripts are what deploy/ promises. (Installing it needs root and would
# touch the machine; the contents are checked instead.)
# usage: deb.sh BUILD_DIR
set -euo pipefail
build=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "install.deb: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$out" >/dev/null) || fail "cpack -G DEB failed"
deb=$(ls "$out"/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no .deb was written"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
echo "$deb:"
echo "$contents" | sed 's/^/  /'
for f in ./usr/bin/comet-sidecar ./usr/share/comet-sidecar/comet.js ./usr/share/comet-sidecar/comet.min.js \
  ./usr/share/comet-sidecar/php/comet.php ./usr/share/comet-sidecar/lua/publish.lua \
  ./usr/share/comet-sidecar/lua/history.lua ./usr/share/comet-sidecar/comet-sidecar.env \
  ./usr/lib/systemd/system/comet-sidecar.service; do
  grep -qx "$f" <<<"$contents" || fail "$f is not in the package"
done
[ "$(dpkg-deb -f "$deb" Package)" = comet-sidecar ] || fail "package name"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libevent libhiredis libhttp-parser libssl; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib (dpkg-shlibdeps)"
done
scripts=$(mktemp -d -p "$out")
dpkg-deb -e "$deb" "$scripts"
for s in postinst prerm postrm; do
  [ -x "$scripts/$s" ] || fail "no executable $s"
  sh -n "$scripts/$s" || fail "$s does not parse"
done
grep -q "/etc/default/comet-sidecar" "$scripts/postinst" || fail "postinst installs no configuration"
grep -q "daemon-reload" "$scripts/postinst" || fail "postinst does not reload systemd"
grep -q "systemctl stop comet-sidecar" "$scripts/prerm" || fail "prerm does not stop the service"
grep -q "^ExecStart=/usr/bin/env comet-sidecar" <(dpkg-deb --fsys-tarfile "$deb" |
  tar -xO ./usr/lib/systemd/system/comet-sidecar.service) || fail "the unit does not start the packaged binary"
echo "install.deb: $(basename "$deb") has the files, Depends and maintainer scripts"
