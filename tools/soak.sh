#!/usr/bin/env bash
# Measurements of the broker under load (issue 12), on the Windows build of this tree under
# Wine; not part of tools/test.sh (they last minutes and load the machine: run them niced).
#   tools/soak.sh [broker_soak options]   the soak: 10 minutes, 3 broker lifetimes, slope of the
#                                         broker's VmData after its queues filled (60 s); its
#                                         output goes to build/soak.log, samples to build/soak.csv
#   tools/soak.sh attacks [OLD.exe]       memory per attack class of this tree's broker, and of
#                                         OLD.exe (a broker from before the limits, run with
#                                         --legacy) when given; output in build/attacks.log
# Build first: cmake --build build/win --target broker_soak attack_mem
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/win/bin"
export WINEPREFIX="${WINEPREFIX:-$top/build/wineprefix}"
winpath() { echo "Z:$(readlink -f "$1" | tr / '\\')"; }

if [ "${1:-}" = attacks ]; then
  old="${2:-}"
  {
    nice -n 10 "$top/tools/wine-run" "$bin/attack_mem.exe" "$(winpath "$bin/asyncipc-broker.exe")"
    [ -z "$old" ] || nice -n 10 "$top/tools/wine-run" "$bin/attack_mem.exe" "$(winpath "$old")" --legacy
  } 2>&1 | grep --line-buffered -v '^asyncipc-broker: \(running\|stopped\)' | tee "$top/build/attacks.log"
  exit "${PIPESTATUS[0]}"
fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--seconds 600 --epochs 3 --fill-s 60 --sample-ms 3000)
nice -n 10 "$top/tools/wine-run" "$bin/broker_soak.exe" "${args[@]}" --csv "$(winpath "$top/build")\\soak.csv" 2>&1 \
  | grep --line-buffered -v '^asyncipc-broker: \(running\|stopped\)' | tee "$top/build/soak.log"
exit "${PIPESTATUS[0]}"
