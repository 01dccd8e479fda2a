#!/usr/bin/env bash
# Redis Cluster shards: one standalone Redis vs a 3-master Redis Cluster (no replicas)
# behind a release comet-sidecar (--redis redis://... vs redis+cluster://...), with
# --workers 1 and 4. For each of the four set-ups it measures:
#   * publishes/s and deliveries/s end to end: comet-bench fanout, SUBS WebSocket
#     subscribers over CHANNELS channels, MESSAGES unpaced POST /pub on the sidecar's
#     publish listener (PUB_CONNS connections, PUB_PIPELINE requests in flight each),
#     so every publish runs the publish script on the channel's Redis (shard);
#   * Redis subscriptions per channel while the subscribers are held (comet-bench hold):
#     PUBSUB SHARDNUMSUB (sharded) + PUBSUB NUMSUB (classic) of every channel, summed
#     over the Redis nodes: average, min and max of the total, then the average of each;
# and per topology (no sidecar involved) the publish script's rate straight from PHP:
# PHP_PROCS processes of php-client (comet.php) publishing batches of PHP_BATCH with
# publishMany() for PHP_SECONDS (through a cluster: one pipeline per node, SPUBLISH).
#
# usage: tests/bench/redis-shards.sh [--build-dir DIR]
#   env: SUBS (1000) CHANNELS (200) MESSAGES (20000) PUB_CONNS (8) PUB_PIPELINE (32)
#        PHP_PROCS (4) PHP_BATCH (50) PHP_SECONDS (3)
# Needs redis-server and redis-cli (7+, for sharded pub/sub), php-cli, and a release
# build with comet-sidecar and comet-bench (cmake --build build-rel --target
# comet-sidecar comet-bench). Everything runs on free loopback ports in a temporary
# directory and is stopped at the end; the whole run is bounded (about 1 minute with the
# defaults, killed after 170 s). A sidecar without redis+cluster:// support is reported
# as such and its rows show "n/a". Numbers are wall-clock rates on this machine, with the
# servers and the load generators sharing its CPUs.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build-rel
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD=$2; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
SIDECAR=$BUILD/sidecar/comet-sidecar
BENCH=$BUILD/tests/bench/comet-bench
SUBS=${SUBS:-1000}
CHANNELS=${CHANNELS:-200}
MESSAGES=${MESSAGES:-20000}
PUB_CONNS=${PUB_CONNS:-8}
PUB_PIPELINE=${PUB_PIPELINE:-32}
PHP_PROCS=${PHP_PROCS:-4}
PHP_BATCH=${PHP_BATCH:-50}
PHP_SECONDS=${PHP_SECONDS:-3}
LIMIT_S=${LIMIT_S:-170}

for tool in redis-server redis-cli php python3 curl; do
  command -v "$tool" >/dev/null || { echo "redis-shards: $tool not found" >&2; exit 2; }
done
for f in "$SIDECAR" "$BENCH"; do
  [ -x "$f" ] || { echo "redis-shards: $f not built (cmake --build $BUILD --target comet-sidecar comet-bench)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/comet-redis-shards.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  # The watchdog's sleep first: killed, it ends the watchdog without its kill.
  if [ -n "${WATCHDOG:-}" ]; then pkill -P "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Bounded run time: after LIMIT_S seconds the watchdog stops the script's children (by
# parent pid) and the script, whose EXIT trap stops the rest and removes WORK.
# (Its stderr is fd 3: the shell's "Terminated" for the sleep killed at the end is not shown.)
exec 3>&2
( sleep "$LIMIT_S" && { echo "redis-shards: over ${LIMIT_S}s, stopping" >&3
  kill -TERM $$; pkill -TERM -P $$; } ) 2>/dev/null &
WATCHDOG=$!

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_redis DIR PORT [more redis-server args...]
start_redis() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize no --loglevel warning "$@" >"$dir/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "redis-shards: redis-server on $port did not start" >&2
  cat "$dir/log" >&2
  return 1
}

# ---- Redis: one standalone, one 3-master cluster --------------------------------------
SOLO_PORT=$(free_port)
start_redis "$WORK/solo" "$SOLO_PORT" || exit 1
CLUSTER_PORTS=()
for i in 0 1 2; do
  p=$(free_port)
  # The bus port (default port + 10000) may not be free for a high port: choose one.
  start_redis "$WORK/node$i" "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-port "$(free_port)" --cluster-node-timeout 2000 || exit 1
  CLUSTER_PORTS+=("$p")
done
create=(redis-cli --cluster create)
for p in "${CLUSTER_PORTS[@]}"; do create+=("127.0.0.1:$p"); done
"${create[@]}" --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log" 2>&1 || {
  cat "$WORK/cluster-create.log" >&2; exit 1; }
ok=0
for _ in $(seq 1 200); do
  ok=1
  for p in "${CLUSTER_PORTS[@]}"; do
    redis-cli -p "$p" CLUSTER INFO 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
  done
  [ "$ok" = 1 ] && break
  sleep 0.05
done
[ "$ok" = 1 ] || { echo "redis-shards: the cluster did not become ready" >&2; exit 1; }
SOLO_URL="redis://127.0.0.1:$SOLO_PORT"
CLUSTER_URL="redis+cluster://$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}" | sed 's/,$//')"
echo "redis-shards: standalone $SOLO_URL; cluster $CLUSTER_URL ($(redis-server --version | awk '{print $3}'))" >&2

# ---- the sidecar ----------------------------------------------------------------------
# start_sidecar URL WORKERS: sets SC_PID, SC_PORT, SC_PUB_PORT; 1 when it did not start
start_sidecar() {
  local url=$1 workers=$2 log=$WORK/sidecar-$RANDOM.log
  SC_PID='' SC_PORT='' SC_PUB_PORT=''
  "$SIDECAR" --listen 127.0.0.1:0 --publish-listen 127.0.0.1:0 --workers "$workers" --redis "$url" \
    --log-level warn --heartbeat 30s >"$log" 2>&1 &
  SC_PID=$!
  PIDS+=("$SC_PID")
  for _ in $(seq 1 100); do
    SC_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    SC_PUB_PORT=$(sed -n 's/.*publish listener on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$SC_PORT" ] && [ -n "$SC_PUB_PORT" ] && break
    kill -0 "$SC_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$SC_PORT" ] || [ -z "$SC_PUB_PORT" ] || ! kill -0 "$SC_PID" 2>/dev/null; then
    SC_ERROR=$(head -c 300 "$log" | tr '\n' ' ')
    stop_sidecar
    return 1
  fi
  # Ready for Redis: /healthz answers 200 once the bridge is connected.
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SC_PUB_PORT/healthz" 2>/dev/null)" = 200 ] && return 0
    sleep 0.05
  done
  return 0
}
stop_sidecar() {
  [ -n "$SC_PID" ] || return 0
  kill "$SC_PID" 2>/dev/null
  wait "$SC_PID" 2>/dev/null
  SC_PID=
}

# subs_per_channel PREFIX PORT...: Redis subscriptions per channel comet:{PREFIX0} ..
# comet:{PREFIX<CHANNELS-1>}, summed over the nodes: "all avg min max / sharded avg /
# classic avg" (all = PUBSUB SHARDNUMSUB + PUBSUB NUMSUB)
subs_per_channel() {
  local prefix=$1
  shift
  local names=() k p
  for ((k = 0; k < CHANNELS; k++)); do names+=("comet:{$prefix$k}"); done
  for p in "$@"; do
    redis-cli -p "$p" PUBSUB SHARDNUMSUB "${names[@]}" | awk 'NR % 2 == 1 {c = $0} NR % 2 == 0 {print "s", c, $0}'
    redis-cli -p "$p" PUBSUB NUMSUB "${names[@]}" | awk 'NR % 2 == 1 {c = $0} NR % 2 == 0 {print "c", c, $0}'
  done | awk -v n="$CHANNELS" '{a[$2] += $3; if ($1 == "s") sh += $3; else cl += $3} END {
      min = -1; max = 0; t = 0
      for (c in a) { t += a[c]; if (min < 0 || a[c] < min) min = a[c]; if (a[c] > max) max = a[c] }
      if (min < 0) min = 0
      printf "%.2f %d %d / %.2f / %.2f\n", t / n, min, max, sh / n, cl / n }'
}

# ---- PHP publishers (no sidecar) ------------------------------------------------------
cat >"$WORK/php-pub.php" <<'PHP'
<?php
// php-pub.php URL SECONDS BATCH CHANNELS PREFIX: publishMany() batches until SECONDS
// have passed; prints the number of messages Redis confirmed.
require getenv('COMET_PHP_CLIENT');
list(, $url, $seconds, $batch, $channels, $prefix) = $argv;
$c = new Comet\Client(array('redis_url' => $url, 'redis_driver' => 'socket', 'timeout' => 5.0));
$n = 0;
$k = mt_rand(0, (int) $channels - 1);
$until = microtime(true) + (float) $seconds;
while (microtime(true) < $until) {
    $msgs = array();
    for ($i = 0; $i < (int) $batch; $i++) {
        $msgs[] = array($prefix . ($k++ % (int) $channels), 'x');
    }
    foreach ($c->publishMany($msgs) as $id) {
        if (is_int($id)) {
            $n++;
        }
    }
}
echo $n, "\n";
PHP
php_rate() {
  local url=$1 prefix=$2 i total=0 files=() pids=()
  for ((i = 0; i < PHP_PROCS; i++)); do
    COMET_PHP_CLIENT=$ROOT/php-client/comet.php timeout 30 php "$WORK/php-pub.php" "$url" "$PHP_SECONDS" \
      "$PHP_BATCH" "$CHANNELS" "$prefix" >"$WORK/php-$i.out" 2>&1 &
    pids+=($!)
    files+=("$WORK/php-$i.out")
  done
  wait "${pids[@]}"
  for f in "${files[@]}"; do
    local n
    n=$(tail -1 "$f")
    [[ $n =~ ^[0-9]+$ ]] || { echo "redis-shards: PHP publisher: $(head -c 300 "$f")" >&2; n=0; }
    total=$((total + n))
  done
  awk -v t="$total" -v s="$PHP_SECONDS" 'BEGIN {printf "%.0f", t / s}'
}

json_field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

# ---- runs -----------------------------------------------------------------------------
ROWS=()
PHPROWS=()
run_setup() {
  local name=$1 url=$2 workers=$3
  shift 3
  local nodes=("$@") prefix fan pubs dels lost subs
  if ! start_sidecar "$url" "$workers"; then
    echo "redis-shards: $name --workers $workers: the sidecar did not start: $SC_ERROR" >&2
    ROWS+=("$name|$workers|n/a|n/a|n/a|n/a (sidecar did not start)")
    return
  fi
  # Subscriptions per channel while SUBS subscribers are held.
  prefix="h$RANDOM-"
  "$BENCH" hold --port "$SC_PORT" --pub-port "$SC_PUB_PORT" --transport ws -n "$SUBS" --channels "$CHANNELS" \
    --prefix "$prefix" --duration 3 --settle 0.5 --no-probe --ramp-timeout 20 --label "$name-hold" \
    >"$WORK/hold.json" 2>"$WORK/hold.log" &
  local hold=$!
  for _ in $(seq 1 200); do
    grep -q 'ramp\] done' "$WORK/hold.log" && break
    kill -0 "$hold" 2>/dev/null || break
    sleep 0.05
  done
  sleep 1  # the sidecar subscribes on each channel's first subscriber, asynchronously
  subs=$(subs_per_channel "$prefix" "${nodes[@]}")
  wait "$hold" || subs="$subs (hold: $(grep -o 'RESULT: [A-Z]*' "$WORK/hold.log" || echo failed))"
  # Publishes and deliveries.
  prefix="f$RANDOM-"
  timeout 60 "$BENCH" fanout --port "$SC_PORT" --pub-port "$SC_PUB_PORT" --transport ws -n "$SUBS" \
    --channels "$CHANNELS" --prefix "$prefix" --messages "$MESSAGES" --rate 0 --publish http \
    --pub-conns "$PUB_CONNS" --pub-pipeline "$PUB_PIPELINE" --settle 0.5 --drain-timeout 10 --ramp-timeout 20 \
    --quiet --server-pid "$SC_PID" --label "$name-w$workers" >"$WORK/fan.json" 2>"$WORK/fan.log"
  fan=$?
  if [ -s "$WORK/fan.json" ]; then
    pubs=$(json_field publish_rate <"$WORK/fan.json")
    dels=$(json_field deliveries_per_s <"$WORK/fan.json")
    lost=$(python3 -c 'import json,sys; r=json.loads(sys.stdin.readline()); print("%d/%d delivered, %d lost, %d dup, %d publish errors" % (r["deliveries"], r["expected"], r["lost"], r["dup"], r["publish_errors"]))' <"$WORK/fan.json")
  else
    pubs=n/a dels=n/a lost="comet-bench failed: $(tail -3 "$WORK/fan.log" | tr '\n' ' ')"
  fi
  [ "$fan" = 0 ] || lost="$lost (comet-bench: $(grep -o 'RESULT: [A-Z]*' "$WORK/fan.log" || echo "exit $fan"))"
  stop_sidecar
  ROWS+=("$name|$workers|$pubs|$dels|$subs|$lost")
}

PHPROWS+=("standalone|$(php_rate "$SOLO_URL" "p$RANDOM-")")
PHPROWS+=("cluster (3 shards)|$(php_rate "$CLUSTER_URL" "p$RANDOM-")")
for w in 1 4; do
  run_setup standalone "$SOLO_URL" "$w" "$SOLO_PORT"
  run_setup "cluster (3 shards)" "$CLUSTER_URL" "$w" "${CLUSTER_PORTS[@]}"
done

# ---- report ---------------------------------------------------------------------------
echo
echo "Redis shards: $SUBS WebSocket subscribers over $CHANNELS channels, $MESSAGES messages by POST /pub" \
  "($PUB_CONNS connections x $PUB_PIPELINE in flight), release sidecar, $(nproc) CPUs"
printf '%-20s %7s %12s %14s %-30s %s\n' redis workers publishes/s deliveries/s 'Redis subs/channel' check
printf '%-20s %7s %12s %14s %-30s %s\n' '' '' '' '' '(avg min max / shard / classic)' ''
for r in "${ROWS[@]}"; do
  IFS='|' read -r name w p d s l <<<"$r"
  printf '%-20s %7s %12s %14s %-30s %s\n' "$name" "$w" "$p" "$d" "$s" "$l"
done
echo
echo "PHP client alone ($PHP_PROCS processes, publishMany batches of $PHP_BATCH, ${PHP_SECONDS}s, $CHANNELS channels):"
for r in "${PHPROWS[@]}"; do
  IFS='|' read -r name rate <<<"$r"
  printf '  %-20s %8s publishes/s\n' "$name" "$rate"
done
