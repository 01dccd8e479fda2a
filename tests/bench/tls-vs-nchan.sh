#!/usr/bin/env bash
# TLS scenarios of issue 15: Comet Sidecar terminating TLS itself (--tls-cert/--tls-key)
# against nginx + Nchan with `listen ... ssl`, both on the same self-signed certificate
# (made here with the openssl CLI), subscribers over https / wss (comet-bench --tls),
# publishes over plain HTTP on loopback (the sidecar's publish listener, a plain nginx
# server block for Nchan's publisher). run-vs-nchan.sh calls it after its own report.
#
# usage: tests/bench/tls-vs-nchan.sh [--quick] [--build-dir DIR] [--no-pin] [--nice N]
#                                    [--procs P] [--reps R] [--key ec|rsa] [--no-plain]
#                                    [--out FILE] [--no-report]
#   --quick      2,000 subscribers instead of 10,000, one repetition (about 2 minutes)
#   --procs P    comet-bench client processes (default: as many as --max-fds 19000 needs;
#                a process here may hold only 20,000 files)
#   --reps R     repetitions of the one-publish scenario, servers alternating (default 3)
#   --key        certificate key: ec (ECDSA P-256, default) or rsa (RSA 2048)
#   --no-plain   skip the plain (non-TLS) idle-ws baseline that shows what TLS adds
#   --out FILE   the report file: the TLS section is put between the
#                `<!-- tls-vs-nchan -->` markers (replaced, or inserted before
#                "## Plots", or appended); default docs/performance.md, with --quick the
#                work directory
#
# Scenarios (N = 10,000; each server freshly started for each):
#   tls-idle-ws-N, tls-idle-sse-N   memory per idle TLS subscriber (PSS/RSS before/after
#                                   the ramp), ramp with TLS handshakes (connections/s,
#                                   server CPU per connection), probe publish to all
#   tls-publish-ws-N                one publish to N TLS WebSocket subscribers: time to
#                                   reach everyone, server CPU per delivery (R times)
#   plain-idle-ws-N                 the same hold without TLS, as the baseline
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_NAME='tls-vs-nchan'
# shellcheck source=tests/bench/lib/servers.sh
source "$ROOT/tests/bench/lib/servers.sh"
BUILD=$ROOT/build-rel
QUICK=0
PIN=1
NICE=-10
PROCS=0
REPS=
KEY=ec
PLAIN=1
OUT=
REPORT=1
CMDLINE="tests/bench/tls-vs-nchan.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --build-dir) BUILD=$2; shift ;;
    --no-pin) PIN=0 ;;
    --nice) NICE=$2; shift ;;
    --procs) PROCS=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --key) KEY=$2; shift ;;
    --no-plain) PLAIN=0 ;;
    --out) OUT=$2; shift ;;
    --no-report) REPORT=0 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case $KEY in ec|rsa) ;; *) echo "--key ec|rsa" >&2; exit 2 ;; esac

TPORT=${TPORT:-18191}      # sidecar public listener (TLS)
TPUBPORT=${TPUBPORT:-18192}  # sidecar publish listener (plain)
NTPORT=${NTPORT:-18193}    # nginx ssl server block (subscribers)
NPUBPORT=${NPUBPORT:-18194}  # nginx plain server block (Nchan's publisher)

SIDECAR=$BUILD/sidecar/comet-sidecar
BENCH=$BUILD/tests/bench/comet-bench
for f in "$SIDECAR" "$BENCH"; do
  [ -x "$f" ] || { echo "tls-vs-nchan: $f missing (cmake --build $BUILD --target comet-sidecar comet-bench)" >&2; exit 2; }
done
NCHAN_SO=$(ls /usr/lib/nginx/modules/ngx_nchan_module.so)
command -v openssl >/dev/null || { echo "tls-vs-nchan: the openssl CLI is needed" >&2; exit 2; }

# Both servers bind with SO_REUSEPORT: a process already on one of these ports would
# silently take part of the connections.
for p in "$TPORT" "$TPUBPORT" "$NTPORT" "$NPUBPORT"; do
  if (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
    echo "tls-vs-nchan: something already listens on 127.0.0.1:$p (TPORT, TPUBPORT, NTPORT, NPUBPORT choose others)" >&2
    exit 2
  fi
done

WORK=$(mktemp -d /tmp/comet-tls-vs-nchan.XXXXXX)
RESULTS=$WORK/results.jsonl
LOG=$WORK/run.log
: >"$RESULTS"
echo "tls-vs-nchan: work dir $WORK (log: $LOG)"

if [ "$QUICK" = 1 ]; then
  N=2000; HOLD=2; REPS=${REPS:-1}
else
  N=10000; HOLD=5; REPS=${REPS:-3}
fi
K=$((N / 1000))K

place_processes

# ---- the certificate -----------------------------------------------------------------
CERT=$WORK/cert.pem
KEYF=$WORK/key.pem
if [ "$KEY" = ec ]; then
  keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
  KEY_DESC="ECDSA P-256"
else
  keyopt=(-newkey rsa:2048)
  KEY_DESC="RSA 2048"
fi
openssl req -x509 "${keyopt[@]}" -nodes -keyout "$KEYF" -out "$CERT" -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >>"$LOG" 2>&1

# OpenSSL's own heap per server connection, no server around it (tls_footprint.cpp).
FOOTPRINT='{}'
if [ -x "$BUILD/tests/bench/comet-tls-footprint" ]; then
  FOOTPRINT=$("$BUILD/tests/bench/comet-tls-footprint" "$CERT" "$KEYF" 2>>"$LOG" || echo '{}')
  echo "tls-vs-nchan: OpenSSL per server connection: $FOOTPRINT" | tee -a "$LOG"
fi

# ---- servers -------------------------------------------------------------------------
PIDS=()

# start_comet tls|plain: one sidecar, one worker (as run-vs-nchan.sh's 10K scenarios);
# its output in sidecar-<run>.log (warnings and errors only).
start_comet() {
  local tls_flags=()
  [ "$1" = tls ] && tls_flags=(--tls-cert "$CERT" --tls-key "$KEYF")
  launch_sidecar "${tls_flags[@]}"
}

stop_comet() { stop_pids; }

NGX=$WORK/nginx
NGX_MASTER=
# start_nchan tls|plain: nginx with one worker (master + worker, as run-vs-nchan.sh), the
# subscriber locations on $NTPORT (with `ssl` for tls), the publisher on $NPUBPORT.
start_nchan() {
  local ssl='' sslconf=''
  if [ "$1" = tls ]; then
    ssl=ssl
    # ssl_session_cache is left at nginx's default (none: nothing stored server-side) and
    # ssl_session_tickets at its default (on), like the sidecar (no cache, stateless
    # tickets); comet-bench never resumes, so every connection is a full handshake.
    sslconf="ssl_certificate $CERT; ssl_certificate_key $KEYF; ssl_protocols TLSv1.2 TLSv1.3;"
  fi
  mkdir -p "$NGX/logs"
  {
    nchan_conf_head 1
    cat <<EOF
  server {
    listen 127.0.0.1:$NTPORT $ssl reuseport backlog=4096;
    $sslconf
    location = /ws  { nchan_subscriber websocket;   nchan_channel_id \$arg_ch; nchan_subscriber_first_message newest; }
    location = /sse { nchan_subscriber eventsource; nchan_channel_id \$arg_ch; nchan_subscriber_first_message newest; }
  }
  server {
    listen 127.0.0.1:$NPUBPORT reuseport backlog=4096;
    location ~ ^/pub/(.+)\$ { nchan_publisher; nchan_channel_id \$1; }
  }
}
EOF
  } >"$NGX/nginx.conf"
  launch_nginx 1 "$NTPORT" "$NPUBPORT"
}

stop_nchan() { stop_nginx; }

cleanup() {
  stop_comet 2>/dev/null || true
  stop_nchan 2>/dev/null || true
}
trap cleanup EXIT

# ---- one measurement -----------------------------------------------------------------
FAILURES=0
REP=0
# bench SCENARIO TARGET tls|plain MODE ARGS...
bench() {
  local scenario=$1 target=$2 tls=$3 mode=$4
  shift 4
  local port=$TPORT pub_port=$TPUBPORT extra=()
  if [ "$target" = nchan ]; then port=$NTPORT; pub_port=$NPUBPORT; fi
  [ "$tls" = tls ] && extra=(--tls --tls-ca "$CERT")
  [ "$PROCS" -gt 0 ] && extra+=(--procs "$PROCS")
  local pid_list
  pid_list=$(IFS=,; echo "${PIDS[*]}")
  echo "== $scenario / $target: comet-bench $mode $* ${extra[*]} (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$LOG"
  set +e
  local out
  out=$("${CLI[@]}" "$BENCH" "$mode" --target "$target" --port "$port" --pub-port "$pub_port" \
        --server-pid "$pid_list" --label "$scenario" --quiet "${extra[@]}" "$@" 2>>"$LOG")
  local rc=$?
  set -e
  tail -n 9 "$LOG" | sed -n '/^== comet-bench/,$p'
  [ -n "$out" ] || out='{}'
  echo "$out" | jq -c --arg sc "$scenario" --arg tg "$target" --argjson rc "$rc" \
    --argjson rep "$REP" --arg load "$(cut -d' ' -f1 /proc/loadavg)" \
    '. + {scenario: $sc, target: $tg, exit: $rc, load: $load, store: "memory", rep: $rep}' >>"$RESULTS"
  [ "$rc" -eq 0 ] || FAILURES=$((FAILURES + 1))
}

# run_both SCENARIO tls|plain MODE ARGS...: each server freshly started.
run_both() {
  local scenario=$1 tls=$2 mode=$3
  shift 3
  start_comet "$tls"
  bench "$scenario" comet "$tls" "$mode" "$@"
  stop_comet
  start_nchan "$tls"
  bench "$scenario" nchan "$tls" "$mode" "$@"
  stop_nchan
}

# What the handshake negotiates (recorded in the report).
start_comet tls
NEGOTIATED_COMET=$(openssl s_client -connect "127.0.0.1:$TPORT" -servername localhost -alpn http/1.1 \
  -CAfile "$CERT" </dev/null 2>/dev/null | sed -n 's/^New, \(.*\)$/\1/p; s/^ALPN protocol: //p; s/^Verify return code: //p' | paste -sd ';' || true)
stop_comet
start_nchan tls
NEGOTIATED_NCHAN=$(openssl s_client -connect "127.0.0.1:$NTPORT" -servername localhost -alpn http/1.1 \
  -CAfile "$CERT" </dev/null 2>/dev/null | sed -n 's/^New, \(.*\)$/\1/p; s/^ALPN protocol: //p; s/^Verify return code: //p' | paste -sd ';' || true)
stop_nchan
echo "tls-vs-nchan: sidecar negotiates: $NEGOTIATED_COMET" | tee -a "$LOG"
echo "tls-vs-nchan: nginx negotiates:   $NEGOTIATED_NCHAN" | tee -a "$LOG"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
run_both "tls-idle-ws-$K" tls hold --transport ws -n "$N" --duration "$HOLD"
run_both "tls-idle-sse-$K" tls hold --transport sse -n "$N" --duration "$HOLD"
for REP in $(seq 1 "$REPS"); do
  run_both "tls-publish-ws-$K" tls fanout --transport ws -n "$N" --messages 1 --rate 0 --settle 2
done
REP=0
if [ "$PLAIN" = 1 ]; then
  run_both "plain-idle-ws-$K" plain hold --transport ws -n "$N" --duration "$HOLD"
fi
T_END=$(date +%s)

cat >"$WORK/meta.json" <<EOF
{
  "command": "$CMDLINE",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "duration_s": $((T_END - T_START)),
  "quick": $QUICK,
  "n": $N,
  "hold_s": $HOLD,
  "reps": $REPS,
  "pinned": $PIN,
  "nice": $NICE,
  "key": "$KEY_DESC",
  "negotiated_comet": "$NEGOTIATED_COMET",
  "negotiated_nchan": "$NEGOTIATED_NCHAN",
  "git": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')",
  "nginx": "$(nginx -v 2>&1 | sed 's/.*nginx\///')",
  "nchan": "$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)",
  "openssl": "$(openssl version | cut -d' ' -f1-2)",
  "load_start": "$LOAD_START",
  "load_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "footprint": $FOOTPRINT
}
EOF

# ---- report --------------------------------------------------------------------------
if [ -z "$OUT" ]; then
  if [ "$QUICK" = 1 ]; then OUT=$WORK/performance.md; else OUT=$ROOT/docs/performance.md; fi
fi
python3 - "$RESULTS" "$WORK/meta.json" "$WORK/tls-section.md" <<'PY'
import json, sys
results = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in results:  # comet-bench's CPU (handshakes included) per subscriber
    if r.get("ready"):
        r["client_us_per_conn"] = r.get("client_cpu_s", 0) * 1e6 / r["ready"]
meta = json.load(open(sys.argv[2]))
out = open(sys.argv[3], "w")

def fmt(v, d=0):
    if v is None: return "–"
    return f"{v:,.{d}f}"

def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else ""

def pick(sc, tg):
    rs = [r for r in results if r.get("scenario") == sc and r.get("target") == tg]
    return rs

def one(sc, tg):
    rs = pick(sc, tg)
    return rs[0] if rs else {}

def ok(r):
    return "ok" if r.get("exit") == 0 else f"FAIL (exit {r.get('exit')})"

n = meta["n"]
K = f"{n // 1000}K"
P = lambda *a: print(*a, file=out)
P("<!-- tls-vs-nchan: generated by tests/bench/tls-vs-nchan.sh; raw results in its work directory -->")
P("## TLS")
P()
P(f"Measured {meta['date']} in one run of {meta['duration_s']} s, git {meta['git']}. Reproduce with:")
P()
P("```sh")
P(meta["command"].strip())
P("```")
P()
P(f"Both servers terminate TLS themselves on the same self-signed {meta['key']} certificate "
  f"(made with the openssl CLI in the run's work directory), {meta['openssl']} on both sides: "
  f"Comet Sidecar with `--tls-cert`/`--tls-key` (`--workers 1`), nginx {meta['nginx']} + Nchan "
  f"{meta['nchan']} with `listen ... ssl` (1 worker), `ssl_protocols TLSv1.2 TLSv1.3`, "
  "`ssl_session_cache` left at its default (`none`) and `ssl_session_tickets` at its default "
  "(on); the sidecar keeps no session cache either and issues stateless tickets. comet-bench "
  "connects with `--tls`: a non-blocking OpenSSL handshake per connection (SNI and certificate "
  "check against the test certificate, ALPN http/1.1, no session resumption, so every "
  "connection is a full handshake as from a distinct browser; `SSL_MODE_RELEASE_BUFFERS` on "
  "the client too), then its request. Publishes stay plain HTTP on loopback (the sidecar's "
  "publish listener; a plain nginx server block for Nchan's publisher). Negotiated: sidecar "
  f"`{meta['negotiated_comet']}`, nginx `{meta['negotiated_nchan']}`.")
P()
P("Servers pinned to CPU 0, clients to CPU 1 (as above), each server freshly started per "
  "row. Memory is PSS/RSS of all server processes after the ramp minus before, per "
  "subscriber; it does not depend on the machine's other load. The rates and CPU rows do: "
  "the machine has 2 CPUs and other work ran on it meanwhile "
  f"(load average {meta['load_start']} at the start, {meta['load_end']} at the end), so "
  "treat them as ±15–30 %. The ramp rate with TLS is bounded by the client as much as by "
  "the server: comet-bench does every client handshake (ECDHE, signature and certificate "
  "check, in OpenSSL's libcrypto) on CPU 1 and spends more CPU per connection than either "
  "server (the client CPU row), so compare the servers' CPU per connection, not the rates.")
P()

def idle_table(sc, desc):
    c, x = one(sc, "comet"), one(sc, "nchan")
    if not c and not x: return
    P(f"### {sc}")
    P()
    P(desc)
    P()
    P("| metric | Comet Sidecar | Nchan | ratio | better |")
    P("| --- | ---: | ---: | ---: | --- |")
    rows = [
        ("server memory per subscriber (PSS, bytes)", "bytes_per_conn_pss", 0, "lower"),
        ("server memory per subscriber (RSS, bytes)", "bytes_per_conn_rss", 0, "lower"),
        ("ramp with TLS handshakes (connections/s)", "ramp_per_s", 0, "higher"),
        ("server CPU per connection, ramp incl. handshake (µs)", "server_cpu_us_per_conn", 1, "lower"),
        ("client CPU per connection, whole run (µs; comet-bench, CPU 1)", "client_us_per_conn", 0, ""),
        ("one publish to all: last delivery (ms)", "last_delivery_ms", 1, "lower"),
        ("one publish to all: deliveries/s", "deliveries_per_s", 0, "higher"),
        ("server CPU per delivery, after the ramp (µs)", "server_cpu_us_per_item", 2, "lower"),
    ]
    for label, k, d, better in rows:
        a, b = c.get(k), x.get(k)
        P(f"| {label} | {fmt(a, d)} | {fmt(b, d)} | {ratio(a, b) if better else ''} | {better} |")
    P(f"| messages published / delivered | {c.get('published')} / {fmt(c.get('deliveries'))} | {x.get('published')} / {fmt(x.get('deliveries'))} | | |")
    P(f"| lost/dup | {c.get('lost')}/{c.get('dup')} | {x.get('lost')}/{x.get('dup')} | | zero |")
    P(f"| run | {ok(c)} | {ok(x)} | | |")
    P(f"| machine load (1-min average) at start | {c.get('load')} | {x.get('load')} | | |")
    P()

idle_table(f"tls-idle-ws-{K}", f"idle TLS WebSocket subscribers (wss) held {meta['hold_s']} s, then one "
           f"message published to all of them: {n:,} clients, 1 channel, 1 sidecar / 2 nginx processes.")
idle_table(f"tls-idle-sse-{K}", f"idle TLS SSE subscribers (https) held {meta['hold_s']} s, then one "
           f"message published to all of them: {n:,} clients, 1 channel, 1 sidecar / 2 nginx processes.")

sc = f"tls-publish-ws-{K}"
cs, xs = pick(sc, "comet"), pick(sc, "nchan")
if cs or xs:
    def med(rs):
        rs = sorted(rs, key=lambda r: r.get("last_delivery_ms") or 0)
        return rs[len(rs) // 2] if rs else {}
    c, x = med(cs), med(xs)
    P(f"### {sc}")
    P()
    P(f"one publish to {n:,} TLS WebSocket subscribers of one channel, 2 s after the ramp "
      f"(`fanout --messages 1`); run {len(cs)} time(s) per server, servers alternating; the "
      "columns show each server's median run by last delivery.")
    P()
    P("| metric | Comet Sidecar | Nchan | ratio | better |")
    P("| --- | ---: | ---: | ---: | --- |")
    for label, k, d, better in [
        ("time to reach everyone: last delivery (ms)", "last_delivery_ms", 1, "lower"),
        ("latency p50 (µs)", None, 0, "lower"),
        ("deliveries/s", "deliveries_per_s", 0, "higher"),
        ("server CPU per delivery (µs)", "server_cpu_us_per_item", 2, "lower"),
    ]:
        if k is None:
            a, b = c.get("lat_us", {}).get("p50"), x.get("lat_us", {}).get("p50")
        else:
            a, b = c.get(k), x.get(k)
        P(f"| {label} | {fmt(a, d)} | {fmt(b, d)} | {ratio(a, b)} | {better} |")
    allruns = lambda rs, k, d: ", ".join(fmt(r.get(k), d) for r in sorted(rs, key=lambda r: r.get("rep", 0)))
    P(f"| last delivery (ms) of every run, in order | {allruns(cs, 'last_delivery_ms', 1)} | {allruns(xs, 'last_delivery_ms', 1)} | | |")
    P(f"| server CPU per delivery (µs) of every run | {allruns(cs, 'server_cpu_us_per_item', 2)} | {allruns(xs, 'server_cpu_us_per_item', 2)} | | |")
    P(f"| ramp (connections/s) of every run | {allruns(cs, 'ramp_per_s', 0)} | {allruns(xs, 'ramp_per_s', 0)} | | |")
    P(f"| server CPU per connection, ramp (µs) of every run | {allruns(cs, 'server_cpu_us_per_conn', 1)} | {allruns(xs, 'server_cpu_us_per_conn', 1)} | | |")
    lost = lambda rs: f"{sum(r.get('lost', 0) for r in rs)}/{sum(r.get('dup', 0) for r in rs)}"
    P(f"| deliveries, all runs | {fmt(sum(r.get('deliveries', 0) for r in cs))} | {fmt(sum(r.get('deliveries', 0) for r in xs))} | | |")
    P(f"| lost/dup, all runs | {lost(cs)} | {lost(xs)} | | zero |")
    P(f"| runs | {', '.join(ok(r) for r in cs)} | {', '.join(ok(r) for r in xs)} | | |")
    P()

# What TLS adds per idle connection (WebSocket), from the plain baseline of this run.
pc, px = one(f"plain-idle-ws-{K}", "comet"), one(f"plain-idle-ws-{K}", "nchan")
tc, tx = one(f"tls-idle-ws-{K}", "comet"), one(f"tls-idle-ws-{K}", "nchan")
if pc and px and tc and tx:
    P(f"### What TLS adds per idle WebSocket subscriber ({n:,})")
    P()
    P("The same hold without TLS in the same run (`plain-idle-ws`), each server freshly started.")
    P()
    P("| PSS bytes per subscriber | Comet Sidecar | Nchan | ratio |")
    P("| --- | ---: | ---: | ---: |")
    a, b = pc.get("bytes_per_conn_pss"), px.get("bytes_per_conn_pss")
    P(f"| plain (ws://) | {fmt(a)} | {fmt(b)} | {ratio(a, b)} |")
    a2, b2 = tc.get("bytes_per_conn_pss"), tx.get("bytes_per_conn_pss")
    P(f"| TLS (wss://) | {fmt(a2)} | {fmt(b2)} | {ratio(a2, b2)} |")
    P(f"| added by TLS | {fmt(a2 - a)} | {fmt(b2 - b)} | {ratio(a2 - a, b2 - b)} |")
    fp = meta.get("footprint") or {}
    if fp.get("after_handshake_bytes"):
        P(f"| OpenSSL alone: heap per server SSL after the handshake (`comet-tls-footprint`, the sidecar's settings) | {fmt(fp['after_handshake_bytes'])} | | |")
    if fp.get("after_handover_bytes"):
        P(f"| what the sidecar keeps per TLS 1.3 connection once it has left OpenSSL (record keys and cipher contexts, `comet-tls-footprint`) | {fmt(fp['after_handover_bytes'])} | | |")
    a, b = pc.get("server_cpu_us_per_conn"), px.get("server_cpu_us_per_conn")
    a2, b2 = tc.get("server_cpu_us_per_conn"), tx.get("server_cpu_us_per_conn")
    P(f"| server CPU per connection, plain / TLS (µs) | {fmt(a, 1)} / {fmt(a2, 1)} | {fmt(b, 1)} / {fmt(b2, 1)} | |")
    a, b = pc.get("ramp_per_s"), px.get("ramp_per_s")
    a2, b2 = tc.get("ramp_per_s"), tx.get("ramp_per_s")
    P(f"| ramp, plain / TLS (connections/s) | {fmt(a)} / {fmt(a2)} | {fmt(b)} / {fmt(b2)} | |")
    P()

P("### TLS budget (issue 15)")
P()
P("| budget | measured (ours) | Nchan | ratio | met? |")
P("| --- | ---: | ---: | ---: | --- |")
for sc in (f"tls-idle-ws-{K}", f"tls-idle-sse-{K}"):
    c, x = one(sc, "comet"), one(sc, "nchan")
    a, b = c.get("bytes_per_conn_pss"), x.get("bytes_per_conn_pss")
    met = "yes" if a is not None and b and a <= b / 4 else "**no**"
    P(f"| memory per idle TLS subscriber ≤ ¼ of Nchan's ({sc}, PSS) | {fmt(a)} B | {fmt(b)} B | {ratio(a, b)} | {met} |")
bad = sum(r.get("lost", 0) + r.get("dup", 0) for r in results)
fails = sum(1 for r in results if r.get("exit") != 0)
P(f"| zero loss in every TLS scenario | {bad} lost+dup | | | {'yes' if bad == 0 else '**no**'} |")
P()
fp = meta.get("footprint") or {}
if fp.get("after_handshake_bytes") and pc and tx:
    quarter = tx.get("bytes_per_conn_pss", 0) / 4
    kept = fp.get("after_handover_bytes") or fp["after_handshake_bytes"]
    floor = pc.get("bytes_per_conn_pss", 0) + kept
    P(f"`comet-tls-footprint` ({fp.get('openssl')}, {fp.get('n')} TLS 1.3 handshakes over "
      "socketpairs, glibc heap in use before/after, server `SSL_CTX` set up as the sidecar's): "
      f"{fmt(fp.get('ssl_new_bytes'))} B per connection after `SSL_new` alone, "
      f"{fmt(fp['after_handshake_bytes'])} B after the handshake, "
      f"{fmt(fp.get('after_handshake_no_release_buffers_bytes'))} B after it without "
      "`SSL_MODE_RELEASE_BUFFERS`"
      + (f", and {fmt(fp['after_handover_bytes'])} B once the connection has left OpenSSL for "
         "the sidecar's own TLS 1.3 record layer (the SSL freed; what an idle TLS 1.3 "
         "subscriber keeps)" if fp.get("after_handover_bytes") else "")
      + f". The sidecar's plain connection plus what TLS keeps is {fmt(floor)} B, against the "
      f"budget's {fmt(quarter)} B (¼ of Nchan's with TLS): "
      + ("within it." if floor <= quarter else "above it."))
    P()
if fails:
    P(f"{fails} measurement(s) failed (non-zero comet-bench exit); see the run log.")
    P()
P("<!-- /tls-vs-nchan -->")
PY

if [ "$REPORT" = 1 ]; then
  put_report_section tls-vs-nchan "$WORK/tls-section.md" "$OUT"
  echo "tls-vs-nchan: wrote the TLS section into $OUT"
fi
echo "tls-vs-nchan: $FAILURES failing measurement(s); results in $RESULTS"
[ "$FAILURES" -eq 0 ]
