#!/usr/bin/env bash
# run_installer_test.sh cmd|nsis - installs AsyncIPC into a fresh Wine prefix and checks the
# real state after every step (registered by CMakeLists.txt, which sets the environment):
#   AIPC_DIST (dist tree), AIPC_VERSION, AIPC_HELPER (aipc-installer-helper.exe),
#   AIPC_SOURCE_DIR, AIPC_WORK (scratch folder), AIPC_CMAKE, AIPC_WINE;
#   nsis only: AIPC_SETUP (the setup program), AIPC_MAKENSIS, AIPC_NSI (to build an older version).
#  cmd:  (as a simulated standard user: refused) install.cmd -> checks -> edit config -> install.cmd
#        again (keeps it, restarts) -> checks -> install.cmd over an invalid config (must fail)
#        -> uninstall.cmd (keeps config) -> uninstall.cmd again -> uninstall.cmd /purge
#  nsis: Setup-<older>.exe /S -> checks -> edit config -> Setup-<version>.exe /S (upgrade) -> checks
#        -> setup over an invalid config (must fail) -> QuietUninstallString _?= -> checks
#        -> Setup /S /D=<custom dir> -> checks -> uninstall /PURGE -> checks
# Every wait is a bounded poll on real state. The prefix and its wineserver are removed at the end.
set -uo pipefail
mode=${1:?usage: run_installer_test.sh cmd|nsis}
for v in AIPC_DIST AIPC_VERSION AIPC_HELPER AIPC_SOURCE_DIR AIPC_WORK AIPC_CMAKE AIPC_WINE; do
  [ -n "${!v:-}" ] || { echo "FAIL: $v is not set"; exit 1; }
done
work="$AIPC_WORK/run-$mode"
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" DISPLAY=
SVC=AsyncIPCBroker
drive_c="$WINEPREFIX/drive_c"
pf_win='C:\Program Files\AsyncIPC'
pf_unix="$drive_c/Program Files/AsyncIPC"
cfg="$drive_c/ProgramData/AsyncIPC/broker.json"
arpkey='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\AsyncIPC'
failures=0; checks=0
t0=$(date +%s)

pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND... : one assertion.
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
step() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }
# Windows path of a Linux path (drive Z: maps /).
winpath() { local p=$1; echo "Z:${p//\//\\}"; }
w() { timeout 150 "$AIPC_WINE" "$@"; }
helper() { w "$AIPC_HELPER" "$@" | tr -d '\r'; }
# run_verbatim CMDLINE: CreateProcess with exactly CMDLINE (see installer_helper.c); its exit code.
run_verbatim() { w "$AIPC_HELPER" run "$1"; }

cleanup() {
  [ -n "${keepalive_pid:-}" ] && kill "$keepalive_pid" 2>/dev/null
  wineserver -k >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# svc_query: the service's state as the service manager reports it, into $svcinfo.
svc_query() { svcinfo=$(helper query "$SVC"); }
svc_field() { sed -n "s/^$1=//p" <<<"$svcinfo" | head -n1; }

# assert_service_running INSTALL_DIR_WIN: registered, automatic start, RUNNING, right binary.
assert_service_running() {
  local dir=$1
  check "service reaches RUNNING (bounded wait)" w "$AIPC_HELPER" wait "$SVC" RUNNING 30000
  svc_query
  check "service is registered" test "$(svc_field exists)" = 1
  check "service start type is AUTO (got '$(svc_field start)')" test "$(svc_field start)" = AUTO
  check "service state is RUNNING (got '$(svc_field state)')" test "$(svc_field state)" = RUNNING
  check "service display name is 'AsyncIPC Broker'" test "$(svc_field display)" = "AsyncIPC Broker"
  check "service binary is the installed broker (got '$(svc_field binpath)')" \
    test "$(svc_field binpath)" = "\"$dir\\bin\\asyncipc-broker.exe\""
  check "service has a description" test -n "$(svc_field description)"
  if [ -n "$(svc_field failure_actions)" ]; then
    check "failure actions restart/5000/restart/5000/restart/30000" \
      test "$(svc_field failure_actions)" = "restart/5000/restart/5000/restart/30000"
    check "failure reset period 86400" test "$(svc_field failure_reset)" = 86400
  else
    echo "note: this service manager does not report failure actions (Wine: error $(svc_field failure_query_error))"
  fi
  check "broker process id is known" test "$(svc_field pid)" -gt 0 2>/dev/null
  check "broker log %ProgramData%\\AsyncIPC\\logs\\broker.log is written" \
    test -s "$drive_c/ProgramData/AsyncIPC/logs/broker.log"
  if [ "$(svc_field state)" != RUNNING ]; then
    # Diagnostics for a failed start: what the service manager and the broker said.
    echo "diag: service query: $(tr '\n' ' ' <<<"$svcinfo")"
    echo "diag: last broker log lines:"
    tail -n 15 "$drive_c/ProgramData/AsyncIPC/logs/broker.log" 2>/dev/null | tr -d '\r' | sed 's/^/diag:   /'
  fi
}

# assert_files UNIX_DIR: everything the installers put in the installation folder.
assert_files() {
  local d=$1 f
  for f in bin/asyncipc-broker.exe bin/aipc.exe bin/asyncipc.dll include/asyncipc/asyncipc.h include/async_ipc.h \
           lib/libasyncipc.dll.a lib/cmake/AsyncIPC/AsyncIPCConfig.cmake \
           lib/cmake/AsyncIPC/AsyncIPCConfigVersion.cmake docs/README.md; do
    check "installed $f" test -s "$d/$f"
  done
  check "installed broker is the built one" cmp -s "$d/bin/asyncipc-broker.exe" "$AIPC_DIST/bin/asyncipc-broker.exe"
  check "installed DLL is the built one" cmp -s "$d/bin/asyncipc.dll" "$AIPC_DIST/bin/asyncipc.dll"
}

# assert_default_config: a config the installer wrote, with the documented keys.
assert_default_config() {
  check "default config exists" test -s "$cfg"
  local k
  for k in pipe_name max_clients max_payload max_queue_bytes log_level log_file sddl; do
    check "default config has \"$k\"" grep -q "\"$k\"" "$cfg"
  done
}

# pubsub_roundtrip INSTALL_DIR_WIN PIPE: the installed aipc.exe subscribes, publishes until the
# subscriber got one message (publications before its subscription is processed are lost, so
# publish repeatedly; bounded), and the subscriber prints it.
pubsub_roundtrip() {
  local dir=$1 pipe=$2 out="$work/sub.out" msg="hello-from-$mode-$RANDOM" i sub_pid rc
  timeout 60 "$AIPC_WINE" "$dir\\bin\\aipc.exe" sub installer/roundtrip --count 1 --pipe "$pipe" \
    >"$out" 2>"$work/sub.err" &
  sub_pid=$!
  for i in $(seq 1 60); do
    kill -0 "$sub_pid" 2>/dev/null || break
    w "$dir\\bin\\aipc.exe" pub installer/roundtrip "$msg" --pipe "$pipe" >/dev/null 2>"$work/pub.err" \
      || { echo "aipc pub failed: $(cat "$work/pub.err")"; }
    kill -0 "$sub_pid" 2>/dev/null || break
    sleep 0.5
  done
  wait "$sub_pid"; rc=$?
  check "aipc sub --count 1 exits 0 after a publication (rc $rc, $(tr -d '\r' <"$work/sub.err" | head -c 300))" test "$rc" = 0
  check "aipc sub printed the published message (got: $(tr -d '\r' <"$out" | head -c 200))" grep -q "$msg" "$out"
}

# consumer INSTALL_DIR_UNIX INSTALL_DIR_WIN [PIPE]: a program built against the installed
# package (find_package(AsyncIPC) with CMAKE_PREFIX_PATH = the installation folder) runs with
# the installed DLL and talks through the installed broker.
consumer() {
  local du=$1 dw=$2 pipe=${3:-} b="$work/consumer-build"
  rm -rf "$b"
  if "$AIPC_CMAKE" -S "$AIPC_SOURCE_DIR/tests/win/installer/consumer" -B "$b" \
       -DCMAKE_TOOLCHAIN_FILE="$AIPC_SOURCE_DIR/tests/win/installer/consumer/toolchain.cmake" \
       -DCMAKE_PREFIX_PATH="$du" -DCMAKE_BUILD_TYPE=Release >"$work/consumer.cmake.log" 2>&1; then
    pass "consumer project configured with find_package(AsyncIPC)"
  else
    fail "consumer project configured with find_package(AsyncIPC): $(tail -20 "$work/consumer.cmake.log")"
    return
  fi
  check "find_package used the installed package ($(grep -o 'AsyncIPC .* from .*' "$work/consumer.cmake.log"))" \
    grep -qF "from $du/lib/cmake/AsyncIPC" "$work/consumer.cmake.log"
  if "$AIPC_CMAKE" --build "$b" >"$work/consumer.build.log" 2>&1; then
    pass "consumer built against the installed headers and import library"
  else
    fail "consumer built: $(tail -20 "$work/consumer.build.log")"
    return
  fi
  check "no asyncipc.dll next to the consumer (the installed one must be used)" test ! -e "$b/asyncipc.dll"
  local out rc
  out=$(WINEPATH="$dw\\bin" w "$b/consumer.exe" $pipe 2>&1 | tr -d '\r'); rc=$?
  echo "$out" | sed 's/^/    consumer: /'
  check "consumer exchanged messages (p2p and through the broker) and exited 0" \
    test "$rc" = 0 -a -n "$(grep -x 'PASSED (0 failures)' <<<"$out")"
  out=$(WINEPATH="$dw\\bin" w "$b/consumer_cpp.exe" 2>&1 | tr -d '\r'); rc=$?
  echo "$out" | sed 's/^/    consumer_cpp: /'
  check "C++ consumer (installed asyncipc.hpp/bus.hpp) exchanged messages and exited 0" \
    test "$rc" = 0 -a -n "$(grep '^PASSED' <<<"$out")"
}

# broken_config_fails CMD...: with an unknown key in broker.json the broker refuses to start;
# the installer must report that (non-zero exit) instead of claiming success, and keep the file.
broken_config_fails() {
  cp "$cfg" "$work/broker.json.good"
  printf '{\r\n  "pipe_name": "asyncipc.broker",\r\n  "no_such_key": 1\r\n}\r\n' >"$cfg"
  cp "$cfg" "$work/broker.json.bad"
  local t=$(date +%s) rc
  "$@" >"$work/broken.out" 2>"$work/broken.err"; rc=$?
  check "installing over an invalid config fails (rc $rc) in $(( $(date +%s) - t ))s: $(tr -d '\r' <"$work/broken.err" | head -c 300)" test "$rc" != 0
  check "the invalid config was not overwritten" cmp -s "$cfg" "$work/broker.json.bad"
  svc_query
  check "service is not running (state '$(svc_field state)')" test "$(svc_field state)" != RUNNING
  cp "$work/broker.json.good" "$cfg"
}

# ---- fresh prefix ---------------------------------------------------------------------------
step "fresh Wine prefix $WINEPREFIX"
rm -rf "$work"; mkdir -p "$WINEPREFIX"
timeout 120 wineboot --init >"$work/wineboot.log" 2>&1
# wineboot returns before the prefix set-up (wine.inf, services) has finished in the background;
# wait until the prefix's wineserver has nothing left to run and exits (it writes the registry).
timeout 120 wineserver -w
check "wineboot created the prefix" test -f "$WINEPREFIX/system.reg"
# A service under Wine keeps running only while an ordinary process of the prefix lives.
"$AIPC_WINE" "$AIPC_HELPER" keepalive 600 >/dev/null 2>&1 &
keepalive_pid=$!
svc_query
check "no AsyncIPC service before installing" test "$(svc_field exists)" = 0

if [ "$mode" = cmd ]; then
  inst_cmd="$(winpath "$AIPC_DIST/bin/install.cmd")"
  uninst_cmd="$(winpath "$AIPC_DIST/bin/uninstall.cmd")"

  step "install.cmd / uninstall.cmd without Administrator rights"
  # Everything is an administrator under Wine; simulate a standard user by putting a net.exe
  # and an fltmc.exe that fail (the helper exits 2 on unknown arguments) first in PATH.
  mkdir -p "$work/nonadmin"
  cp "$AIPC_HELPER" "$work/nonadmin/net.exe"; cp "$AIPC_HELPER" "$work/nonadmin/fltmc.exe"
  for script in "$inst_cmd" "$uninst_cmd"; do
    WINEPATH="$(winpath "$work/nonadmin")" w cmd /c "$script" >"$work/nonadmin.out" 2>"$work/nonadmin.err"; rc=$?
    check "${script##*\\} as a standard user exits 5 (rc $rc)" test "$rc" = 5
    check "${script##*\\} says Administrator rights are required" grep -q "Administrator rights are required" "$work/nonadmin.err"
  done
  check "nothing was installed" test ! -e "$pf_unix"
  svc_query
  check "no service was registered" test "$(svc_field exists)" = 0

  step "install.cmd"
  w cmd /c "$inst_cmd"; rc=$?
  check "install.cmd exits 0 (rc $rc)" test "$rc" = 0
  assert_files "$pf_unix"
  assert_default_config
  assert_service_running "$pf_win"
  pid1=$(svc_field pid)
  pubsub_roundtrip "$pf_win" asyncipc.broker
  consumer "$pf_unix" "$pf_win"

  step "edit the config, run install.cmd again"
  sed -i 's/"pipe_name": "asyncipc.broker"/"pipe_name": "asyncipc.reinstalled"/' "$cfg"
  check "config edited" grep -q asyncipc.reinstalled "$cfg"
  cp "$cfg" "$work/broker.json.edited"
  w cmd /c "$inst_cmd"; rc=$?
  check "install.cmd again exits 0 (rc $rc)" test "$rc" = 0
  check "edited config kept byte for byte" cmp -s "$cfg" "$work/broker.json.edited"
  assert_service_running "$pf_win"
  check "service was restarted (pid $pid1 -> $(svc_field pid))" test "$(svc_field pid)" != "$pid1"
  pubsub_roundtrip "$pf_win" asyncipc.reinstalled

  step "install.cmd over an invalid config"
  broken_config_fails w cmd /c "$inst_cmd"
  check "install.cmd names the cause" grep -q "stopped while starting" "$work/broken.err"

  step "uninstall.cmd (service registered but stopped)"
  w cmd /c "$uninst_cmd"; rc=$?
  check "uninstall.cmd exits 0 (rc $rc)" test "$rc" = 0
  svc_query
  check "service is gone" test "$(svc_field exists)" = 0
  check "program files are gone" test ! -e "$pf_unix"
  check "config kept" cmp -s "$cfg" "$work/broker.json.edited"
  w cmd /c "$uninst_cmd"; rc=$?
  check "uninstall.cmd with nothing installed exits 0 (rc $rc)" test "$rc" = 0
  w cmd /c "$uninst_cmd" /purge; rc=$?
  check "uninstall.cmd /purge exits 0 (rc $rc)" test "$rc" = 0
  check "/purge removed %ProgramData%\\AsyncIPC" test ! -e "$drive_c/ProgramData/AsyncIPC"

elif [ "$mode" = nsis ]; then
  for v in AIPC_SETUP AIPC_MAKENSIS AIPC_NSI; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set"; exit 1; }
  done
  old=0.0.1
  [ "$old" != "$AIPC_VERSION" ] || old=0.0.0
  step "build an older setup program ($old) from the same tree"
  "$AIPC_MAKENSIS" -V1 -DVERSION=$old -DDIST="$AIPC_DIST" -DOUTFILE="$work/AsyncIPC-Setup-$old.exe" \
    "$AIPC_NSI" >"$work/makensis.log" 2>&1
  check "makensis built AsyncIPC-Setup-$old.exe" test -s "$work/AsyncIPC-Setup-$old.exe"

  arp() { w reg query "$arpkey" /v "$1" 2>/dev/null | tr -d '\r' | sed -n "s/^ *$1 *REG_[A-Z_]* *//p"; }
  arp_gone() { ! w reg query "$arpkey" >/dev/null 2>&1; }
  assert_arp() { # VERSION INSTALL_DIR_WIN
    check "ARP DisplayName AsyncIPC" test "$(arp DisplayName)" = AsyncIPC
    check "ARP DisplayVersion $1 (got '$(arp DisplayVersion)')" test "$(arp DisplayVersion)" = "$1"
    check "ARP InstallLocation $2" test "$(arp InstallLocation)" = "$2"
    check "ARP UninstallString" test "$(arp UninstallString)" = "\"$2\\uninstall.exe\""
    check "ARP QuietUninstallString" test "$(arp QuietUninstallString)" = "\"$2\\uninstall.exe\" /S"
    check "ARP Publisher" test -n "$(arp Publisher)"
    check "ARP EstimatedSize > 0 KB ($(arp EstimatedSize))" test $(( $(arp EstimatedSize) )) -gt 0
  }

  step "fresh silent install of $old"
  w "$work/AsyncIPC-Setup-$old.exe" /S; rc=$?
  check "setup $old /S exits 0 (rc $rc)" test "$rc" = 0
  assert_files "$pf_unix"
  check "uninstaller written" test -s "$pf_unix/uninstall.exe"
  assert_default_config
  assert_service_running "$pf_win"
  assert_arp "$old" "$pf_win"
  pid1=$(svc_field pid)

  step "edit the config, upgrade to $AIPC_VERSION"
  sed -i 's/"pipe_name": "asyncipc.broker"/"pipe_name": "asyncipc.upgraded"/' "$cfg"
  check "config edited" grep -q asyncipc.upgraded "$cfg"
  cp "$cfg" "$work/broker.json.edited"
  rm -f "$pf_unix/bin/aipc.exe"      # the upgrade must put every file back
  w "$AIPC_SETUP" /S; rc=$?
  check "setup $AIPC_VERSION /S over $old exits 0 (rc $rc)" test "$rc" = 0
  check "edited config kept byte for byte" cmp -s "$cfg" "$work/broker.json.edited"
  assert_files "$pf_unix"
  assert_service_running "$pf_win"
  check "service was restarted by the upgrade (pid $pid1 -> $(svc_field pid))" test "$(svc_field pid)" != "$pid1"
  assert_arp "$AIPC_VERSION" "$pf_win"
  pubsub_roundtrip "$pf_win" asyncipc.upgraded
  consumer "$pf_unix" "$pf_win" asyncipc.upgraded

  step "setup /S over an invalid config"
  broken_config_fails w "$AIPC_SETUP" /S

  step "silent uninstall with QuietUninstallString _?= (service registered but stopped)"
  qus=$(arp QuietUninstallString)
  run_verbatim "$qus _?=$pf_win"; rc=$?
  check "uninstaller exits 0 (rc $rc)" test "$rc" = 0
  svc_query
  check "service is gone" test "$(svc_field exists)" = 0
  for d in bin include lib docs; do
    check "program files: $d/ is gone" test ! -e "$pf_unix/$d"
  done
  # With _?= the uninstaller runs in place and cannot delete itself; nothing else may remain.
  check "only uninstall.exe remains ($(ls "$pf_unix" 2>/dev/null | tr '\n' ' '))" \
    test "$(ls "$pf_unix" 2>/dev/null)" = uninstall.exe
  rm -rf "$pf_unix"
  check "Add/Remove Programs entry is gone" arp_gone
  check "config kept" cmp -s "$cfg" "$work/broker.json.edited"

  step "silent install into a custom folder (/D=), uninstall with /PURGE"
  custom_win='C:\Apps\AsyncIPC Custom'
  custom_unix="$drive_c/Apps/AsyncIPC Custom"
  run_verbatim "\"$(winpath "$AIPC_SETUP")\" /S /D=$custom_win"; rc=$?
  check "setup /S /D= exits 0 (rc $rc)" test "$rc" = 0
  assert_files "$custom_unix"
  assert_service_running "$custom_win"
  check "config still kept" cmp -s "$cfg" "$work/broker.json.edited"
  check "ARP InstallLocation is the custom folder" test "$(arp InstallLocation)" = "$custom_win"
  run_verbatim "\"$custom_win\\uninstall.exe\" /S /PURGE _?=$custom_win"; rc=$?
  check "uninstaller /PURGE exits 0 (rc $rc)" test "$rc" = 0
  svc_query
  check "service is gone" test "$(svc_field exists)" = 0
  check "custom folder holds only uninstall.exe" test "$(ls "$custom_unix" 2>/dev/null)" = uninstall.exe
  check "Add/Remove Programs entry is gone" arp_gone
  check "/PURGE removed %ProgramData%\\AsyncIPC" test ! -e "$drive_c/ProgramData/AsyncIPC"
else
  echo "FAIL: unknown mode $mode"; exit 2
fi

step "done: $checks checks, $failures failures"
[ "$failures" = 0 ]
