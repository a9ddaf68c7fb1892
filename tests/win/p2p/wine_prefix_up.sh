#!/bin/sh
# Brings the Wine prefix's own processes (services.exe, explorer.exe, winedevice.exe) up with
# their standard handles on /dev/null, before the p2p suites run (ctest fixture).
# Why: the first Wine program of a prefix starts those processes and they inherit its stdout and
# stderr. When that program is a test, ctest waits for EOF on the test's output pipe until the
# prefix's processes end - which, with a persistent wineserver or with other tests keeping the
# prefix busy, is long after the test finished, so the test "times out" after passing.
#   wine_prefix_up.sh <source dir>      (honours WINEPREFIX like tools/wine-run)
top=$1
export WINEPREFIX="${WINEPREFIX:-$top/build/wineprefix}"
export WINEDEBUG="${WINEDEBUG:--all}" WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
# Keep the server (and so the prefix's processes) for 60 s after the last program; a server that
# is already running (tools/test.sh starts a persistent one) makes this a no-op.
wineserver -p60 </dev/null >/dev/null 2>&1
"$top/tools/wine-run" cmd.exe /c exit </dev/null >/dev/null 2>&1
exit 0
