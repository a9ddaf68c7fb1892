#!/usr/bin/env bash
# The main job: set up, build the Windows product (build/win), then run the example programs
# under Wine, printing every message as it goes:
#   1. C server (overlapped engine)  + C client (APC engine)
#   2. C++ server (APC engine)       + C++ client (overlapped engine)
#   0. first of all: asyncipc-broker.exe with bus clients exchanging pub/sub and request/reply
#      traffic (examples/bus subscriber/responder and publisher/requester, aipc.exe)
# Each client sends messages, the server echoes them, the client checks every echo and exits 0;
# the server (--once) exits when its client leaves. Every step is bounded by a timeout; the
# script exits non-zero if anything fails and stops the prefix's wineserver at the end.
# Overrides (optional): AIPC_BUILD_DIR (default build/win), WINEPREFIX (default build/wineprefix),
# AIPC_DEMO_COUNT (messages per client, default 5).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build="${AIPC_BUILD_DIR:-build/win}"
count="${AIPC_DEMO_COUNT:-5}"

bash tools/setup.sh || { echo "demo: setup failed" >&2; exit 1; }
export WINEPREFIX="${WINEPREFIX:-$top/build/wineprefix}" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT

echo "== demo: configure + build ($build)"
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake >"$build.demo-cmake.log" 2>&1 \
  || { cat "$build.demo-cmake.log"; exit 1; }
cmake --build "$build" -j2 --target aipc-example-server aipc-example-client \
      aipc-example-server-cpp aipc-example-client-cpp asyncipc-broker aipc bus_publisher \
      bus_subscriber >"$build.demo-build.log" 2>&1 \
  || { tail -40 "$build.demo-build.log"; exit 1; }
bin="$top/$build/bin"
[ -d "$bin" ] || bin="$build/bin"
# One persistent wineserver for the whole demo (the EXIT trap ends it), with the prefix's own
# processes started on /dev/null so they do not hold on to this script's output.
wineserver -p </dev/null >/dev/null 2>&1 || true
"$top/tools/wine-run" cmd.exe /c exit </dev/null >/dev/null 2>&1 || true

# run_pair TITLE SERVER_EXE SERVER_ENGINE CLIENT_EXE CLIENT_ENGINE PIPE
run_pair() {
  local title=$1 srv=$2 srv_engine=$3 cli=$4 cli_engine=$5 pipe=$6 srv_pid srv_rc cli_rc
  echo
  echo "== demo: $title (server: $srv_engine, client: $cli_engine, pipe $pipe)"
  timeout 90 "$top/tools/wine-run" "$bin/$srv.exe" --engine "$srv_engine" --pipe "$pipe" --once &
  srv_pid=$!
  # The client waits (up to --timeout ms) for the server's pipe to appear.
  timeout 90 "$top/tools/wine-run" "$bin/$cli.exe" --engine "$cli_engine" --pipe "$pipe" \
          --count "$count" --timeout 30000
  cli_rc=$?
  wait "$srv_pid"
  srv_rc=$?
  if [ "$cli_rc" != 0 ] || [ "$srv_rc" != 0 ]; then
    echo "demo: $title FAILED (client exit $cli_rc, server exit $srv_rc)" >&2
    return 1
  fi
  echo "== demo: $title OK"
}

# run_bus: the broker with several bus clients - a subscriber/responder (examples/bus), a
# publisher/requester (examples/bus), and aipc.exe publishing, requesting and reading stats.
run_bus() {
  local pipe="asyncipc.demo.bus.$$" w="$top/tools/wine-run" brk sub rc=0
  echo
  echo "== demo: broker + bus clients (pipe $pipe)"
  timeout 120 "$w" "$bin/asyncipc-broker.exe" run --pipe "$pipe" &
  brk=$!
  # aipc waits up to --connect-timeout for the broker's pipe to appear.
  timeout 60 "$w" "$bin/aipc.exe" ping --pipe "$pipe" --connect-timeout 30000 || rc=1
  # The subscriber/responder: prints every publication on example/# and who joins or leaves;
  # exits after 6 publications (5 from the publisher, 1 from aipc).
  timeout 90 "$w" "$bin/bus_subscriber.exe" --pipe "$pipe" --count 6 &
  sub=$!
  # Wait (bounded) until the responder answers: it is then subscribed too.
  local i
  for i in $(seq 1 60); do
    timeout 20 "$w" "$bin/aipc.exe" req example-svc "time? (from aipc)" --pipe "$pipe" --timeout 1000 \
      2>/dev/null && break
    [ "$i" = 60 ] && { echo "demo: the responder never answered" >&2; rc=1; }
  done
  timeout 60 "$w" "$bin/bus_publisher.exe" --pipe "$pipe" --count 5 || rc=1
  timeout 30 "$w" "$bin/aipc.exe" pub example/note "hello from aipc.exe" --pipe "$pipe" || rc=1
  wait "$sub" || rc=1
  echo "-- broker stats:"
  timeout 30 "$w" "$bin/aipc.exe" stats --pipe "$pipe" || rc=1
  echo
  kill "$brk" 2>/dev/null; wait "$brk" 2>/dev/null
  if [ $rc != 0 ]; then echo "demo: broker + bus clients FAILED" >&2; return 1; fi
  echo "== demo: broker + bus clients OK"
}

status=0
run_bus || status=1
run_pair "C server + C client" aipc-example-server overlapped aipc-example-client async \
         "asyncipc.demo.c.$$" || status=1
run_pair "C++ server + C++ client" aipc-example-server-cpp async aipc-example-client-cpp overlapped \
         "asyncipc.demo.cpp.$$" || status=1
echo
if [ $status = 0 ]; then echo "demo: OK"; else echo "demo: FAILED" >&2; fi
exit $status
