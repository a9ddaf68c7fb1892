#!/usr/bin/env bash
# tools/bench.sh - builds and runs every benchmark (bench/): the Windows ones under Wine (raw
# Win32 pipe baselines, SDK point-to-point, broker, the same figures with nng) and the native broker-core one, then prints
# the table and writes build/bench/results.json and docs/performance.md.
# Speed is never pass/fail: the exit code is non-zero only if a bench could not measure
# (lost messages, timeouts, build failure). Bounded: every program runs under a timeout.
#   usage: tools/bench.sh            (WINEPREFIX defaults to build/wp-bench)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=build/bench
win=$out/win
nat=$out/native
export WINEPREFIX="${WINEPREFIX:-$top/build/wp-bench}"
export WINEDEBUG="${WINEDEBUG:--all}"
mkdir -p "$out"
rm -f "$out"/*.log "$out"/*.rc
start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

[ -d build/deps/mingw ] || bash tools/setup.sh || { echo "bench: setup failed" >&2; exit 1; }
# nng, for the comparison rows only (CI's tools/test.sh does not build it); ~2 min the first time.
bash tools/setup-nng.sh || { echo "bench: building nng failed" >&2; exit 1; }

echo "== building (Windows: $win, native: $nat)"
cmake -S . -B "$win" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake -DCMAKE_BUILD_TYPE=Release \
      -DBUILD_TESTING=OFF >"$out/build-win.txt" 2>&1 &&
cmake --build "$win" -j2 --target asyncipc asyncipc-broker bench_raw bench_p2p bench_broker bench_bus bench_nng \
      >>"$out/build-win.txt" 2>&1 || { echo "bench: Windows build failed (see $out/build-win.txt)" >&2; exit 1; }
cmake -S bench -B "$nat" -DCMAKE_BUILD_TYPE=Release >"$out/build-native.txt" 2>&1 &&
cmake --build "$nat" -j2 --target bench_core >>"$out/build-native.txt" 2>&1 ||
    { echo "bench: native build failed (see $out/build-native.txt)" >&2; exit 1; }

# run NAME TIMEOUT_S COMMAND... : stdout to $out/NAME.log, exit code to $out/NAME.rc
run() {
    local name=$1 t=$2; shift 2
    echo "== $name"
    timeout -k 5 "$t" "$@" >"$out/$name.log" 2>"$out/$name.err"
    local rc=$?
    echo "$rc" >"$out/$name.rc"
    grep '^RESULT' "$out/$name.log" | sed 's/^RESULT /   /' | cut -c1-150
    [ "$rc" = 0 ] || { echo "   FAILED (exit $rc):"; tail -3 "$out/$name.err" | sed 's/^/   /'; }
}

tools/wine-run cmd /c exit 0 >/dev/null 2>&1    # creates the prefix on first use (not timed)
run bench_raw 120 tools/wine-run "$win/bin/bench_raw.exe"
run bench_p2p 360 tools/wine-run "$win/bin/bench_p2p.exe"   # + the inline (shm off) 1 MiB rows
run bench_broker 240 tools/wine-run "$win/bin/bench_broker.exe"
# + 1 MiB to 1 and 16 bus clients, shared memory allowed and off (the broker's shared path)
run bench_bus_apc 180 tools/wine-run "$win/bin/bench_bus.exe" apc
run bench_bus_iocp 180 tools/wine-run "$win/bin/bench_bus.exe" iocp
run bench_nng 240 tools/wine-run "$win/bin/bench_nng.exe"
wineserver -k 2>/dev/null
run bench_core 120 "$nat/bench_core"

end=$(date +%s)
python3 - "$out/env.json" "$start" "$end" "$load_before" <<'PY'
import json, os, platform, subprocess, sys, time
path, start, end, load_before = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
cpu = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
osname = ""
if os.path.exists("/etc/os-release"):
    for line in open("/etc/os-release"):
        if line.startswith("PRETTY_NAME="):
            osname = line.split("=", 1)[1].strip().strip('"')
env = {
    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(end)),
    "cpu": cpu or platform.processor(),
    "cores": os.cpu_count(),
    "wine": sh("wine --version 2>/dev/null"),
    "kernel": platform.release(),
    "os": osname,
    "load_before": load_before,
    "load_after": " ".join(open("/proc/loadavg").read().split()[:3]),
    "duration_s": end - start,
    "commit": sh("git rev-parse --short HEAD"),
    "compiler": sh("x86_64-w64-mingw32-gcc --version | head -1"),
}
json.dump(env, open(path, "w"), indent=2)
PY
echo
python3 bench/report.py "$out" docs/performance.md
rc=$?
echo
echo "bench: wrote $out/results.json and docs/performance.md ($(( end - start )) s)"
exit $rc
