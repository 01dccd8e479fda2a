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
