#!/bin/sh
# Runs a Windows test program through the Wine runner with an X display:
#   with_display.sh EMULATOR PROGRAM [ARGS...]
#
# Under Wine 8 a message-only window (HWND_MESSAGE, what AIPC_DISPATCH_WINDOW uses) works
# without a display, but a top-level window and its controls (the listbox of the classic
# samples) are created only with one: CreateWindowEx fails without X.
#
# With DISPLAY set (tools/test.sh runs the Windows ctest under one `xvfb-run -a`) the program
# just runs. Without it, the GUI tests of one Wine prefix share one Xvfb, started here on first
# use (Debian packages xvfb, xauth: tools/setup.sh) and ending by itself 30 s after its last
# client left (-terminate 30). Every program of a prefix that uses windows should see the same
# display: the first one starts the prefix's desktop process (explorer.exe), and while a desktop
# started without a display (or on another display) lives, CreateWindowEx of top-level windows
# fails for the others (seen with ctest -j2).
#
# The program's output goes through a file that `tail --pid` copies to our stdout while the
# program runs: the first windowed program of a prefix starts the prefix's desktop process
# (explorer.exe /desktop), which inherits that program's stdout/stderr and lives while any
# windowed program of the prefix runs. Given ctest's pipe, it would hold the test "running"
# until every other GUI test ended (seen: 4 s of work reported as 144 s).
emu=$1
shift

# Runs the program with its output copied to stdout; returns its exit code.
run() {
  out=$(mktemp "${TMPDIR:-/tmp}/aipc-gui-out.XXXXXX")
  "$emu" "$@" >"$out" 2>&1 </dev/null &
  pid=$!
  tail -n +1 -f --pid="$pid" "$out" &
  tailpid=$!
  wait "$pid"
  rc=$?
  wait "$tailpid"
  rm -f "$out"
  return $rc
}

if [ -n "${DISPLAY:-}" ]; then
  run "$@"
  exit $?
fi
if ! command -v Xvfb >/dev/null 2>&1; then
  echo "with_display.sh: DISPLAY is unset and Xvfb is missing (tools/setup.sh installs xvfb); windows will fail" >&2
  run "$@"
  exit $?
fi
top=$(cd "$(dirname "$0")/../../.." && pwd)
prefix=${WINEPREFIX:-$top/build/wineprefix}
mkdir -p "$prefix"
state="$prefix/.aipc-xvfb"    # "<display number> <pid>" of the prefix's Xvfb
(
  flock 9
  num= pid=
  [ -f "$state" ] && read -r num pid <"$state"
  if [ -z "$num" ] || ! kill -0 "$pid" 2>/dev/null || [ ! -S "/tmp/.X11-unix/X$num" ]; then
    fifo=$(mktemp -u "${TMPDIR:-/tmp}/aipc-xvfb.XXXXXX")
    mkfifo "$fifo" || exit 1
    # -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
    # setsid: its own session, so it outlives this test (ctest ends the test's process group).
    setsid Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp -terminate 30 \
      3>"$fifo" </dev/null >/dev/null 2>&1 9>&- &
    pid=$!
    num=$(timeout 30 head -n1 "$fifo" | tr -dc 0-9)
    rm -f "$fifo"
    if [ -z "$num" ]; then
      echo "with_display.sh: Xvfb did not start" >&2
      exit 1
    fi
    echo "$num $pid" >"$state"
  fi
) 9>"$state.lock" || exit 1
read -r num pid <"$state"
DISPLAY=":$num"
export DISPLAY
run "$@"
exit $?
