# shellcheck shell=bash
# Shared by run-vs-nchan.sh, tls-vs-nchan.sh and deflate-vs-nchan.sh (sourced): waiting
# for a port, and starting / stopping the servers under test. Uses the caller's globals:
# BENCH_NAME (for messages), SRV (the command prefix that pins servers to a CPU), NGX
# (nginx's prefix directory, holding nginx.conf), PIDS (server processes measured),
# NGX_MASTER.

wait_port() {  # wait until something accepts on 127.0.0.1:$1
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$BENCH_NAME: nothing listens on port $1" >&2
  return 1
}

stop_pids() {  # the sidecar (and anything else in PIDS started by start_*)
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

# launch_nginx WORKERS PORT...: starts nginx from $NGX/nginx.conf, waits for each PORT,
# and puts the master and its WORKERS worker processes in PIDS.
launch_nginx() {
  local workers=$1
  shift
  "${SRV[@]}" nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log"
  for port in "$@"; do wait_port "$port"; done
  NGX_MASTER=$(cat "$NGX/nginx.pid")
  PIDS=("$NGX_MASTER")
  local kids=()
  for _ in $(seq 1 50); do
    mapfile -t kids < <(pgrep -P "$NGX_MASTER" || true)
    [ "${#kids[@]}" -ge "$workers" ] && break
    sleep 0.1
  done
  PIDS+=("${kids[@]}")
}

stop_nginx() {
  [ -n "$NGX_MASTER" ] || return 0
  kill "$NGX_MASTER" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$NGX_MASTER" 2>/dev/null || break; sleep 0.1; done
  NGX_MASTER=
  PIDS=()
}

# nchan_conf_head WORKERS: the start of nginx.conf shared by every Nchan setup (module,
# limits, temp paths under $NGX, the message store sizes), up to inside `http {`; the
# caller appends its servers and the closing brace. Uses NCHAN_SO.
nchan_conf_head() {
  cat <<CONF
load_module $NCHAN_SO;
worker_processes $1;
worker_rlimit_nofile 20000;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections 19800; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $NGX/body;
  proxy_temp_path $NGX/proxy;
  fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi;
  scgi_temp_path $NGX/scgi;
  keepalive_requests 1000000;
  nchan_shared_memory_size 512M;
  nchan_message_buffer_length 1000;
  nchan_message_timeout 1h;
CONF
}

# launch_sidecar FLAG...: one sidecar with one worker on $TPORT (public) and $TPUBPORT
# (publish), warnings only, a 60 s heartbeat, plus FLAGs; its pid in PIDS, its output in
# $WORK/sidecar-<n>.log. Uses SIDECAR, SRV, WORK, TPORT, TPUBPORT.
SC_RUN=0
launch_sidecar() {
  SC_RUN=$((SC_RUN + 1))
  SC_LOG=$WORK/sidecar-$SC_RUN.log
  "${SRV[@]}" "$SIDECAR" --listen "127.0.0.1:$TPORT" --publish-listen "127.0.0.1:$TPUBPORT" \
    --workers 1 --log-level warn --heartbeat 60s "$@" >"$SC_LOG" 2>&1 &
  PIDS=($!)
  for _ in $(seq 1 100); do
    grep -q "listening on" "$SC_LOG" && break
    sleep 0.05
  done
  for _ in $(seq 1 100); do
    [[ $(readlink "/proc/${PIDS[0]}/exe" 2>/dev/null) == *comet-sidecar ]] && break
    sleep 0.05
  done
  [[ $(readlink "/proc/${PIDS[0]}/exe" 2>/dev/null) == *comet-sidecar ]] ||
    echo "$BENCH_NAME: warning: pid ${PIDS[0]} is not the sidecar; memory figures will be wrong" >&2
  wait_port "$TPORT"
  wait_port "$TPUBPORT"
}

# place_processes: SRV and CLI, the command prefixes for the servers and the clients:
# `nice -n $NICE` when root and NICE is not 0 (else NICE becomes 0), and with PIN=1 the
# servers on CPU 0, the clients on CPU 1.
place_processes() {
  SRV=()
  CLI=()
  if [ "$NICE" != 0 ] && [ "$(id -u)" -eq 0 ]; then
    SRV=(nice -n "$NICE")
    CLI=(nice -n "$NICE")
  else
    NICE=0
  fi
  if [ "$PIN" = 1 ]; then
    SRV+=(taskset -c 0)
    CLI+=(taskset -c 1)
  fi
}

# put_report_section MARKER SECTION_FILE REPORT: puts the section (which starts with
# "<!-- MARKER" and ends with "<!-- /MARKER -->") into REPORT, replacing the one between
# those markers, else before "## Plots", else at the end.
put_report_section() {
  [ -f "$3" ] || : >"$3"
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
marker, sec, path = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
doc = open(path).read()
pat = re.compile(r"<!-- " + re.escape(marker) + r".*?<!-- /" + re.escape(marker) + r" -->\n", re.S)
if pat.search(doc):
    doc = pat.sub(lambda m: sec, doc, count=1)
elif "\n## Plots\n" in doc:
    doc = doc.replace("\n## Plots\n", "\n" + sec + "\n## Plots\n", 1)
else:
    doc = doc.rstrip("\n") + "\n\n" + sec
open(path, "w").write(doc)
PY
}
