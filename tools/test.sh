#!/usr/bin/env bash
# Runs every test: set-up (idempotent), the native suites under ASan+UBSan with the libFuzzer
# targets (bounded), then the Windows build and its suites under Wine. Prints a summary line
# "tests: N passed, M failed" and exits non-zero if anything failed.
#   tools/test.sh [-R regex]     (the regex is passed to both ctest runs)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tools/setup.sh || exit 1

export WINEPREFIX="$top/build/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
jobs=$(nproc)
ctest_args=(--output-on-failure --no-tests=error "$@")
pass=0; fail=0; status=0

count() { # ctest log -> pass/fail counters
  local p f
  p=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$1"); f=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Timeout|Not Run)' "$1")
  pass=$((pass + p)); fail=$((fail + f))
}

echo "== native: configure + build (clang, ASan+UBSan, libFuzzer)"
CC=clang CXX=clang++ cmake -S . -B build/native -DAIPC_SANITIZE=ON -DAIPC_FUZZ=ON >build/native.cmake.log 2>&1 \
  || { cat build/native.cmake.log; exit 1; }
cmake --build build/native -j"$jobs" >build/native.build.log 2>&1 || { tail -50 build/native.build.log; exit 1; }
echo "== native: ctest"
(cd build/native && ASAN_OPTIONS=detect_leaks=1 ctest -j"$jobs" "${ctest_args[@]}") 2>&1 | tee build/native.ctest.log
[ "${PIPESTATUS[0]}" = 0 ] || status=1
count build/native.ctest.log

echo "== windows: configure + build (mingw-w64)"
cmake -S . -B build/win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake >build/win.cmake.log 2>&1 \
  || { cat build/win.cmake.log; exit 1; }
cmake --build build/win -j"$jobs" >build/win.build.log 2>&1 || { tail -50 build/win.build.log; exit 1; }
echo "== windows: ctest under Wine ($WINEPREFIX)"
# One persistent wineserver for the whole run, with the prefix's own processes started on
# /dev/null (see tools/wine-run); the EXIT trap ends it. GUI suites need an X display for their
# windows (Wine creates top-level windows only with one), and every program of the prefix must
# see the same display as its desktop process: without DISPLAY, the server, the prefix's
# start-up and the whole ctest run share one Xvfb.
display=()
[ -n "${DISPLAY:-}" ] || ! command -v xvfb-run >/dev/null || display=(xvfb-run -a -s "-screen 0 1024x768x24 -nolisten tcp")
"${display[@]}" bash -c '
  wineserver -p </dev/null >/dev/null 2>&1 || true
  tools/wine-run cmd.exe /c exit </dev/null >/dev/null 2>&1 || true
  cd build/win && ctest "$@"' ctest -j"$jobs" "${ctest_args[@]}" 2>&1 | tee build/win.ctest.log
[ "${PIPESTATUS[0]}" = 0 ] || status=1
count build/win.ctest.log

echo "tests: $pass passed, $fail failed"
exit $status
