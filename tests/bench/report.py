#!/usr/bin/env python3
"""Turns the comet-bench JSON lines of one run-vs-nchan.sh run into docs/performance.md
(tables of Comet Sidecar vs Nchan with ratios, the budgets, versions) and gnuplot PNGs.

usage: report.py --results results.jsonl --meta meta.json --out performance.md
                 --plots DIR [--notes notes.md]
"""
import argparse
import json
import os
import subprocess


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def fmt(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(ours, theirs):
    if ours is None or theirs is None or theirs == 0:
        return "–"
    return f"{ours / theirs:.2f}×"


def kind(sc):
    for k in ("idle", "fanout", "latency", "longpoll", "poll", "reconnect"):
        if sc.startswith(k):
            return k
    return "other"


def ok_mark(r):
    if r is None:
        return "not run"
    return "ok" if r.get("exit") == 0 else "**FAIL**"


def loss_text(r):
    if r is None or "lost" not in r:
        return "–"
    return f"{r['lost']}/{r['dup']}"


# metric name, key (or function), digits, better ("lower"/"higher")
METRICS = {
    "idle": [
        ("server memory per subscriber (PSS, bytes)", "bytes_per_conn_pss", 0, "lower"),
        ("server memory per subscriber (RSS, bytes)", "bytes_per_conn_rss", 0, "lower"),
        ("ramp (connections/s)", "ramp_per_s", 0, "higher"),
        ("one publish to all: last delivery (ms)", "last_delivery_ms", 1, "lower"),
        ("one publish to all: deliveries/s", "deliveries_per_s", 0, "higher"),
        ("server CPU per connection, ramp (µs)", "server_cpu_us_per_conn", 1, "lower"),
        ("server CPU per delivery, after the ramp (µs)", "server_cpu_us_per_item", 1, "lower"),
    ],
    "fanout": [
        ("deliveries/s", "deliveries_per_s", 0, "higher"),
        ("latency p50 (µs)", lambda r: r["lat_us"]["p50"], 0, "lower"),
        ("latency p99 (µs)", lambda r: r["lat_us"]["p99"], 0, "lower"),
        ("last delivery (ms)", "last_delivery_ms", 1, "lower"),
        ("server CPU per delivery (µs)", "server_cpu_us_per_item", 2, "lower"),
    ],
    "latency": [
        ("latency p50 (µs)", lambda r: r["lat_us"]["p50"], 0, "lower"),
        ("latency p90 (µs)", lambda r: r["lat_us"]["p90"], 0, "lower"),
        ("latency p99 (µs)", lambda r: r["lat_us"]["p99"], 0, "lower"),
        ("latency max (µs)", lambda r: r["lat_us"]["max"], 0, "lower"),
        ("deliveries/s", "deliveries_per_s", 0, "higher"),
        ("server CPU per delivery (µs)", "server_cpu_us_per_item", 2, "lower"),
    ],
    "poll": [("requests/s", "requests_per_s", 0, "higher"),
             ("server CPU per request (µs)", "server_cpu_us_per_item", 2, "lower")],
    "longpoll": [
        ("requests/s", "requests_per_s", 0, "higher"),
        ("deliveries/s", "deliveries_per_s", 0, "higher"),
        ("latency p99 (µs)", lambda r: r["lat_us"]["p99"], 0, "lower"),
        ("server CPU per delivery (µs)", "server_cpu_us_per_item", 2, "lower"),
    ],
    "reconnect": [
        ("storm: all back after (s)", "storm_s", 3, "lower"),
        ("time to resume p50 (ms)", lambda r: r["resume_ms"]["p50"], 2, "lower"),
        ("time to resume p99 (ms)", lambda r: r["resume_ms"]["p99"], 2, "lower"),
        ("latency p99 during the storm (µs)", lambda r: r["lat_us"]["p99"], 0, "lower"),
        ("server CPU per delivery incl. reconnects (µs)", "server_cpu_us_per_item", 2, "lower"),
    ],
}

DESCRIBE = {
    "idle": "idle subscribers held open, then one message published to all of them",
    "fanout": "one channel, messages published back to back (HTTP, pipelined)",
    "latency": "subscribers spread over channels, 1,000 msg/s in total (HTTP publish)",
    "poll": "clients polling (`wait=0` / Nchan `intervalpoll`), no messages",
    "longpoll": "clients long-polling, 10 per channel, while messages are published faster than one "
                "answer per message can keep up with (12,000 msg/s, 120,000 deliveries/s; quick mode 2,000)",
    "reconnect": "SSE subscribers; while 1,000 msg/s are published all reconnect within 1 s "
                 "with their last id (Last-Event-ID)",
}


def p99(r):
    return (r.get("lat_us") or {}).get("p99", 0)


def median_key(sc):
    """What a repeated scenario's runs are ranked by: request rate for polling, else p99."""
    if kind(sc) in ("poll", "longpoll"):
        return "requests/s", lambda r: r.get("requests_per_s", 0)
    return "p99 (µs)", p99


def median_run(sc, rs):
    if len(rs) == 1:
        return rs[0]
    return sorted(rs, key=median_key(sc)[1])[(len(rs) - 1) // 2]


def store_text(r):
    if (r or {}).get("store") == "redis":
        return "both through Redis (sidecar `--redis`, Nchan `nchan_redis_pass`; Redis' memory not counted)"
    return "in-process (sidecar's embedded bus, Nchan's memory store)"


def value(r, key):
    if r is None:
        return None
    try:
        return key(r) if callable(key) else r.get(key)
    except (KeyError, TypeError):
        return None


def gnuplot(script):
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        print("report.py: gnuplot failed:", e)
        return False


def bar_plot(plots, name, title, ylabel, rows, logscale=False):
    """rows: [(label, comet, nchan)]"""
    rows = [(l, c, n) for (l, c, n) in rows if c is not None or n is not None]
    if not rows:
        return None
    dat = os.path.join(plots, name + ".dat")
    with open(dat, "w") as f:
        for l, c, n in rows:
            f.write(f'"{l}" {c if c is not None else 0} {n if n is not None else 0}\n')
    png = os.path.join(plots, name + ".png")
    script = f"""
set terminal pngcairo size 1000,560 font "sans,10"
set output "{png}"
set title "{title}"
set ylabel "{ylabel}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set grid ytics
set xtics rotate by 25 right font ",9"
set yrange [0:*]
{"set logscale y; set yrange [*:*]" if logscale else ""}
plot "{dat}" using 2:xtic(1) title "Comet Sidecar" lc rgb "#1f77b4", "" using 3 title "Nchan" lc rgb "#ff7f0e"
"""
    return name + ".png" if gnuplot(script) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plots", required=True)
    ap.add_argument("--notes")
    a = ap.parse_args()
    rows = load(a.results)
    meta = json.load(open(a.meta))
    os.makedirs(a.plots, exist_ok=True)

    scenarios = []
    runs = {}  # scenario -> target -> every run (repeated scenarios have several)
    for r in rows:
        sc = r.get("scenario")
        if sc not in runs:
            scenarios.append(sc)
            runs[sc] = {}
        runs[sc].setdefault(r.get("target"), []).append(r)
    # A repeated scenario is represented by its run with the median p99 (request rate for
    # polling), so one disturbed run on the shared machine decides nothing.
    by = {sc: {tg: median_run(sc, rs) for tg, rs in t.items()} for sc, t in runs.items()}

    out = []
    w = out.append
    w("# Performance: Comet Sidecar vs Nchan\n")
    w("<!-- Generated by tests/bench/report.py from one run of tests/bench/run-vs-nchan.sh; "
      "the raw results are docs/perf/results.jsonl. Hand-written notes come from docs/perf/notes.md. -->\n")
    w(f"Measured {meta.get('date')} in one run of {meta.get('duration_s')} s"
      f"{' (quick mode: small N)' if meta.get('quick') else ''}. Reproduce with:\n")
    w("```sh\n" + meta.get("command", "tests/bench/run-vs-nchan.sh") + "\n```\n")
    w("## Machine and versions\n")
    w("| | |\n| --- | --- |")
    w(f"| CPU | {meta.get('cpu')} (2 cores shared by clients and servers) |")
    w(f"| memory | {meta.get('memory')} |")
    w(f"| kernel | {meta.get('kernel')} |")
    w(f"| open files per process | {meta.get('fd_limit')} (hard limit) |")
    w(f"| Comet Sidecar | git {meta.get('git')}, RelWithDebInfo, libevent {meta.get('libevent')}, {meta.get('compiler')} |")
    w(f"| Nchan | libnginx-mod-nchan {meta.get('nchan')} on nginx {meta.get('nginx')} (memory store; "
      f"Redis store in the `-redis` scenarios) |")
    w(f"| Redis | {meta.get('redis')} (the `-redis` scenarios and the multi-process sidecar runs) |")
    w(f"| load average at start / end | {meta.get('load_start')} / {meta.get('load_end')} |")
    w("")
    if meta.get("pinned"):
        w("Threads: every server process (sidecar with `--workers 1`, nginx master and workers, Redis) is "
          "pinned to CPU 0 with `taskset -c 0`; comet-bench (its client processes, one event loop each, and "
          "the publisher in the parent process) is pinned to CPU 1. So each server gets one core and the "
          "clients the other. Runs above ~19K connections use several server processes (6 sidecars sharing "
          "the port through SO_REUSEPORT over one Redis; nginx with 6 workers and `reuseport`) and "
          "several client processes; memory is summed over all server processes." +
          (f" Servers and clients run at nice {meta.get('nice')} so that other jobs on the shared machine "
           "disturb them less." if meta.get("nice") else "") + "\n")
    else:
        w("Threads were not pinned (`--no-pin`).\n")

    w("## Results\n")
    w("Server CPU is the servers' CPU time (all threads, from /proc/<pid>/task/*/schedstat) divided by "
      "the work done; unlike the wall-clock rates it hardly depends on what else the machine was running. "
      "Ratio = ours / Nchan. \"lost/dup\" counts messages lost and duplicated over all subscribers "
      "(checked per subscriber by sequence number); every run also fails on a failed connection or "
      "an unexpected disconnect.\n")
    for sc in scenarios:
        c, n = by[sc].get("comet"), by[sc].get("nchan")
        k = kind(sc)
        any_r = c or n
        w(f"### {sc}\n")
        reps = max(len(runs[sc].get("comet", [])), len(runs[sc].get("nchan", [])))
        w(f"{DESCRIBE.get(k, '')}: {any_r.get('n', '?'):,} clients over {any_r.get('transport')}, "
          f"{any_r.get('channels')} channel(s), {any_r.get('procs')} client process(es), "
          f"{(c or {}).get('server_processes') or '?'} sidecar / {(n or {}).get('server_processes') or '?'} nginx "
          f"process(es); messages stored {store_text(any_r)}." +
          (f" Run {reps} times, servers alternating; the columns show each server's run with the median "
           f"{median_key(sc)[0].split(' ')[0]}." if reps > 1 else "") + "\n")
        w("| metric | Comet Sidecar | Nchan | ratio | better |\n| --- | ---: | ---: | ---: | --- |")
        for (label, key, digits, better) in METRICS.get(k, []):
            cv, nv = value(c, key), value(n, key)
            w(f"| {label} | {fmt(cv, digits)} | {fmt(nv, digits)} | {ratio(cv, nv)} | {better} |")
        if reps > 1:
            label, key = median_key(sc)
            each = lambda tg: ", ".join(fmt(key(r)) for r in runs[sc].get(tg, []))
            w(f"| {label} of every run, in order | {each('comet')} | {each('nchan')} | | |")
        w(f"| messages published / delivered | {fmt(value(c, 'published'))} / {fmt(value(c, 'deliveries'))} | "
          f"{fmt(value(n, 'published'))} / {fmt(value(n, 'deliveries'))} | | |")
        w(f"| lost/dup | {loss_text(c)} | {loss_text(n)} | | zero |")
        w(f"| run | {ok_mark(c)} | {ok_mark(n)} | | |")
        w(f"| machine load (1-min average) at start | {value(c, 'load') or '–'} | {value(n, 'load') or '–'} | | |")
        w("")

    # ---- budgets ----
    def find(prefix, target, transport=None):
        for sc in scenarios:
            if sc.startswith(prefix):
                r = by[sc].get(target)
                if r and (transport is None or r.get("transport") == transport):
                    return sc, r
        return None, None

    w("## Budgets (../shared/DESIGN.md, issue 4)\n")
    w("| budget | measured (ours) | Nchan | met? |\n| --- | --- | --- | --- |")

    def budget(label, ours, theirs, met):
        w(f"| {label} | {ours} | {theirs} | {met} |")

    big = [sc for sc in scenarios if sc.startswith("idle") and by[sc].get("comet", {}).get("n", 0) >= 50000]
    for sc in big or [sc for sc in scenarios if sc.startswith("idle")]:
        c, n = by[sc].get("comet"), by[sc].get("nchan")
        cv, nv = value(c, "bytes_per_conn_pss"), value(n, "bytes_per_conn_pss")
        if cv is None:
            continue
        met = cv <= 2048 and (nv is None or cv <= nv / 2)
        budget(f"≤ 2 KiB per idle subscriber and ≤ half of Nchan ({sc})", f"{fmt(cv)} B", f"{fmt(nv)} B",
               ("yes" if met else "**no**") + ("" if c.get("n", 0) >= 100000 else f" (at {c.get('n'):,}, not 100K)"))
        cl, nl = value(c, "last_delivery_ms"), value(n, "last_delivery_ms")
        budget(f"one publish to all in < 200 ms ({sc}, {c.get('n'):,} subscribers)", f"{fmt(cl, 1)} ms",
               f"{fmt(nl, 1)} ms", "yes" if cl is not None and cl < 200 else "**no**")
    sc, c = find("fanout", "comet")
    if c:
        n = by[sc].get("nchan")
        cv, nv = value(c, "deliveries_per_s"), value(n, "deliveries_per_s")
        budget(f"fanout deliveries/s ≥ 2× Nchan ({sc})", fmt(cv), fmt(nv),
               "yes" if cv and nv and cv >= 2 * nv else "**no**")
    for tr in ("ws", "sse", "multipart"):
        sc, c = find("latency", "comet", tr)
        if c:
            n = by[sc].get("nchan")
            cv, nv = value(c, lambda r: r["lat_us"]["p99"]), value(n, lambda r: r["lat_us"]["p99"])
            budget(f"publish → socket p99 < 2 ms and ≤ Nchan ({sc})", f"{fmt(cv)} µs", f"{fmt(nv)} µs",
                   "yes" if cv is not None and cv < 2000 and (nv is None or cv <= nv) else "**no**")
    for pre in ("poll", "longpoll"):
        sc, c = find(pre, "comet")
        if c:
            n = by[sc].get("nchan")
            cv, nv = value(c, "requests_per_s"), value(n, "requests_per_s")
            budget(f"{pre} ≥ 50K requests/s and ≥ Nchan ({sc})", fmt(cv), fmt(nv),
                   "yes" if cv and cv >= 50000 and (not nv or cv >= nv) else "**no**")
    lost = sum(r.get("lost", 0) + r.get("dup", 0) for r in rows if r.get("target") == "comet")
    failed = [r.get("scenario") for r in rows if r.get("target") == "comet" and r.get("exit") != 0]
    budget("zero loss in every scenario", f"{lost} lost+dup" + (f"; failing runs: {', '.join(failed)}" if failed else ""),
           "", "yes" if lost == 0 and not failed else "**no**")
    w("")

    # ---- plots ----
    pics = []
    mem = [(sc, value(by[sc].get("comet"), "bytes_per_conn_pss"), value(by[sc].get("nchan"), "bytes_per_conn_pss"))
           for sc in scenarios if sc.startswith("idle")]
    pics.append(bar_plot(a.plots, "memory", "Server memory per idle subscriber (PSS, lower is better)", "bytes", mem))
    ramp = [(sc, value(by[sc].get("comet"), "ramp_per_s"), value(by[sc].get("nchan"), "ramp_per_s"))
            for sc in scenarios if sc.startswith("idle") or sc.startswith("latency")]
    pics.append(bar_plot(a.plots, "ramp", "Connection ramp rate (higher is better)", "connections/s", ramp))
    lat = []
    for sc in scenarios:
        if sc.startswith("latency"):
            for p in ("p50", "p90", "p99", "p999"):
                lat.append((f"{sc} {p}", value(by[sc].get("comet"), lambda r: r["lat_us"][p]),
                            value(by[sc].get("nchan"), lambda r: r["lat_us"][p])))
    pics.append(bar_plot(a.plots, "latency", "Publish to subscriber latency at 1,000 msg/s (lower is better)",
                         "microseconds (log)", lat, logscale=True))
    thr = []
    for sc in scenarios:
        k = kind(sc)
        key = "requests_per_s" if k in ("poll", "longpoll") else "deliveries_per_s"
        if k in ("fanout", "poll", "longpoll", "idle"):
            thr.append((f"{sc} {'req/s' if key == 'requests_per_s' else 'deliv/s'}",
                        value(by[sc].get("comet"), key), value(by[sc].get("nchan"), key)))
    pics.append(bar_plot(a.plots, "throughput", "Throughput (higher is better)", "per second (log)", thr,
                         logscale=True))
    cpu = []
    for sc in scenarios:
        cpu.append((sc, value(by[sc].get("comet"), "server_cpu_us_per_item"),
                    value(by[sc].get("nchan"), "server_cpu_us_per_item")))
    pics.append(bar_plot(a.plots, "cpu", "Server CPU per delivery (per request for poll), lower is better",
                         "microseconds", cpu))
    w("## Plots\n")
    for p in pics:
        if p:
            w(f"![{p}](perf/{p})\n")

    if a.notes and os.path.exists(a.notes):
        w(open(a.notes).read())
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
