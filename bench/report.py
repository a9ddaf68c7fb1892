#!/usr/bin/env python3
"""bench/report.py - turns the RESULT lines of the bench programs into build/bench/results.json,
a plain-text table on stdout and docs/performance.md (called by tools/bench.sh).

usage: report.py OUT_DIR DOC_PATH
           OUT_DIR holds *.log (and *.rc) from the bench runs and env.json; writes
           OUT_DIR/results.json, prints the tables, writes DOC_PATH
       report.py --json RESULTS_JSON DOC_PATH
           standalone: the figures, environment and failures of an earlier run's results.json;
           prints the tables and writes DOC_PATH (RESULTS_JSON is only read)

Every verdict and every sentence of the results part of DOC_PATH is computed here from the
figures; the text before it (bench/performance-intro.md) describes the method only.
"""
import glob
import json
import os
import sys

SIZES = ["64B", "1KiB", "64KiB", "1MiB"]
ENGINES = ["async", "overlapped"]
GROUP_BASE = "Targets"
GROUP_LARGE = "Targets: large payloads (same-run ratios)"
GROUP_SHM = "Targets: shared memory, point to point (same-run ratios)"
GROUP_BUS_SHM = "Targets: shared memory through the broker (same-run ratios)"
GROUPS = [GROUP_BASE, GROUP_LARGE, GROUP_SHM, GROUP_BUS_SHM]
# bench_bus's engines (its row names) and what they are.
BUS_ENGINES = [("apc", "PIPE_ASYNC"), ("iocp", "PIPE_OVERLAPPED")]


def load(out_dir):
    results = {}
    failures = []
    for log in sorted(glob.glob(os.path.join(out_dir, "*.log"))):
        prog = os.path.basename(log)[:-4]
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith("RESULT "):
                    r = json.loads(line[7:])
                    r["program"] = prog
                    results[r["name"]] = r
        rc_path = os.path.join(out_dir, prog + ".rc")
        if os.path.exists(rc_path):
            rc = open(rc_path).read().strip()
            if rc != "0":
                failures.append({"program": prog, "exit_code": rc})
    return results, failures


def fmt(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1e6:
        return "%.2fM" % (v / 1e6)
    if a >= 1e4:
        return "%.1fk" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def cell(r):
    if not r:
        return "n/a"
    return "%s (%s..%s)" % (fmt(r["median"]), fmt(r["min"]), fmt(r["max"]))


def nng_tables(res, med, ratio, sizes, engines):
    """The nng 1.5.2 comparison (bench_nng, ipc:// = a named pipe, two processes): ours is the
    SDK point-to-point for pair, the broker for req/rep and pub/sub; every ratio from this run."""
    if not any(k.startswith("nng.") for k in res):
        return []
    L = ["## nng 1.5.2 over ipc:// (same run, two processes)\n",
         "Round trips: a ratio below 1 means ours is faster; rates: above 1 means ours is faster. "
         "Ours is the SDK point-to-point for pair and the broker (a third process in between) for "
         "req/rep and pub/sub. nng pub/sub is credit-limited by the bench so that it loses "
         "nothing, like the broker's.\n"]

    def both(ours, nng, raw):
        return "%s (%sx nng, %sx raw)" % (cell(res.get(ours)), fmt(ratio(ours, nng)),
                                          fmt(ratio(ours, raw)))

    L.append("| size | raw ping-pong RTT us | nng pair1 RTT us | " + " | ".join(
        "SDK %s RTT us (ours/nng, ours/raw)" % e for e in engines) + " |")
    L.append("| --- | --- | --- | " + " | ".join("---" for _ in engines) + " |")
    for s in sizes:
        raw, nng = "raw.pingpong.%s.rtt" % s, "nng.pair.rtt.%s" % s
        L.append("| %s | %s | %s | %s |" % (s, cell(res.get(raw)), cell(res.get(nng)), " | ".join(
            both("p2p.%s.rtt.%s" % (e, s), nng, raw) for e in engines)))
    L.append("")
    L.append("| size | raw 1 WriteFile/msg msg/s | nng pair1 one-way msg/s, MB/s | " + " | ".join(
        "SDK %s one-way msg/s (ours/nng, ours/raw)" % e for e in engines) + " |")
    L.append("| --- | --- | --- | " + " | ".join("---" for _ in engines) + " |")
    for s in sizes:
        raw, nng = "raw.stream.%s.msgs" % s, "nng.pair.stream.%s.msgs" % s
        L.append("| %s | %s | %s, %s | %s |" % (
            s, cell(res.get(raw)), cell(res.get(nng)), fmt(med("nng.pair.stream.%s.mbs" % s)),
            " | ".join(both("p2p.%s.stream.%s.msgs" % (e, s), nng, raw) for e in engines)))
    L.append("")
    L.append("| size | raw ping-pong RTT us | nng req/rep RTT us | broker req/rep RTT us "
             "(ours/nng, ours/raw) |")
    L.append("| --- | --- | --- | --- |")
    for s in sizes:
        raw, nng = "raw.pingpong.%s.rtt" % s, "nng.reqrep.rtt.%s" % s
        L.append("| %s | %s | %s | %s |" % (s, cell(res.get(raw)), cell(res.get(nng)),
                                            both("broker.reqrep.rtt.%s" % s, nng, raw)))
    L.append("")
    L.append("| size | raw 1 WriteFile/msg msg/s | nng pub/sub 1->1 msg/s, MB/s | broker pub/sub "
             "1->1 msg/s (ours/nng, ours/raw), MB/s |")
    L.append("| --- | --- | --- | --- |")
    for s in sizes:
        raw, nng = "raw.stream.%s.msgs" % s, "nng.pubsub.1to1.%s.msgs" % s
        ours = "broker.pubsub.1to1.%s.msgs" % s
        L.append("| %s | %s | %s, %s | %s, %s |" % (
            s, cell(res.get(raw)), cell(res.get(nng)), fmt(med("nng.pubsub.1to1.%s.mbs" % s)),
            both(ours, nng, raw), fmt(med("broker.pubsub.1to1.%s.mbs" % s))))
    L.append("")
    return L


class Figures:
    """The results of one run, with the helpers every table uses."""

    def __init__(self, res):
        self.res = res

    def med(self, name):
        r = self.res.get(name)
        return r["median"] if r else None

    def ratio(self, a, b):
        a, b = self.med(a), self.med(b)
        return a / b if a is not None and b else None


def compute_targets(fig):
    """Every target with its measured value and verdict (met: True/False, None = not measured)."""
    med, ratio = fig.med, fig.ratio
    targets = []

    def target(group, what, value, op, limit, unit, figure, baseline, why=None):
        ok = None
        if value is not None:
            ok = value <= limit if op == "<=" else value >= limit
        t = {"group": group, "target": what, "measured": value, "op": op, "limit": limit,
             "unit": unit, "figure": figure, "baseline": baseline, "met": ok}
        if why:
            t["why"] = why      # same-run figures that bound or explain the target (summary)
        targets.append(t)

    g = GROUP_BASE
    for e in ENGINES:
        target(g, "SDK p2p round trip (%s, 64 B) vs raw ping-pong" % e,
               ratio("p2p.%s.rtt.64B" % e, "raw.pingpong.64B.rtt"), "<=", 1.3, "x",
               "p2p.%s.rtt.64B" % e, "raw.pingpong.64B.rtt")
    for e in ENGINES:
        target(g, "SDK streaming 64 B (%s) vs raw one-WriteFile-per-message" % e,
               ratio("p2p.%s.stream.64B.msgs" % e, "raw.stream.64B.msgs"), ">=", 20, "x",
               "p2p.%s.stream.64B.msgs" % e, "raw.stream.64B.msgs")
    target(g, "broker req/rep round trip vs raw ping-pong (64 B)",
           ratio("broker.reqrep.rtt.64B", "raw.pingpong.64B.rtt"), "<=", 2.5, "x",
           "broker.reqrep.rtt.64B", "raw.pingpong.64B.rtt")
    target(g, "broker pub/sub 1->1 64 B vs raw one-WriteFile-per-message",
           ratio("broker.pubsub.1to1.64B.msgs", "raw.stream.64B.msgs"), ">=", 10, "x",
           "broker.pubsub.1to1.64B.msgs", "raw.stream.64B.msgs")
    target(g, "broker pub/sub 1->16 aggregate, slow subscriber present, vs raw",
           ratio("broker.pubsub.1to16.64B.slow.msgs", "raw.stream.64B.msgs"), ">=", 5, "x",
           "broker.pubsub.1to16.64B.slow.msgs", "raw.stream.64B.msgs")
    target(g, "broker 1 MiB payloads vs raw 1 MiB MB/s",
           ratio("broker.pubsub.1to1.1MiB.mbs", "raw.stream.1MiB.mbs"), ">=", 0.4, "x",
           "broker.pubsub.1to1.1MiB.mbs", "raw.stream.1MiB.mbs")
    target(g, "broker private memory per idle client", med("broker.idle.mem_per_client"), "<=",
           32, "KiB", "broker.idle.mem_per_client", None)
    for sc in ["exact.10", "exact.100k", "wildcard.10", "wildcard.100k", "fanout.16"]:
        v = med("core.%s.pubs" % sc)
        target(g, "native core routed publications/s (%s)" % sc, v / 1e6 if v else None, ">=",
               2.0, "M/s", "core.%s.pubs" % sc, None)
    for k in ["exact", "wildcard"]:
        target(g, "native core %s: 10-subscription rate / 100k-subscription rate" % k,
               ratio("core.%s.10.pubs" % k, "core.%s.100k.pubs" % k), "<=", 2.0, "x",
               "core.%s.100k.pubs" % k, "core.%s.10.pubs" % k)
    a1, a16 = med("core.fanout.1.allocs_per_pub"), med("core.fanout.16.allocs_per_pub")
    target(g, "native core heap allocations per message per subscriber (fan-out 1 vs 16)",
           (a16 - a1) / 15 if a1 is not None and a16 is not None else None, "<=", 0, "allocs",
           "core.fanout.16.allocs_per_pub", "core.fanout.1.allocs_per_pub")

    # Large payloads at pipe speed. One-way stream, same size on both sides,
    # so the ratio of messages/s is the ratio of MB/s.
    g = GROUP_LARGE
    for s in ["64KiB", "1MiB"]:
        for e in ENGINES:
            ours = "p2p.%s.stream.%s.msgs" % (e, s)
            target(g, "SDK p2p one-way %s (%s) vs raw one-WriteFile-per-message" % (s, e),
                   ratio(ours, "raw.stream.%s.msgs" % s), ">=", 0.9, "x", ours,
                   "raw.stream.%s.msgs" % s)
            target(g, "SDK p2p one-way %s (%s) vs nng pair1 one-way" % (s, e),
                   ratio(ours, "nng.pair.stream.%s.msgs" % s), ">=", 1.0, "x", ours,
                   "nng.pair.stream.%s.msgs" % s)
    target(g, "broker pub/sub 1->1 1MiB vs nng pub/sub 1->1",
           ratio("broker.pubsub.1to1.1MiB.msgs", "nng.pubsub.1to1.1MiB.msgs"), ">=", 1.0, "x",
           "broker.pubsub.1to1.1MiB.msgs", "nng.pubsub.1to1.1MiB.msgs", why_relay(fig))

    # Shared memory (issue 13 item 3): the default p2p rows use it above the threshold; the
    # "inline" rows are the same runs with AIPC_PIPE_OPT_SHM = AIPC_SHM_OFF on both ends; the
    # "zc" rows the same round trip through the zero-copy API (aipc_pipe_alloc/send_buf,
    # aipc_pipe_set_recv_ref), against the ordinary 64 B round trip of the same run.
    g = GROUP_SHM
    for e in ENGINES:
        ours = "p2p.%s.stream.1MiB.mbs" % e
        target(g, "SDK p2p one-way 1 MiB shared (%s) vs raw one-WriteFile-per-message" % e,
               ratio(ours, "raw.stream.1MiB.mbs"), ">=", 3.0, "x", ours, "raw.stream.1MiB.mbs")
        target(g, "SDK p2p one-way 1 MiB shared vs inline (%s)" % e,
               ratio(ours, "p2p.%s.inline.stream.1MiB.mbs" % e), ">=", 1.0, "x", ours,
               "p2p.%s.inline.stream.1MiB.mbs" % e)
        target(g, "SDK p2p round trip 1 MiB shared vs 64 B (%s)" % e,
               ratio("p2p.%s.rtt.1MiB" % e, "p2p.%s.rtt.64B" % e), "<=", 2.0, "x",
               "p2p.%s.rtt.1MiB" % e, "p2p.%s.rtt.64B" % e, why_copies(fig, e))
        target(g, "SDK p2p round trip 1 MiB zero-copy vs 64 B (%s)" % e,
               ratio("p2p.%s.zc.rtt.1MiB" % e, "p2p.%s.rtt.64B" % e), "<=", 2.0, "x",
               "p2p.%s.zc.rtt.1MiB" % e, "p2p.%s.rtt.64B" % e)
        # the same against the 64 B round trip of the zero-copy pass, whose repetitions
        # alternate with the 1 MiB ones (neighbouring moments of a loaded machine)
        target(g, "SDK p2p round trip 1 MiB zero-copy vs 64 B, same pass (%s)" % e,
               ratio("p2p.%s.zc.rtt.1MiB" % e, "p2p.%s.zc.rtt.64B" % e), "<=", 2.0, "x",
               "p2p.%s.zc.rtt.1MiB" % e, "p2p.%s.zc.rtt.64B" % e)

    # The broker's shared path: SDK bus clients, shared memory allowed (the default rows).
    g = GROUP_BUS_SHM
    for e, label in BUS_ENGINES:
        for n, limit, what in [(1, 2.0, "1->1"), (16, 10.0, "1->16 aggregate")]:
            ours = "bus.pubsub.1to%d.1MiB.%s.mbs" % (n, e)
            target(g, "broker %s 1 MiB, bus clients (%s), vs raw 1 MiB MB/s" % (what, label),
                   ratio(ours, "raw.stream.1MiB.mbs"), ">=", limit, "x", ours,
                   "raw.stream.1MiB.mbs", why_fanout(fig, e) if n == 16 else None)
    return targets


# What bounds or explains a target, computed from the same run (printed under a target the
# summary lists as not met; the method part of the doc says why these are the bounds).

def why_relay(fig):
    """Broker vs nng's direct pub/sub: a broker forwards every byte through a second pipe; the
    raw relay (no broker logic, fixed buffers) is the floor of that path."""
    floor = fig.ratio("raw.relay.1MiB.mbs", "nng.pubsub.1to1.1MiB.mbs")
    ours = fig.ratio("broker.pubsub.1to1.1MiB.mbs", "raw.relay.1MiB.mbs")
    if floor is None:
        return None
    return ("the raw relay (raw pipe -> one-thread relay, no broker logic -> raw pipe) reached "
            "%sx nng's direct pub/sub MB/s in this run%s; the broker reached %sx the relay" % (
                fmt(floor), " (its floor is below the target)" if floor < 1.0 else "",
                fmt(ours)))


def why_copies(fig, e):
    """The copying 1 MiB round trip against the zero-copy one of the same run: the difference
    is the three extra copies of SendData/OnRecv."""
    cp, zc = fig.med("p2p.%s.rtt.1MiB" % e), fig.med("p2p.%s.zc.rtt.1MiB" % e)
    small = fig.med("p2p.%s.rtt.64B" % e)
    if cp is None or zc is None or not small:
        return None
    return ("the zero-copy 1 MiB round trip of this run took %s us (%sx the 64 B one): the "
            "copying one's %s us more are its three extra 1 MiB copies" % (
                fmt(zc), fmt(zc / small), fmt(cp - zc)))


def why_fanout(fig, e):
    """1->16 against 1->1 (aggregate MB/s): how much of the 16x a free fan-out would give."""
    g = fig.ratio("bus.pubsub.1to16.1MiB.%s.mbs" % e, "bus.pubsub.1to1.1MiB.%s.mbs" % e)
    if g is None:
        return None
    return ("1->16 delivered %sx the 1->1 aggregate MB/s in this run (16x if each subscriber "
            "cost nothing)" % fmt(g))


def bus_shm_path(r):
    """Which path a bench_bus 1 MiB row took: 'shared' (every publication through the broker's
    fan-out slots), 'inline', 'partly shared (S of N)', or 'unknown' (the broker has no
    shm_publications counter)."""
    if not r or r.get("shm_publications") is None:
        return "n/a"
    s, n = r["shm_publications"], r.get("publications")
    if s < 0:
        return "inline (the broker counts no shared publications)"
    if s == 0:
        return "inline"
    if n is not None and s >= n:
        return "shared"
    return "partly shared (%d of %s)" % (s, n)


def verdict(t):
    return "n/a" if t["met"] is None else ("yes" if t["met"] else "**NO**")


def measured(t):
    return "n/a" if t["measured"] is None else ("%.3g %s" % (t["measured"], t["unit"]))


def required(t):
    return "%s %g %s" % (t["op"], t["limit"], t["unit"])


def target_tables(targets):
    L = []
    for group in GROUPS:
        rows = [t for t in targets if t.get("group", GROUP_BASE) == group]
        if not rows:
            continue
        L.append("## %s\n" % group)
        L.append("| target | measured | required | met |")
        L.append("| --- | --- | --- | --- |")
        for t in rows:
            L.append("| %s | %s | %s | %s |" % (t["target"], measured(t), required(t), verdict(t)))
        L.append("")
    return L


def spread(res):
    """max/min of the repetitions of every Wine figure (the native core excluded): (median
    spread, worst spread, its figure), or None."""
    s = sorted((r["max"] / r["min"], name) for name, r in res.items()
               if r.get("program") != "bench_core" and r.get("min") and r.get("max"))
    if not s:
        return None
    return s[len(s) // 2][0], s[-1][0], s[-1][1]


def summary(targets, res, failures):
    """The findings of this run, each sentence computed from the figures and verdicts."""
    L = ["## Summary\n"]
    for group in GROUPS:
        rows = [t for t in targets if t.get("group", GROUP_BASE) == group]
        if not rows:
            continue
        met = [t for t in rows if t["met"] is True]
        missed = [t for t in rows if t["met"] is False]
        na = [t for t in rows if t["met"] is None]
        L.append("- %s: %d of %d met%s%s." % (
            group, len(met), len(rows), ", %d not met" % len(missed) if missed else "",
            ", %d not measured" % len(na) if na else ""))
        for t in missed:
            L.append("  - not met: %s (measured %s, required %s)" % (t["target"], measured(t),
                                                                  required(t)))
            if t.get("why"):
                L.append("    - same run: %s." % t["why"])
        for t in na:
            L.append("  - not measured: %s" % t["target"])
        if group == GROUP_BUS_SHM:
            for t in rows:
                path = bus_shm_path(res.get(t["figure"]))
                if path not in ("shared", "n/a"):
                    L.append("  - %s went %s, not through shared memory." % (t["figure"], path))
    sp = spread(res)
    if sp:
        L.append("- Spread of the repetitions (max/min) over the Wine figures: %sx for the median "
                 "figure, %sx at worst (%s)." % (fmt(sp[0]), fmt(sp[1]), sp[2]))
    if failures:
        L.append("- %d benchmark program(s) could not measure: %s (see Failures)." % (
            len(failures), ", ".join(f["program"] for f in failures)))
    L.append("")
    return L


def times(r):
    return "n/a" if r is None else fmt(r) + "x"


def bus_shm_table(fig):
    """SDK bus clients through the broker at 1 MiB: shared memory allowed (default) and off
    (inline), 1 and 16 subscribers, every figure against raw 1 MiB from the same run."""
    res, ratio = fig.res, fig.ratio
    if not any(k.startswith("bus.pubsub.1to") and ".1MiB." in k for k in res):
        return []
    L = ["## Broker shared memory (SDK bus clients, 1 MiB, same run)\n",
         "MB/s of payload delivered, summed over the subscribers. \"Allowed\" is the default "
         "(clients offer shared memory, the broker uses it when it can); \"off\" sets "
         "`shm = AIPC_SHM_OFF` on every client. Path: what the broker's `shm_publications` "
         "counter says the allowed run took. \"Zero-copy\" rows are the allowed runs through "
         "the zero-copy API (`aipc_bus_alloc` / `aipc_bus_publish_buf`, subscribers on "
         "`on_message_buf`); their last column is zero-copy / off.\n",
         "| publications | engine | allowed MB/s (x raw) | path | off MB/s (x raw) | "
         "allowed / off |",
         "| --- | --- | --- | --- | --- | --- |"]
    raw = "raw.stream.1MiB.mbs"
    for n in [1, 16]:
        for e, label in BUS_ENGINES:
            on = "bus.pubsub.1to%d.1MiB.%s.mbs" % (n, e)
            off = "bus.pubsub.1to%d.1MiB.%s.inline.mbs" % (n, e)
            L.append("| 1->%d | %s | %s (%s) | %s | %s (%s) | %s |" % (
                n, label, cell(res.get(on)), times(ratio(on, raw)), bus_shm_path(res.get(on)),
                cell(res.get(off)), times(ratio(off, raw)), times(ratio(on, off))))
            zc = "bus.pubsub.1to%d.1MiB.%s.zc.mbs" % (n, e)
            if zc in res:
                L.append("| 1->%d zero-copy | %s | %s (%s) | %s | %s (%s) | %s |" % (
                    n, label, cell(res.get(zc)), times(ratio(zc, raw)), bus_shm_path(res.get(zc)),
                    cell(res.get(off)), times(ratio(off, raw)), times(ratio(zc, off))))
    L.append("")
    return L


def tables(fig, env, targets, failures):
    """The whole results part: summary, environment, targets, figures (also printed)."""
    res, med, ratio = fig.res, fig.med, fig.ratio
    sizes, engines = SIZES, ENGINES
    L = []
    L.extend(summary(targets, res, failures))
    L.append("## Environment\n")
    for k in ["date", "cpu", "cores", "wine", "kernel", "os", "load_before", "load_after",
              "duration_s", "commit"]:
        if k in env:
            L.append("- %s: %s" % (k.replace("_", " "), env[k]))
    L.append("")
    reps = sorted({r["reps"] for r in res.values()})
    L.append("Every figure: median of %s repetitions (min..max in brackets). Ratios are ratios of "
             "medians to a baseline measured in the same run.\n" % "/".join(str(n) for n in reps))

    L.extend(target_tables(targets))

    L.append("## Point-to-point (two processes)\n")
    L.append("| size | raw ping-pong RTT us | " + " | ".join(
        "SDK %s RTT us (ratio)" % e for e in engines) + " |")
    L.append("| --- | --- | " + " | ".join("---" for _ in engines) + " |")
    for s in sizes:
        row = [s, cell(res.get("raw.pingpong.%s.rtt" % s))]
        for e in engines:
            r = ratio("p2p.%s.rtt.%s" % (e, s), "raw.pingpong.%s.rtt" % s)
            row.append("%s (%sx)" % (cell(res.get("p2p.%s.rtt.%s" % (e, s))), fmt(r)))
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append("| size | raw 1 WriteFile/msg: msg/s, MB/s | " + " | ".join(
        "SDK %s one-way msg/s (ratio), MB/s" % e for e in engines) + " |")
    L.append("| --- | --- | " + " | ".join("---" for _ in engines) + " |")
    for s in sizes:
        row = [s, "%s, %s" % (cell(res.get("raw.stream.%s.msgs" % s)),
                              fmt(med("raw.stream.%s.mbs" % s)))]
        for e in engines:
            r = ratio("p2p.%s.stream.%s.msgs" % (e, s), "raw.stream.%s.msgs" % s)
            row.append("%s (%sx), %s" % (cell(res.get("p2p.%s.stream.%s.msgs" % (e, s))), fmt(r),
                                         fmt(med("p2p.%s.stream.%s.mbs" % (e, s)))))
        L.append("| " + " | ".join(row) + " |")
    L.append("")

    L.append("## Broker (asyncipc-broker.exe, separate process; raw-protocol clients)\n")
    L.append("| figure | value | ratio to baseline |")
    L.append("| --- | --- | --- |")
    rows = [
        ("req/rep round trip, 64 B (us)", "broker.reqrep.rtt.64B", "raw.pingpong.64B.rtt"),
        ("pub/sub 1->1, 64 B (msg/s delivered)", "broker.pubsub.1to1.64B.msgs",
         "raw.stream.64B.msgs"),
        ("pub/sub 1->16, 64 B (msg/s delivered, aggregate)", "broker.pubsub.1to16.64B.msgs",
         "raw.stream.64B.msgs"),
        ("pub/sub 1->16 + 1 slow subscriber, 64 B (msg/s to the 16)",
         "broker.pubsub.1to16.64B.slow.msgs", "raw.stream.64B.msgs"),
        ("pub/sub 1->1, 1 MiB (MB/s)", "broker.pubsub.1to1.1MiB.mbs", "raw.stream.1MiB.mbs"),
        ("pub/sub 1->1, 1 MiB, against the raw relay (MB/s)", "broker.pubsub.1to1.1MiB.mbs",
         "raw.relay.1MiB.mbs"),
        ("raw relay, 1 MiB: raw pipe -> one-thread relay process -> raw pipe (MB/s; the floor "
         "for a broker with one I/O thread)", "raw.relay.1MiB.mbs", "raw.stream.1MiB.mbs"),
        ("private memory per idle client (KiB)", "broker.idle.mem_per_client", None),
        ("touched (RSS) memory per idle client (KiB)", "broker.idle.rss_per_client", None),
        ("time to connect 1,000 clients (s)", "broker.idle.connect_time", None),
        ("SDK bus clients pub/sub 1->1, 64 B, PIPE_ASYNC (msg/s delivered)",
         "bus.pubsub.1to1.64B.apc.msgs", "raw.stream.64B.msgs"),
        ("SDK bus clients pub/sub 1->1, 64 B, PIPE_OVERLAPPED (msg/s delivered)",
         "bus.pubsub.1to1.64B.iocp.msgs", "raw.stream.64B.msgs"),
    ]
    for label, name, base in rows:
        r = ratio(name, base) if base else None
        L.append("| %s | %s | %s |" % (label, cell(res.get(name)),
                                       ("%sx %s" % (fmt(r), base)) if base else ""))
    slow = res.get("broker.pubsub.1to16.64B.slow.msgs")
    if slow:
        L.append("")
        L.append("Slow subscriber run: the broker dropped %s publications for the slow "
                 "subscriber (it received %s); the 16 fast subscribers lost none (checked by "
                 "sequence number)." % (slow.get("slow_dropped"), slow.get("slow_received")))
    mem = res.get("broker.idle.mem_per_client")
    if mem:
        L.append("")
        L.append("Memory source: %s." % mem.get("source"))
    L.append("")

    L.extend(bus_shm_table(fig))
    L.extend(nng_tables(res, med, ratio, sizes, engines))

    L.append("## Native broker core (Linux, no I/O, one core)\n")
    L.append("| scenario | publications/s | deliveries/s | heap allocations per publication |")
    L.append("| --- | --- | --- | --- |")
    for sc in ["exact.10", "exact.100k", "wildcard.10", "wildcard.100k", "fanout.1", "fanout.16"]:
        L.append("| %s | %s | %s | %s |" % (sc, cell(res.get("core.%s.pubs" % sc)),
                                            cell(res.get("core.%s.deliveries" % sc)),
                                            fmt(med("core.%s.allocs_per_pub" % sc))))
    L.append("")
    if failures:
        L.append("## Failures\n")
        for f in failures:
            L.append("- %s exited with %s (see build/bench/%s.log)" % (f["program"], f["exit_code"],
                                                                     f["program"]))
        L.append("")
    return "\n".join(L)


def main(argv):
    if len(argv) == 4 and argv[1] == "--json":
        data = json.load(open(argv[2]))
        res, env, failures = data["results"], data.get("environment", {}), data.get("failures", [])
        out_json = None
    elif len(argv) == 3 and not argv[1].startswith("-"):
        res, failures = load(argv[1])
        env = json.load(open(os.path.join(argv[1], "env.json")))
        out_json = os.path.join(argv[1], "results.json")
    else:
        sys.stderr.write(__doc__)
        return 2
    doc = argv[-1]
    fig = Figures(res)
    targets = compute_targets(fig)
    if out_json:
        data = {"environment": env, "results": res, "targets": targets, "failures": failures}
        with open(out_json, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
    table = tables(fig, env, targets, failures)
    print(table)

    # ---- docs/performance.md: the method (fixed text) + the results of this run -------------
    intro_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "performance-intro.md")
    intro = open(intro_path).read() if os.path.exists(intro_path) else "# Performance\n"
    with open(doc, "w") as f:
        f.write(intro.rstrip() + "\n\n# Results of the latest run\n\n" + table + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
