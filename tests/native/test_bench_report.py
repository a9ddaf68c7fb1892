#!/usr/bin/env python3
"""test_bench_report.py - bench/report.py decides every target and writes every result sentence
from the figures, so docs/performance.md cannot contradict itself.

  1. A run's logs (RESULT lines, exit codes, env.json) -> results.json + the doc: the
     large-payload rows (ours/raw >= 0.9x, ours/nng >= 1x, broker 1 MiB vs nng pub/sub) get the
     verdict their figures give, a missing figure is n/a, and the summary lists exactly the
     targets the tables mark not met.
  2. --json on that results.json reproduces the same doc without touching the JSON.
  3. The committed docs/performance.md agrees with itself (summary counts and lists vs tables),
     cites no internal issue (it is installed),
     and the method text before the results states no measured figure.
usage: test_bench_report.py SOURCE_DIR   (exit 0 when every check passes)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

top = sys.argv[1]
report = os.path.join(top, "bench", "report.py")
failures = 0


def check(what, ok):
    global failures
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures += 1


def result(name, median, program, unit="msg/s"):
    return {"name": name, "unit": unit, "median": median, "min": median * 0.9,
            "max": median * 1.2, "reps": 7}


def fixture(out):
    """Logs of a made-up run. Large payloads: async 64 KiB meets both ratios, overlapped 64 KiB
    misses both, 1 MiB p2p has no nng figure, the broker's 1 MiB beats nng pub/sub."""
    figures = {
        "bench_raw": [("raw.stream.64KiB.msgs", 1000.0), ("raw.stream.1MiB.msgs", 100.0),
                      ("raw.stream.64B.msgs", 10000.0), ("raw.pingpong.64B.rtt", 100.0),
                      ("raw.stream.1MiB.mbs", 100.0)],
        "bench_p2p": [("p2p.async.stream.64KiB.msgs", 950.0),
                      ("p2p.overlapped.stream.64KiB.msgs", 850.0),
                      ("p2p.async.stream.1MiB.msgs", 95.0),
                      ("p2p.overlapped.stream.1MiB.msgs", 80.0),
                      ("p2p.async.rtt.64B", 120.0), ("p2p.overlapped.rtt.64B", 140.0),
                      ("p2p.async.stream.64B.msgs", 300000.0),
                      ("p2p.overlapped.stream.64B.msgs", 300000.0)],
        "bench_broker": [("broker.pubsub.1to1.1MiB.msgs", 60.0),
                         ("broker.pubsub.1to1.1MiB.mbs", 60.0)],
        "bench_nng": [("nng.pair.stream.64KiB.msgs", 900.0),
                      ("nng.pubsub.1to1.1MiB.msgs", 50.0)],
    }
    for prog, rows in figures.items():
        with open(os.path.join(out, prog + ".log"), "w") as f:
            f.write("some other line\n")
            for name, v in rows:
                f.write("RESULT " + json.dumps(result(name, v, prog)) + "\n")
        with open(os.path.join(out, prog + ".rc"), "w") as f:
            f.write("0\n")
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump({"date": "test", "cores": 2, "load_before": "0 0 0", "commit": "test"}, f)


def targets_in_doc(text):
    """{target: verdict} from every targets table of a doc."""
    rows = {}
    for m in re.finditer(r"^\| (.+?) \| (.+?) \| ([<>]=.+?) \| (yes|\*\*NO\*\*|n/a) \|$", text, re.M):
        rows[m.group(1)] = m.group(4)
    return rows


def summary_of(text):
    s = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    missed = set(re.findall(r"^  - not met: (.+) \(measured .+, required .+\)$", s, re.M))
    unmeasured = set(re.findall(r"^  - not measured: (.+)$", s, re.M))
    counts = [tuple(int(x) for x in m) for m in re.findall(r"^- .+?: (\d+) of (\d+) met", s, re.M)]
    return missed, unmeasured, counts


def consistent(text, label):
    rows = targets_in_doc(text)
    missed, unmeasured, counts = summary_of(text)
    check("%s: targets tables found (%d rows)" % (label, len(rows)), len(rows) > 0)
    check("%s: the summary's not-met list is exactly the tables' NO rows" % label,
          missed == {t for t, v in rows.items() if v == "**NO**"})
    check("%s: the summary's not-measured list is exactly the tables' n/a rows" % label,
          unmeasured == {t for t, v in rows.items() if v == "n/a"})
    check("%s: the summary's met counts add up to the tables (%s)" % (label, counts),
          sum(c[0] for c in counts) == sum(1 for v in rows.values() if v == "yes")
          and sum(c[1] for c in counts) == len(rows))
    return rows


with tempfile.TemporaryDirectory() as out:
    fixture(out)
    doc = os.path.join(out, "performance.md")
    p = subprocess.run([sys.executable, report, out, doc], capture_output=True, text=True)
    check("report.py OUT_DIR DOC exits 0 (rc %d, %s)" % (p.returncode, p.stderr.strip()[-200:]),
          p.returncode == 0)
    data = json.load(open(os.path.join(out, "results.json")))
    check("results.json holds the figures and the targets",
          len(data["results"]) == 17 and len(data["targets"]) > 20)
    text = open(doc).read()
    check("the table printed is the doc's results part", p.stdout.strip() in text)
    rows = consistent(text, "fixture")
    want = {
        "SDK p2p one-way 64KiB (async) vs raw one-WriteFile-per-message": "yes",       # 0.95
        "SDK p2p one-way 64KiB (async) vs nng pair1 one-way": "yes",                   # 1.06
        "SDK p2p one-way 64KiB (overlapped) vs raw one-WriteFile-per-message": "**NO**",  # 0.85
        "SDK p2p one-way 64KiB (overlapped) vs nng pair1 one-way": "**NO**",           # 0.94
        "SDK p2p one-way 1MiB (async) vs raw one-WriteFile-per-message": "yes",        # 0.95
        "SDK p2p one-way 1MiB (overlapped) vs raw one-WriteFile-per-message": "**NO**",  # 0.8
        "SDK p2p one-way 1MiB (async) vs nng pair1 one-way": "n/a",
        "SDK p2p one-way 1MiB (overlapped) vs nng pair1 one-way": "n/a",
        "broker pub/sub 1->1 1MiB vs nng pub/sub 1->1": "yes",                          # 1.2
    }
    for t, v in want.items():
        check("%s: %s (got %s)" % (t, v, rows.get(t)), rows.get(t) == v)
    check("the large-payload rows have a table of their own",
          "## Targets: large payloads (same-run ratios)" in text)

    # A failed program: reported, exit code 1.
    with open(os.path.join(out, "bench_nng.rc"), "w") as f:
        f.write("124\n")
    p = subprocess.run([sys.executable, report, out, doc], capture_output=True, text=True)
    check("a program that could not measure makes report.py exit 1 (rc %d)" % p.returncode,
          p.returncode == 1)
    check("... and the summary says so", "could not measure: bench_nng" in open(doc).read())

    # Standalone: the same doc from results.json, which is only read.
    before = open(os.path.join(out, "results.json")).read()
    doc2 = os.path.join(out, "again.md")
    p = subprocess.run([sys.executable, report, "--json", os.path.join(out, "results.json"), doc2],
                       capture_output=True, text=True)
    check("report.py --json exits as the run did (rc %d)" % p.returncode, p.returncode == 1)
    check("--json writes the same doc", open(doc2).read() == open(doc).read())
    check("--json leaves results.json alone",
          open(os.path.join(out, "results.json")).read() == before)
    p = subprocess.run([sys.executable, report], capture_output=True, text=True)
    check("no arguments: usage, exit 2 (rc %d)" % p.returncode, p.returncode == 2)

# The broker's shared path (bench_bus 1 MiB rows): verdicts against raw 1 MiB, the path each
# default row took (broker shm_publications), the allowed/off table.
with tempfile.TemporaryDirectory() as out:
    fixture(out)
    bus = [("bus.pubsub.1to1.1MiB.apc.mbs", 250.0, 40, 40),          # 2.5x raw: met, shared
           ("bus.pubsub.1to16.1MiB.apc.mbs", 900.0, 30, 0),          # 9x raw: not met, inline
           ("bus.pubsub.1to1.1MiB.apc.inline.mbs", 50.0, 40, 0),
           ("bus.pubsub.1to16.1MiB.apc.inline.mbs", 120.0, 30, 0),
           ("bus.pubsub.1to16.1MiB.iocp.mbs", 1500.0, 30, 12),        # 15x raw: met, partly
           ("bus.pubsub.1to1.1MiB.apc.zc.mbs", 400.0, 40, 40)]        # zero-copy row: no target
    with open(os.path.join(out, "bench_bus_apc.log"), "w") as f:
        for name, v, pubs, shm in bus:
            r = result(name, v, "bench_bus_apc", "MB/s")
            r.update({"publications": pubs, "shm_publications": shm})
            f.write("RESULT " + json.dumps(r) + "\n")
    with open(os.path.join(out, "bench_bus_apc.rc"), "w") as f:
        f.write("0\n")
    doc = os.path.join(out, "performance.md")
    p = subprocess.run([sys.executable, report, out, doc], capture_output=True, text=True)
    check("bus rows: report.py exits 0 (rc %d)" % p.returncode, p.returncode == 0)
    text = open(doc).read()
    rows = consistent(text, "bus fixture")
    want = {
        "broker 1->1 1 MiB, bus clients (PIPE_ASYNC), vs raw 1 MiB MB/s": "yes",
        "broker 1->16 aggregate 1 MiB, bus clients (PIPE_ASYNC), vs raw 1 MiB MB/s": "**NO**",
        "broker 1->1 1 MiB, bus clients (PIPE_OVERLAPPED), vs raw 1 MiB MB/s": "n/a",
        "broker 1->16 aggregate 1 MiB, bus clients (PIPE_OVERLAPPED), vs raw 1 MiB MB/s": "yes",
    }
    for t, v in want.items():
        check("%s: %s (got %s)" % (t, v, rows.get(t)), rows.get(t) == v)
    check("the broker's shared-memory targets have a table of their own",
          "## Targets: shared memory through the broker (same-run ratios)" in text)
    check("the not-met 1->16 row shows its measured ratio (9 x)",
          "| broker 1->16 aggregate 1 MiB, bus clients (PIPE_ASYNC), vs raw 1 MiB MB/s | 9 x |"
          in text)
    summ = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    check("the summary says which default row went inline, and only that one",
          "bus.pubsub.1to16.1MiB.apc.mbs went inline, not through shared memory" in summ
          and "1to1.1MiB.apc.mbs went" not in summ
          and "bus.pubsub.1to16.1MiB.iocp.mbs went partly shared (12 of 30)" in summ)
    check("the allowed/off table: shared row with its ratios",
          "| 1->1 | PIPE_ASYNC | 250 (225..300) (2.50x) | shared | 50.0 (45.0..60.0) (0.50x) "
          "| 5.00x |" in text)
    check("the allowed/off table: the zero-copy row under its allowed row",
          "| 1->1 | PIPE_ASYNC | 250 (225..300) (2.50x) | shared | 50.0 (45.0..60.0) (0.50x) "
          "| 5.00x |\n| 1->1 zero-copy | PIPE_ASYNC | 400 (360..480) (4.00x) | shared | "
          "50.0 (45.0..60.0) (0.50x) | 8.00x |" in text)
    check("the allowed/off table: no zero-copy row without its figure",
          "| 1->16 zero-copy |" not in text and "| 1->1 zero-copy | PIPE_OVERLAPPED" not in text)
    check("the allowed/off table: a missing figure is n/a",
          "| 1->1 | PIPE_OVERLAPPED | n/a (n/a) | n/a | n/a (n/a) | n/a |" in text)

# A missed target carries the same-run figures that bound or explain it, under its summary line.
with tempfile.TemporaryDirectory() as out:
    fixture(out)
    rows = [("broker.pubsub.1to1.1MiB.msgs", 40.0, "bench_broker", "msg/s"),
            ("broker.pubsub.1to1.1MiB.mbs", 40.0, "bench_broker", "MB/s"),
            ("raw.relay.1MiB.mbs", 45.0, "bench_broker", "MB/s"),
            ("nng.pubsub.1to1.1MiB.msgs", 50.0, "bench_nng", "msg/s"),
            ("nng.pubsub.1to1.1MiB.mbs", 50.0, "bench_nng", "MB/s"),
            ("p2p.async.rtt.64B", 120.0, "bench_p2p", "us"),
            ("p2p.async.rtt.1MiB", 300.0, "bench_p2p", "us"),
            ("p2p.async.zc.rtt.1MiB", 150.0, "bench_p2p", "us"),
            ("bus.pubsub.1to1.1MiB.apc.mbs", 250.0, "bench_bus_apc", "MB/s"),
            ("bus.pubsub.1to16.1MiB.apc.mbs", 900.0, "bench_bus_apc", "MB/s")]
    for prog in sorted({r[2] for r in rows}):
        with open(os.path.join(out, prog + ".log"), "w") as f:
            for name, v, pr, unit in rows:
                if pr == prog:
                    f.write("RESULT " + json.dumps(result(name, v, prog, unit)) + "\n")
        with open(os.path.join(out, prog + ".rc"), "w") as f:
            f.write("0\n")
    doc = os.path.join(out, "performance.md")
    p = subprocess.run([sys.executable, report, out, doc], capture_output=True, text=True)
    check("why fixture: report.py exits 0 (rc %d)" % p.returncode, p.returncode == 0)
    text = open(doc).read()
    consistent(text, "why fixture")
    summ = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    lines = summ.splitlines()

    def under(target, words):
        """the line right after the target's not-met line holds every one of words"""
        i = next((k for k, l in enumerate(lines) if l.startswith("  - not met: " + target)), None)
        return (i is not None and i + 1 < len(lines) and lines[i + 1].startswith("    - same run:")
                and all(w in lines[i + 1] for w in words))
    check("broker vs nng missed: the relay's floor from the same run (0.90x nng, below the "
          "target; the broker 0.89x the relay)",
          under("broker pub/sub 1->1 1MiB vs nng pub/sub 1->1",
                ["reached 0.90x nng", "its floor is below the target", "0.89x the relay"]))
    check("copying round trip missed: the zero-copy one of the same run (150 us, 1.25x) and "
          "the difference (150 us)",
          under("SDK p2p round trip 1 MiB shared vs 64 B (async)",
                ["took 150 us (1.25x the 64 B one)", "150 us more"]))
    check("1->16 missed: its gain over 1->1 in the same run (3.60x)",
          under("broker 1->16 aggregate 1 MiB, bus clients (PIPE_ASYNC)", ["3.60x the 1->1"]))
    check("same-run lines only under the three missed targets that have one (%d)"
          % summ.count("    - same run:"), summ.count("    - same run:") == 3)

committed = open(os.path.join(top, "docs", "performance.md")).read()
consistent(committed, "docs/performance.md")
intro = open(os.path.join(top, "bench", "performance-intro.md")).read()
check("docs/performance.md starts with bench/performance-intro.md",
      committed.startswith(intro.rstrip()))
check("the page cites no project-internal issue or SPEC (it is installed with the docs)",
      not re.search(r"SPEC(\.md| section| [0-9])|\bissues? #?[0-9]|see issue", committed, re.I))
claims = re.findall(r"[^\n]*(?:\b\d[\d.,]*\s?(?:us|MB/s|msg/s|M/s)\b|\bmissed\b|\bFindings\b)[^\n]*",
                    intro)
check("the method text states no measured figure or verdict (%s)" % claims, not claims)

print("%d failure(s)" % failures)
sys.exit(1 if failures else 0)
