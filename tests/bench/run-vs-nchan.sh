#!/usr/bin/env bash
# Runs the benchmark scenarios of issue 4 against Comet Sidecar and against Nchan
# (Debian nginx + libnginx-mod-nchan) in one run, then writes docs/performance.md and
# PNG plots to docs/perf/.
#
# usage: tests/bench/run-vs-nchan.sh [--quick] [--skip-100k] [--only NAME[,NAME...]]
#                                    [--build-dir DIR] [--no-install] [--no-pin]
#                                    [--no-report] [--out FILE] [--no-tls] [--no-deflate]
#   --quick      small N everywhere (a couple of minutes); the 100K scenarios run with a
#                few thousand connections but still over several server and client
#                processes, so the multi-process path is exercised
#   --skip-100k  leave out the 100K scenarios
#   --only       run only these scenarios (names as in the table)
#   --no-pin     do not pin servers to CPU 0 and clients to CPU 1
#   --nice N     scheduling priority of servers and clients (default -10 as root, so
#                other jobs on a shared machine disturb the measurement less; 0 = off)
#   --out FILE   where the report goes (default docs/performance.md, plots and raw
#                results in docs/perf/; with --quick the work directory instead)
#   --no-tls     leave out the TLS scenarios (tests/bench/tls-vs-nchan.sh, run last,
#                its section put into the report; `--only tls` selects them alone)
#   --no-deflate leave out the WebSocket compression scenarios
#                (tests/bench/deflate-vs-nchan.sh, run after TLS; `--only deflate`)
#
# Everything runs on loopback: the sidecar(s), nginx, Redis and comet-bench. Servers are
# pinned to CPU 0 and clients (comet-bench, its publisher) to CPU 1 unless --no-pin.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_NAME='run-vs-nchan'
# shellcheck source=tests/bench/lib/servers.sh
source "$ROOT/tests/bench/lib/servers.sh"
BUILD=$ROOT/build-rel
QUICK=0
SKIP_BIG=0
ONLY=
INSTALL=1
PIN=1
NICE=-10
REPORT=1
OUT=
TLS=1
DEFLATE=1
CMDLINE="tests/bench/run-vs-nchan.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --skip-100k) SKIP_BIG=1 ;;
    --only) ONLY=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --no-install) INSTALL=0 ;;
    --no-pin) PIN=0 ;;
    --nice) NICE=$2; shift ;;
    --no-report) REPORT=0 ;;
    --out) OUT=$2; shift ;;
    --no-tls) TLS=0 ;;
    --no-deflate) DEFLATE=0 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

CPORT=${CPORT:-18181}  # comet sidecar(s)
CPUBPORT=${CPUBPORT:-18182}  # their publish listener
NPORT=${NPORT:-18182}  # nginx + nchan
RPORT=${RPORT:-18183}  # redis for the multi-process sidecar runs

# ---- packages ------------------------------------------------------------------------
if [ "$INSTALL" = 1 ]; then
  need=()
  for p in nginx libnginx-mod-nchan gnuplot-nox redis-server jq python3 openssl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    echo "run-vs-nchan: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
  # The nginx package may start a system instance on port 80; it does not matter here.
fi
NCHAN_SO=$(ls /usr/lib/nginx/modules/ngx_nchan_module.so)

# ---- build ---------------------------------------------------------------------------
if [ ! -x "$BUILD/sidecar/comet-sidecar" ] || [ ! -x "$BUILD/tests/bench/comet-bench" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
fi
cmake --build "$BUILD" -j2 --target comet-sidecar comet-bench comet-tls-footprint >/dev/null
SIDECAR=$BUILD/sidecar/comet-sidecar
BENCH=$BUILD/tests/bench/comet-bench

WORK=$(mktemp -d /tmp/comet-vs-nchan.XXXXXX)
RESULTS=$WORK/results.jsonl
LOG=$WORK/run.log
: >"$RESULTS"
echo "run-vs-nchan: work dir $WORK (log: $LOG)"

place_processes

# ---- sizes ---------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
  N10K=2000; N100K=6000; BIG_PROCS=2; BIG_FDS=3500; HOLD=2
  LAT_CH=200; LAT_MSGS=2000; FAN_MSGS=20
  POLL_N=200; POLL_DUR=2; RC_N=2000; RC_DUR=3; LAT_REPS=1; POLL_REPS=1; LP_RATE=2000
else
  N10K=10000; N100K=100000; BIG_PROCS=6; BIG_FDS=19000; HOLD=5
  LAT_CH=1000; LAT_MSGS=10000; FAN_MSGS=100
  POLL_N=1000; POLL_DUR=5; RC_N=10000; RC_DUR=5; LAT_REPS=3; POLL_REPS=5; LP_RATE=${LP_RATE:-12000}
fi

# ---- servers -------------------------------------------------------------------------
PIDS=()        # server processes whose memory is sampled
REDIS_PID=
STORE=memory   # memory: embedded bus / Nchan's memory store; redis: both through Redis


start_redis() {
  "${SRV[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --loglevel warning >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  wait_port "$RPORT"
  redis-cli -p "$RPORT" flushall >/dev/null
}

stop_redis() {
  [ -n "$REDIS_PID" ] || return 0
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=
}

# start_comet PROCS: PROCS sidecar processes, one worker each, on one port; with
# PROCS > 1 or STORE=redis they share Redis (SO_REUSEPORT spreads connections over them).
start_comet() {
  local procs=$1 extra=()
  PIDS=()
  if [ "$procs" -gt 1 ] || [ "$STORE" = redis ]; then
    start_redis
    extra=(--redis "redis://127.0.0.1:$RPORT")
  fi
  for i in $(seq 1 "$procs"); do
    # Every process also binds the publish listener ($CPUBPORT, SO_REUSEPORT like $CPORT).
    "${SRV[@]}" "$SIDECAR" --listen "127.0.0.1:$CPORT" --publish-listen "127.0.0.1:$CPUBPORT" \
      --workers 1 --log-level warn --heartbeat 60s \
      "${extra[@]}" >"$WORK/sidecar-$i.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
      grep -q "listening on" "$WORK/sidecar-$i.log" && break
      sleep 0.05
    done
    # nice and taskset exec the sidecar, so $! is its pid; say so if that ever changes.
    for _ in $(seq 1 100); do
      [[ $(readlink "/proc/${PIDS[-1]}/exe" 2>/dev/null) == *comet-sidecar ]] && break
      sleep 0.05
    done
    [[ $(readlink "/proc/${PIDS[-1]}/exe" 2>/dev/null) == *comet-sidecar ]] ||
      echo "run-vs-nchan: warning: pid ${PIDS[-1]} is not the sidecar; memory figures will be wrong" >&2
  done
  wait_port "$CPORT"
}

stop_comet() {
  stop_pids
  stop_redis
}

NGX=$WORK/nginx
NGX_MASTER=
start_nchan() {
  local workers=$1 redis_upstream= redis_pass=
  mkdir -p "$NGX/logs"
  if [ "$STORE" = redis ]; then
    start_redis
    redis_upstream="upstream bench_redis { nchan_redis_server \"redis://127.0.0.1:$RPORT\"; }"
    redis_pass="nchan_redis_pass bench_redis;"
  fi
  {
    nchan_conf_head "$workers"
    cat <<EOF
  $redis_upstream
  server {
    $redis_pass
    listen 127.0.0.1:$NPORT reuseport backlog=4096;
    location = /ws  { nchan_subscriber websocket;   nchan_channel_id \$arg_ch; nchan_subscriber_first_message newest; }
    location = /sse { nchan_subscriber eventsource; nchan_channel_id \$arg_ch; nchan_subscriber_first_message newest; }
    location = /poll  { nchan_subscriber longpoll;     nchan_channel_id \$arg_ch; nchan_subscriber_first_message oldest; }
    location = /npoll { nchan_subscriber intervalpoll; nchan_channel_id \$arg_ch; nchan_subscriber_first_message oldest; }
    location = /multipart { nchan_subscriber http-multipart; nchan_channel_id \$arg_ch; nchan_subscriber_first_message newest; }
    location ~ ^/pub/(.+)\$ { nchan_publisher; nchan_channel_id \$1; }
  }
}
EOF
  } >"$NGX/nginx.conf"
  launch_nginx "$workers" "$NPORT"
}

stop_nchan() {
  stop_nginx
  stop_redis
}

cleanup() {
  stop_comet 2>/dev/null || true
  stop_nchan 2>/dev/null || true
}
trap cleanup EXIT

# ---- one measurement -----------------------------------------------------------------
# bench SCENARIO TARGET MODE ARGS...: runs comet-bench, appends its JSON line (plus
# scenario, target and exit status) to results.jsonl.
FAILURES=0
bench() {
  local scenario=$1 target=$2 mode=$3
  shift 3
  local port=$CPORT pub_port=$CPUBPORT paths=()
  if [ "$target" = nchan ]; then port=$NPORT; pub_port=$NPORT; fi
  local pids
  pids=$(IFS=,; echo "${PIDS[*]}")
  echo "== $scenario / $target: comet-bench $mode $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$LOG"
  set +e
  local out
  out=$("${CLI[@]}" "$BENCH" "$mode" --target "$target" --port "$port" --pub-port "$pub_port" --server-pid "$pids" --label "$scenario" \
        --quiet "$@" 2>>"$LOG")
  local rc=$?
  set -e
  tail -n 8 "$LOG" | sed -n '/^== comet-bench/,$p'
  if [ -z "$out" ]; then
    out='{}'
  fi
  echo "$out" | jq -c --arg sc "$scenario" --arg tg "$target" --argjson rc "$rc" --arg store "$STORE" \
    --argjson rep "$REP" --arg load "$(cut -d' ' -f1 /proc/loadavg)" \
    '. + {scenario: $sc, target: $tg, exit: $rc, load: $load, store: $store, rep: $rep}' >>"$RESULTS"
  [ "$rc" -eq 0 ] || FAILURES=$((FAILURES + 1))
}

want() {  # want SCENARIO: is it selected?
  [ -z "$ONLY" ] && return 0
  [[ ",$ONLY," == *",$1,"* ]]
}

# run_both SCENARIO SERVER_PROCS MODE ARGS...: the scenario against both servers, each
# freshly started (so memory deltas start from a clean process).
run_both() {
  local scenario=$1 procs=$2 mode=$3
  shift 3
  want "$scenario" || return 0
  start_comet "$procs"
  bench "$scenario" comet "$mode" "$@"
  stop_comet
  start_nchan "$procs"
  local args=("$@")
  # Nchan's interval polling lives at /npoll (its /poll is long-poll).
  if [[ " ${args[*]} " == *" --transport poll "* ]]; then args+=(--poll-path /npoll); fi
  bench "$scenario" nchan "$mode" "${args[@]}"
  stop_nchan
}

# run_repeated TIMES SCENARIO ...: run_both TIMES times, alternating the servers, for
# the latency and polling scenarios, whose tails and rates depend on what else the shared
# machine is doing; the report shows each server's median run and lists every run.
REP=0
run_repeated() {
  local times=$1
  shift
  for REP in $(seq 1 "$times"); do run_both "$@"; done
  REP=0
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

K10=$((N10K / 1000))K
run_both "idle-sse-$K10" 1 hold --transport sse -n "$N10K" --duration "$HOLD"
run_both "idle-ws-$K10" 1 hold --transport ws -n "$N10K" --duration "$HOLD"
run_both "fanout-ws-$K10" 1 fanout --transport ws -n "$N10K" --messages "$FAN_MSGS" --rate 0 --pub-conns 1
run_repeated "$LAT_REPS" "latency-ws-$K10" 1 fanout --transport ws -n "$N10K" --channels "$LAT_CH" --messages "$LAT_MSGS" --rate 1000
run_repeated "$LAT_REPS" "latency-sse-$K10" 1 fanout --transport sse -n "$N10K" --channels "$LAT_CH" --messages "$LAT_MSGS" --rate 1000
run_repeated "$LAT_REPS" "latency-multipart-$K10" 1 fanout --transport multipart -n "$N10K" --channels "$LAT_CH" --messages "$LAT_MSGS" --rate 1000
run_repeated "$POLL_REPS" "poll-$POLL_N" 1 poll --transport poll -n "$POLL_N" --duration "$POLL_DUR"
# Long-poll: 10 clients per channel; the publish rate (LP_RATE messages/s in total, so
# 10 x LP_RATE deliveries/s) is above what either server answers one message per request,
# so the request rate shows each server's capacity rather than the publisher's pace.
run_repeated "$POLL_REPS" "longpoll-$POLL_N" 1 poll --transport longpoll -n "$POLL_N" --channels $((POLL_N / 10)) \
  --rate "$LP_RATE" --messages $((LP_RATE * POLL_DUR)) --duration "$POLL_DUR"
run_both "reconnect-sse-$((RC_N / 1000))K" 1 reconnect --transport sse -n "$RC_N" --channels 100 --rate 1000 \
  --duration "$RC_DUR" --window 1 --storm-at 1.5
# The same kinds of scenario with both servers storing through Redis: the sidecar with
# --redis (EVALSHA publish.lua, pub/sub fan-in, history in a stream), Nchan with
# nchan_redis_pass (its "distributed" mode). Redis' own memory is not counted for either.
STORE=redis
run_both "idle-ws-$K10-redis" 1 hold --transport ws -n "$N10K" --duration "$HOLD"
run_both "fanout-ws-$K10-redis" 1 fanout --transport ws -n "$N10K" --messages "$FAN_MSGS" --rate 0 --pub-conns 1
run_repeated "$LAT_REPS" "latency-ws-$K10-redis" 1 fanout --transport ws -n "$N10K" --channels "$LAT_CH" --messages "$LAT_MSGS" --rate 1000
run_both "longpoll-$POLL_N-redis" 1 poll --transport longpoll -n "$POLL_N" --channels $((POLL_N / 10)) \
  --rate "$LP_RATE" --messages $((LP_RATE * POLL_DUR)) --duration "$POLL_DUR"
run_both "reconnect-sse-$((RC_N / 1000))K-redis" 1 reconnect --transport sse -n "$RC_N" --channels 100 --rate 1000 \
  --duration "$RC_DUR" --window 1 --storm-at 1.5
STORE=memory
if [ "$SKIP_BIG" = 0 ]; then
  # Several server processes (20,000 files per process here): sidecars share the port
  # over Redis, nginx runs that many workers; comet-bench spreads over client processes
  # and source addresses. The probe at the end is one publish to every subscriber.
  KB=$((N100K / 1000))K
  run_both "idle-sse-$KB" "$BIG_PROCS" hold --transport sse -n "$N100K" --duration "$HOLD" --max-fds "$BIG_FDS" \
    --ramp-timeout 300 --drain-timeout 20
  run_both "idle-ws-$KB" "$BIG_PROCS" hold --transport ws -n "$N100K" --duration "$HOLD" --max-fds "$BIG_FDS" \
    --ramp-timeout 300 --drain-timeout 20
fi
T_END=$(date +%s)

# ---- report --------------------------------------------------------------------------
cat >"$WORK/meta.json" <<EOF
{
  "command": "$CMDLINE",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "duration_s": $((T_END - T_START)),
  "quick": $QUICK,
  "pinned": $PIN,
  "nice": $NICE,
  "git": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')",
  "nginx": "$(nginx -v 2>&1 | sed 's/.*nginx\///')",
  "nchan": "$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)",
  "redis": "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')",
  "libevent": "$(pkg-config --modversion libevent 2>/dev/null)",
  "compiler": "$(${CXX:-c++} --version | head -1)",
  "kernel": "$(uname -r)",
  "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)",
  "memory": "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)",
  "fd_limit": "$(ulimit -Hn)",
  "load_start": "$LOAD_START",
  "load_end": "$(cut -d' ' -f1-3 /proc/loadavg)"
}
EOF
if [ -z "$OUT" ]; then
  if [ "$QUICK" = 1 ]; then OUT=$WORK/performance.md; else OUT=$ROOT/docs/performance.md; fi
fi
PLOTS=$(dirname "$OUT")/perf
# --only tls / deflate (or both) leave the main report and its raw results alone.
SIDE_ONLY=0
[[ -n "$ONLY" && ",$ONLY," =~ ^(,(tls|deflate))+,$ ]] && SIDE_ONLY=1
if [ "$SIDE_ONLY" = 0 ]; then
  mkdir -p "$PLOTS"
  cp "$RESULTS" "$PLOTS/results.jsonl"
  cp "$WORK/meta.json" "$PLOTS/meta.json"
fi
if [ "$REPORT" = 1 ] && [ "$SIDE_ONLY" = 0 ]; then
  python3 "$ROOT/tests/bench/report.py" --results "$RESULTS" --meta "$WORK/meta.json" --out "$OUT" \
    --plots "$PLOTS" --notes "$ROOT/docs/perf/notes.md"
  echo "run-vs-nchan: wrote $OUT and plots in $PLOTS"
fi
# TLS (issue 15): sidecar --tls-cert/--tls-key vs nginx + Nchan `listen ... ssl`, its
# section put into the report just written (or into an existing one with --only tls).
if [ "$TLS" = 1 ] && want tls; then
  tls_args=(--build-dir "$BUILD" --nice "$NICE" --out "$OUT")
  [ "$QUICK" = 1 ] && tls_args+=(--quick)
  [ "$PIN" = 0 ] && tls_args+=(--no-pin)
  [ "$REPORT" = 0 ] && tls_args+=(--no-report)
  "$ROOT/tests/bench/tls-vs-nchan.sh" "${tls_args[@]}" || FAILURES=$((FAILURES + 1))
fi
# WebSocket compression (issue 15): permessage-deflate off/on, sidecar vs Nchan's
# nchan_deflate_message_for_websocket; its section goes into the same report.
if [ "$DEFLATE" = 1 ] && want deflate; then
  deflate_args=(--build-dir "$BUILD" --nice "$NICE" --out "$OUT")
  [ "$QUICK" = 1 ] && deflate_args+=(--quick)
  [ "$PIN" = 0 ] && deflate_args+=(--no-pin)
  [ "$REPORT" = 0 ] && deflate_args+=(--no-report)
  "$ROOT/tests/bench/deflate-vs-nchan.sh" "${deflate_args[@]}" || FAILURES=$((FAILURES + 1))
fi
echo "run-vs-nchan: $FAILURES failing measurement(s); results in $RESULTS"
[ "$FAILURES" -eq 0 ]
