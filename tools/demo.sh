#!/usr/bin/env bash
# The main job: set up, build the Windows product (build/win), then run the example programs
# under Wine, printing every message as it goes:
#   1. C server (overlapped engine)  + C client (APC engine)
#   2. C++ server (APC engine)       + C++ client (overlapped engine)
#   0. first of all: asyncipc-broker.exe with bus clients exchanging pub/sub and request/reply
#      traffic (examples/bus subscriber/responder and publisher/requester, aipc.exe)
#   3. last: two gui_chat.exe windows (examples/gui) chatting over a pipe and through a broker,
#      every SDK callback on their UI thread; under xvfb-run (or on $DISPLAY), skipped without
#      either
# Each client sends messages, the server echoes them, the client checks every echo and exits 0;
# the server (--once) exits when its client leaves. Every step is bounded by a timeout; the
# script exits non-zero if anything fails and stops the prefix's wineserver at the end.
# Overrides (optional): AIPC_BUILD_DIR (default build/win), WINEPREFIX (default build/wineprefix),
# AIPC_GUI_WINEPREFIX (the GUI part's prefix, default build/wineprefix-gui), AIPC_DEMO_COUNT
# (messages per client, default 5).
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
      bus_subscriber gui_chat >"$build.demo-build.log" 2>&1 \
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

# run_gui: two gui_chat windows - alice (pipe server, overlapped engine) and bob (pipe client,
# APC engine) - each with a window dispatcher, chatting over a pipe and in the bus room
# chat/demo through their own broker. Each sends $count messages per link, waits for the
# other's, prints its window's transcript and closes itself (WM_CLOSE); both are bounded by
# --timeout. Windowed programs need an X display: everything runs under one xvfb-run (or on
# $DISPLAY), in a prefix of its own: Wine ties a prefix's desktop to the display of the process
# that started it, and in build/wineprefix the earlier parts (or a test run) may have started
# it without one.
run_gui() {
  local pipe="asyncipc.demo.gui.$$" bpipe="asyncipc.demo.gui-bus.$$" out="$build.demo-gui"
  local prefix="${AIPC_GUI_WINEPREFIX:-$top/build/wineprefix-gui}" rc=0 x=() summary
  echo
  echo "== demo: GUI chat, two gui_chat.exe windows (pipe $pipe, broker $bpipe)"
  if command -v xvfb-run >/dev/null 2>&1; then
    x=(xvfb-run -a)
  elif [ -z "${DISPLAY:-}" ]; then
    echo "demo: GUI chat skipped: no X display and no xvfb-run (bash tools/setup.sh installs xvfb)"
    return 0
  fi
  rm -f "$out.alice" "$out.bob"
  if [ ! -f "$prefix/system.reg" ]; then
    # First use: boot it to the end (wineboot returns early) before anything is timed.
    echo "demo: creating the GUI part's Wine prefix $prefix"
    mkdir -p "$prefix"
    WINEPREFIX="$prefix" timeout 300 wineboot --init </dev/null >/dev/null 2>&1
    WINEPREFIX="$prefix" timeout 300 wineserver -w
  fi
  # One X server for the broker and both windows; each program's output goes to a file of its
  # own so the two transcripts do not interleave. The wrapper prints one summary line and exits
  # non-zero if anything failed; its stderr (Xvfb, Wine) goes to a log.
  summary=$(WINEPREFIX="$prefix" "${x[@]}" bash -c '
    w=$1 bin=$2 pipe=$3 bpipe=$4 count=$5 out=$6 ok=1
    timeout 150 "$w" "$bin/asyncipc-broker.exe" run --pipe "$bpipe" >"$out.broker.log" 2>&1 &
    brk=$!
    timeout 60 "$w" "$bin/aipc.exe" ping --pipe "$bpipe" --connect-timeout 30000 >/dev/null || ok=0
    chat() { timeout 120 "$w" "$bin/gui_chat.exe" --pipe "$pipe" --broker "$bpipe" --room demo \
                     --auto "$count" --timeout 60000 "$@"; }
    chat --role server --engine overlapped --name alice >"$out.alice" 2>&1 &
    srv=$!
    chat --role client --engine async --name bob >"$out.bob" 2>&1
    cli=$?
    wait "$srv"
    srv=$?
    kill "$brk" 2>/dev/null; wait "$brk" 2>/dev/null
    wineserver -k 2>/dev/null   # this prefix: its desktop belongs to this X server
    echo "gui_chat alice (server) exit $srv, bob (client) exit $cli$([ $ok = 1 ] || echo ", broker did not answer")"
    [ $ok = 1 ] && [ "$srv" = 0 ] && [ "$cli" = 0 ]' gui-chat "$top/tools/wine-run" "$bin" "$pipe" \
            "$bpipe" "$count" "$out" 2>"$out.x.log") || rc=1
  cat "$out.alice" "$out.bob" 2>/dev/null
  echo "$summary"
  if [ $rc != 0 ]; then
    echo "demo: GUI chat FAILED (logs: $out.broker.log, $out.x.log)" >&2
    return 1
  fi
  echo "== demo: GUI chat OK"
}

status=0
run_bus || status=1
run_pair "C server + C client" aipc-example-server overlapped aipc-example-client async \
         "asyncipc.demo.c.$$" || status=1
run_pair "C++ server + C++ client" aipc-example-server-cpp async aipc-example-client-cpp overlapped \
         "asyncipc.demo.cpp.$$" || status=1
run_gui || status=1
echo
if [ $status = 0 ]; then echo "demo: OK"; else echo "demo: FAILED" >&2; fi
exit $status
