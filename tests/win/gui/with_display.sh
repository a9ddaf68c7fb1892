#!/bin/sh
# Runs a Windows test program through the Wine runner with an X display:
#   with_display.sh EMULATOR PROGRAM [ARGS...]
# Under Wine 8 a message-only window (HWND_MESSAGE, what AIPC_DISPATCH_WINDOW uses) works
# without a display, but a top-level window and its controls (the listbox of the classic
# samples) are created only with one: CreateWindowEx returns NULL without X. tools/test.sh runs
# the whole Windows ctest under one `xvfb-run -a`, so DISPLAY is already set there; a bare
# `ctest` without DISPLAY gets a private Xvfb for this test (Debian packages xvfb and xauth,
# installed by tools/setup.sh). The starting display number is spread by process id so that
# parallel tests do not race for the same one.
emu=$1
shift
if [ -n "${DISPLAY:-}" ]; then
  exec "$emu" "$@"
fi
if command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -n $((100 + $$ % 800)) -s "-screen 0 1024x768x24 -nolisten tcp" "$emu" "$@"
fi
echo "with_display.sh: DISPLAY is unset and xvfb-run is missing (tools/setup.sh installs xvfb, xauth); windows will fail" >&2
exec "$emu" "$@"
