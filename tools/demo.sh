#!/usr/bin/env bash
# The main job: set up, build the Windows product (build/win), then run the example programs
# under Wine, printing every message as it goes:
#   1. C server (overlapped engine)  + C client (APC engine)
#   2. C++ server (APC engine)       + C++ client (overlapped engine)
#   0. first of all: asyncipc-broker.exe with named bus clients exchanging pub/sub and
#      request/reply traffic (examples/bus subscriber/responder and publisher/requester,
#      aipc.exe --name), in causal order, the stats as a table, the broker's log last
# Every line says which process printed it ([broker], [svc/sub], [alice/pub], [c/server], ...).
#   3. last: two gui_chat.exe windows (examples/gui) chatting over a pipe and through a broker,
#      every SDK callback on their UI thread; under xvfb-run (or on $DISPLAY), skipped without
#      either
# Each client sends messages, the server echoes them, the client checks every echo and exits 0;
# the server (--once) exits when its client leaves. Every step is bounded by a timeout; the
# script exits non-zero if anything fails and stops the prefix's wineserver at the end (not
# with AIPC_DEMO_PREBUILT).
# Overrides (optional): AIPC_BUILD_DIR (default build/win), WINEPREFIX (default build/wineprefix),
# AIPC_GUI_WINEPREFIX (the GUI part's prefix, default build/wineprefix-gui), AIPC_DEMO_COUNT
# (messages per client, default 5), AIPC_DEMO_PARTS (which parts, default "bus c cpp gui"),
# AIPC_DEMO_PREBUILT=1 (no set-up and no build: AIPC_BUILD_DIR is already built, and the prefix's
# wineserver belongs to the caller, which is left running: the test suite's way, win.demo).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build="${AIPC_BUILD_DIR:-build/win}"
count="${AIPC_DEMO_COUNT:-5}"

parts=" ${AIPC_DEMO_PARTS:-bus c cpp gui} "
prebuilt="${AIPC_DEMO_PREBUILT:-}"

[ -n "$prebuilt" ] || bash tools/setup.sh || { echo "demo: setup failed" >&2; exit 1; }
export WINEPREFIX="${WINEPREFIX:-$top/build/wineprefix}" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ -z "$prebuilt" ]; then
  trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
  echo "== demo: configure + build ($build)"
  cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake >"$build.demo-cmake.log" 2>&1 \
    || { cat "$build.demo-cmake.log"; exit 1; }
  cmake --build "$build" -j2 --target aipc-example-server aipc-example-client \
        aipc-example-server-cpp aipc-example-client-cpp asyncipc-broker aipc bus_publisher \
        bus_subscriber gui_chat >"$build.demo-build.log" 2>&1 \
    || { tail -40 "$build.demo-build.log"; exit 1; }
fi
case $build in /*) ;; *) build="$top/$build" ;; esac
bin="$build/bin"
if [ -z "$prebuilt" ]; then
  # One persistent wineserver for the whole demo (the EXIT trap ends it), with the prefix's own
  # processes started on /dev/null so they do not hold on to this script's output.
  wineserver -p </dev/null >/dev/null 2>&1 || true
fi
# The prefix up (created on first use) before anything is timed.
"$top/tools/wine-run" cmd.exe /c exit </dev/null >/dev/null 2>&1 || true

# run_pair TITLE SERVER_EXE SERVER_ENGINE CLIENT_EXE CLIENT_ENGINE PIPE TAG: the two processes'
# lines labelled [TAG/server] and [TAG/client], as they come.
run_pair() {
  local title=$1 srv=$2 srv_engine=$3 cli=$4 cli_engine=$5 pipe=$6 tag=$7 lab_pid srv_rc cli_rc
  local rcf="$build.demo-$tag-server.rc"
  echo
  echo "== demo: $title (server: $srv_engine, client: $cli_engine, pipe $pipe)"
  rm -f "$rcf"
  { timeout 90 "$top/tools/wine-run" "$bin/$srv.exe" --engine "$srv_engine" --pipe "$pipe" --once 2>&1
    echo $? >"$rcf"; } | label "$tag/server" &
  lab_pid=$!
  # The client waits (up to --timeout ms) for the server's pipe to appear.
  timeout 90 "$top/tools/wine-run" "$bin/$cli.exe" --engine "$cli_engine" --pipe "$pipe" \
          --count "$count" --timeout 30000 2>&1 | label "$tag/client"
  cli_rc=${PIPESTATUS[0]}
  wait "$lab_pid"      # the server has exited and all its lines are out
  srv_rc=$(cat "$rcf" 2>/dev/null || echo "?")
  if [ "$cli_rc" != 0 ] || [ "$srv_rc" != 0 ]; then
    echo "demo: $title FAILED (client exit $cli_rc, server exit $srv_rc)" >&2
    return 1
  fi
  echo "== demo: $title OK"
}

# ---- the bus part -------------------------------------------------------------------------------
# Every line a process prints is shown with a label saying which process (and which client name)
# printed it. The foreground steps run one after the other; the subscriber runs throughout and
# its lines are read from its own stream at the points where the story expects them (reads that
# block until the line arrives, bounded), so the transcript is in causal order. The broker's own
# log is its own section at the end.

# label TAG: copies stdin to stdout, each line prefixed with "[TAG]" (Windows "\r" removed).
label() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do printf '%-13s %s\n' "[$1]" "${line%$'\r'}"; done
}

# client TAG TIMEOUT EXE ARGS...: runs one client to completion, its command line (without the
# demo's --pipe) and then its output labelled; returns its exit code.
client() {
  local tag=$1 t=$2 shown a skip=
  shift 2
  shown=${1##*/}
  for a in "${@:2}"; do
    if [ -n "$skip" ]; then skip=; continue; fi
    if [ "$a" = --pipe ]; then skip=1; continue; fi
    [[ $a == *[' ?()']* ]] && a="\"$a\""
    shown+=" $a"
  done
  printf '%-13s > %s\n' "[$tag]" "$shown"
  timeout "$t" "$top/tools/wine-run" "$@" 2>&1 | label "$tag"
  return "${PIPESTATUS[0]}"
}

# expect_sub REGEX N: prints the subscriber's lines (label [svc/sub]) until N of them matched
# REGEX; N = 0: until its stream ends (its exit code is then in sub_rc). Fails when the stream
# ends first or a line takes more than 60 s.
expect_sub() {
  local re=$1 n=$2 seen=0 line
  while [ "$n" = 0 ] || [ "$seen" -lt "$n" ]; do
    if ! IFS= read -r -t 60 -u "$sub_fd" line; then
      echo "demo: the subscriber printed nothing matching '$re' for 60 s" >&2
      return 1
    fi
    line=${line%$'\r'}
    if [[ $line == "$sub_end "* ]]; then
      sub_rc=${line#"$sub_end "}
      [ "$n" = 0 ] && return 0
      echo "demo: the subscriber exited ($sub_rc) before printing '$re'" >&2
      return 1
    fi
    printf '%-13s %s\n' "[svc/sub]" "$line"
    [[ $line =~ $re ]] && seen=$((seen + 1))
  done
}

# stats_table: the broker's stats JSON (stdin) as a small table.
stats_table() {
  python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
rows = [("clients connected now / since start", "%s / %s" % (s["clients"], s["clients_total"])),
        ("subscriptions now", s["subscriptions"]),
        ("publications (incl. presence)", s["publications"]),
        ("deliveries to subscribers / dropped", "%s / %s" % (s["deliveries"], s["drops"])),
        ("frames in / out", "%s / %s" % (s["msgs_in"], s["msgs_out"])),
        ("bytes in / out", "%s / %s" % (s["bytes_in"], s["bytes_out"])),
        ("retained topics (bytes)", "%s (%s)" % (s["retained_topics"], s["retained_bytes"])),
        ("errors sent / denied", "%s / %s" % (s["errors"], s["denied"])),
        ("uptime", "%.1f s" % (s["uptime_ms"] / 1000.0))]
print("broker stats:")
for k, v in rows:
    print("  %-38s %s" % (k, v))' 2>/dev/null
}

# run_bus: the broker with four named bus clients - example-svc (examples/bus subscriber/
# responder), alice (examples/bus publisher/requester), and aipc.exe as bob, carol and admin.
run_bus() {
  local pipe="asyncipc.demo.bus.$$" w="$top/tools/wine-run" brk rc=0 cfg="$build/demo-broker.json"
  local log="$build/demo-broker.log" sub_fd sub_rc= sub_end="--demo: subscriber exited--" stats
  echo
  echo "== demo: broker + bus clients (pipe $pipe)"
  echo "   [broker]      asyncipc-broker.exe run: routes everything below (its log is printed last)"
  echo "   [svc/sub]     bus_subscriber.exe as example-svc: subscribes to example/#, answers requests"
  echo "   [alice/pub]   bus_publisher.exe as alice: publishes 5 readings, asks example-svc the time"
  echo "   [admin/aipc], [carol/aipc], [bob/aipc]   aipc.exe with --name: ping, req, pub, stats"
  echo "   (\"> ...\" is the command a client was started with; each also gets --pipe $pipe)"
  echo
  # The broker logs (at info: where it listens, every client joining and leaving, by name) to
  # a file of its own, next to the config (Z: is the Linux root under Wine).
  printf '{ "log_level": "info", "log_file": "demo-broker.log" }\n' >"$cfg"
  rm -f "$log"
  timeout 120 "$w" "$bin/asyncipc-broker.exe" run --config "Z:${cfg//\//\\}" --pipe "$pipe" \
          >"$log.console" 2>&1 &
  brk=$!
  # The subscriber/responder, read through its own stream; it exits after 6 publications (5 from
  # alice, 1 from bob). It waits (bounded, then retries) for the broker's pipe to appear; its
  # "state: connected" line means the broker knows example-svc. From then on it sees every
  # client come and go: after each client's step the demo reads its lines up to that client's
  # "left" (or its last expected line), so the transcript is in causal order.
  exec {sub_fd}< <(timeout 90 "$w" "$bin/bus_subscriber.exe" --pipe "$pipe" --count 6 2>&1
                   echo "$sub_end $?")
  expect_sub '^state: connected' 1 || rc=1
  client admin/aipc 60 "$bin/aipc.exe" ping --name admin --pipe "$pipe" --connect-timeout 30000 || rc=1
  expect_sub '^\* admin left ' 1 || rc=1
  # The answer comes back on example-svc's connection after its subscription (the same
  # connection, in order): once carol has it, publications reach the subscriber.
  client carol/aipc 30 "$bin/aipc.exe" req example-svc "time? (from carol)" --name carol \
         --pipe "$pipe" || rc=1
  expect_sub '^\* carol left ' 1 || rc=1
  client alice/pub 60 "$bin/bus_publisher.exe" --pipe "$pipe" --count 5 --name alice || rc=1
  expect_sub '^(\[example/temperature.* from alice |\* alice left )' 6 || rc=1
  client bob/aipc 30 "$bin/aipc.exe" pub example/note "hello from aipc.exe" --name bob \
         --pipe "$pipe" || rc=1
  expect_sub '' 0 || rc=1
  [ "$sub_rc" = 0 ] || { echo "demo: bus_subscriber.exe exited with '$sub_rc'" >&2; rc=1; }
  exec {sub_fd}<&-
  printf '%-13s > %s\n' "[admin/aipc]" "aipc.exe stats --name admin   (its JSON shown as a table)"
  stats=$(timeout 30 "$w" "$bin/aipc.exe" stats --name admin --pipe "$pipe" 2>&1) || rc=1
  { stats_table <<<"$stats" || printf '%s\n' "$stats"; } | label admin/aipc
  kill "$brk" 2>/dev/null; wait "$brk" 2>/dev/null
  echo
  # Its console line, then its log: "TIME LEVEL message" (without the date, pid and thread).
  cat "$log.console" "$log" 2>/dev/null |
    sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} ([0-9:.]+) ([A-Z]+) +pid=[0-9]+ tid=[0-9]+ /\1 \2 /' |
    label broker
  echo
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
part() { [[ $parts == *" $1 "* ]]; }
if part bus; then run_bus || status=1; fi
if part c; then
  run_pair "C server + C client" aipc-example-server overlapped aipc-example-client async \
           "asyncipc.demo.c.$$" c || status=1
fi
if part cpp; then
  run_pair "C++ server + C++ client" aipc-example-server-cpp async aipc-example-client-cpp overlapped \
           "asyncipc.demo.cpp.$$" cpp || status=1
fi
if part gui; then run_gui || status=1; fi
echo
if [ $status = 0 ]; then echo "demo: OK"; else echo "demo: FAILED" >&2; fi
exit $status
