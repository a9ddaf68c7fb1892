#!/usr/bin/env bash
# run_installer_test.sh cmd|nsis - installs AsyncIPC into a fresh Wine prefix and checks the
# real state after every step (registered by CMakeLists.txt, which sets the environment):
#   AIPC_DIST (dist tree), AIPC_VERSION, AIPC_HELPER (aipc-installer-helper.exe),
#   AIPC_SOURCE_DIR, AIPC_WORK (scratch folder), AIPC_CMAKE, AIPC_WINE;
#   nsis only: AIPC_SETUP (the setup program), AIPC_MAKENSIS, AIPC_NSI (to build an older version).
#  both: no external program is called by a bare name in the elevated scripts (static check of
#        install.cmd, uninstall.cmd, asyncipc.nsi, itself tested on planted bad lines)
#  cmd:  descriptors as built (asyncipc-secure show -> helper sdcheck) -> (as a simulated standard
#        user: refused) -> over a planted %ProgramData%\AsyncIPC (refused, nothing installed)
#        -> install.cmd -> checks (files, service and its account/privileges, data folder
#        protection as far as Wine shows it) -> planted broker.json owner / hard link / logs
#        symlink: refused, running service untouched -> edit config -> install.cmd again (keeps
#        it, restarts) -> checks -> install.cmd over an invalid config (must fail) -> uninstall.cmd
#        (keeps config) -> uninstall.cmd again -> /purge over a reparse point (refused, kept)
#        -> uninstall.cmd /purge
#  nsis: Setup-<older>.exe /S -> checks -> refusals (planted broker.json, /D= below a folder
#        everyone may change, /D= a non-empty foreign folder) leave the running install alone
#        -> edit config -> Setup-<version>.exe /S (upgrade) -> checks -> setup over an invalid
#        config (must fail) -> QuietUninstallString _?= -> checks -> Setup /S /D=<custom dir>
#        -> checks (custom folder and its new parent protected) -> uninstall /PURGE -> checks
# Every wait is a bounded poll on real state. The prefix and its wineserver are removed at the end.
# Wine enforces no file ACLs and synthesises the descriptors it reports from Unix permissions; it
# does map a DACL it is given onto them (no Everyone entry: no permission bits for "others"), which
# is the part of the protection these suites can see on disk. The descriptors themselves are
# checked as built, in memory (sdcheck).
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
data_unix="$drive_c/ProgramData/AsyncIPC"
data_win='C:\ProgramData\AsyncIPC'
cfg="$data_unix/broker.json"
svc_sid=S-1-5-80-1367493681-2980605409-3874299912-3683937316-105123856
svckey="HKLM\\SYSTEM\\CurrentControlSet\\Services\\$SVC"
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

# assert_service_account: the service runs as its virtual account with only
# SeChangeNotifyPrivilege and an unrestricted service SID, in the registry (what sc.exe
# create obj= / privs / sidtype store, and what the installers write where Wine's sc lacks them).
regval() { w reg query "$svckey" /v "$1" 2>/dev/null | tr -d '\r' | sed -n "s/^ *$1 *REG_[A-Z_]* *//p"; }
assert_service_account() {
  check "registry ObjectName is NT SERVICE\\$SVC (got '$(regval ObjectName)')" \
    test "$(regval ObjectName)" = "NT SERVICE\\$SVC"
  check "service manager reports the account NT SERVICE\\$SVC (got '$(svc_field account)')" \
    test "$(svc_field account)" = "NT SERVICE\\$SVC"
  check "registry RequiredPrivileges is SeChangeNotifyPrivilege only (got '$(regval RequiredPrivileges)')" \
    test "$(regval RequiredPrivileges | sed 's/\\0$//')" = SeChangeNotifyPrivilege
  check "registry ServiceSidType is 1, unrestricted (got '$(regval ServiceSidType)')" \
    test "$(( $(regval ServiceSidType) ))" = 1
}

# others_bits UNIX_PATH: the permission bits Wine gives "others" (it maps an Everyone ACE there).
others_bits() { echo $(( 0$(stat -c %a "$1") & 7 )); }

# assert_data_protected [ITEM...]: %ProgramData%\AsyncIPC, logs\ (and the ITEMs, Unix paths)
# exist, are plain (no symbolic link) and, as far as Wine shows a DACL, give "others" nothing
# (folders and files Wine creates are 755/644: the descriptors the installers write are what
# removes those bits). Wine applies no inheritance to new files, so a file shows its rights only
# once asyncipc-secure has reset it: the installers run it again after writing broker.json, and
# a log file the broker created is reset by the next install.
assert_data_protected() {
  local p
  for p in "$data_unix" "$data_unix/logs" "$@"; do
    check "${p#$drive_c/} exists and is no symbolic link" test -e "$p" -a ! -L "$p"
    check "${p#$drive_c/}: no access for others (mode $(stat -c %a "$p"))" test "$(others_bits "$p")" = 0
  done
}

# bare_tool_calls FILE...: prints every line of the elevated scripts that starts a system program
# by a bare name (PATH search) instead of its full path. .cmd: a program name as a command word,
# outside comments (full paths sit in variables: "%SC%" ...). .nsi: every Exec*/nsExec call must
# start "$SYSDIR\..." or "$PLUGINSDIR\...".
tools='sc|find|findstr|net|net1|ping|icacls|cacls|takeown|xcopy|robocopy|reg|fltmc|timeout|powershell|wmic|whoami|attrib|cmd|wevtutil'
bare_tool_calls() {
  local f
  for f in "$@"; do
    case "$f" in
      *.cmd) tr -d '\r' <"$f" | grep -inE "(^|[[:space:]\"(&|@])($tools)(\.exe)?([[:space:]\">|)]|\$)" \
               | grep -viE '^[0-9]+:[[:space:]]*(@?rem([[:space:]]|$)|::)' | sed "s|^|${f##*/}:|" ;;
      *.nsi) tr -d '\r' <"$f" | grep -inE '(nsExec::Exec[A-Za-z]*|^[[:space:]]*Exec(Wait|Shell)?)[[:space:]]' \
               | grep -vE "(nsExec::Exec[A-Za-z]*|Exec(Wait|Shell)?)[[:space:]]+'\"\\\$(SYSDIR|PLUGINSDIR)\\\\" \
               | grep -vE '^[0-9]+:[[:space:]]*[;#]' | sed "s|^|${f##*/}:|" ;;
    esac
  done
}

# assert_full_paths: the check finds nothing in the shipped scripts, and finds each bare call
# planted in copies of them (so it can fail).
assert_full_paths() {
  local bad
  bad=$(bare_tool_calls "$AIPC_SOURCE_DIR/installer/install.cmd" "$AIPC_SOURCE_DIR/installer/uninstall.cmd" \
                        "$AIPC_SOURCE_DIR/installer/asyncipc.nsi")
  check "no system program called by a bare name in install.cmd/uninstall.cmd/asyncipc.nsi${bad:+: $bad}" test -z "$bad"
  mkdir -p "$work/planted"
  printf '%s\r\n' '@echo off' 'rem sc query is fine in a comment' 'sc query x >nul' \
    'if errorlevel 1 net session >nul 2>&1' '"%SC%" query x | find "RUNNING" >nul' \
    'ping -n 2 127.0.0.1 >nul' '(icacls "%D%" /reset)' 'reg.exe add x /f' >"$work/planted/bad.cmd"
  printf '%s\n' "; nsExec::ExecToLog 'sc.exe start x' in a comment is fine" \
    "  nsExec::ExecToLog 'sc.exe start x'" "  nsExec::ExecToLog '\"sc.exe\" start x'" \
    "  ExecWait 'icacls.exe x'" "  nsExec::ExecToStack '\"\$SYSDIR\\sc.exe\" query x'" >"$work/planted/bad.nsi"
  check "the bare-name check flags the 6 planted .cmd lines (got $(bare_tool_calls "$work/planted/bad.cmd" | wc -l))" \
    test "$(bare_tool_calls "$work/planted/bad.cmd" | wc -l)" = 6
  check "the bare-name check flags the 3 planted .nsi lines (got $(bare_tool_calls "$work/planted/bad.nsi" | wc -l))" \
    test "$(bare_tool_calls "$work/planted/bad.nsi" | wc -l)" = 3
}

# assert_descriptors SECURE_EXE: the descriptors asyncipc-secure.exe applies, as built (its `show`
# prints them from the built descriptors), each checked by the helper against what it must grant;
# the service SID it uses is the one derived independently; a tampered descriptor fails sdcheck.
assert_descriptors() {
  local out kind sddl k
  out=$(w "$1" show | tr -d '\r')
  check "asyncipc-secure show uses the service SID derived from the name (got $(sed -n 's/^service_sid=//p' <<<"$out"))" \
    test "$(sed -n 's/^service_sid=//p' <<<"$out")" = "$(helper service-sid "$SVC")"
  check "the derivation reproduces TrustedInstaller's well-known SID" \
    test "$(helper service-sid TrustedInstaller)" = S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464
  check "the derivation matches the SID the suite expects" test "$(helper service-sid "$SVC")" = "$svc_sid"
  for kind in data logs config logfile install; do
    sddl=$(sed -n "s/^$kind=//p" <<<"$out")
    k=$(helper sdcheck "$kind" "$sddl"); rc=$?
    echo "$k" | sed 's/^/    /'
    check "descriptor '$kind' as built: $sddl" test "$rc" = 0 -a -n "$sddl"
  done
  sddl=$(sed -n 's/^data=//p' <<<"$out")
  helper sdcheck data "${sddl/D:PAI/D:AI}(A;OICI;0x1200a9;;;BU)" >/dev/null; rc=$?
  check "sdcheck fails a tampered data descriptor (unprotected, Users read)" test "$rc" = 1
  sddl=$(sed -n 's/^logs=//p' <<<"$out")
  helper sdcheck data "$sddl" >/dev/null; rc=$?
  check "sdcheck fails the logs descriptor given as data (service may write)" test "$rc" = 1
}

# refused_unchanged RC PATTERN ERRFILE PID: an install that must be refused before it changes
# anything: exit code RC, PATTERN in its message, the running service untouched (same pid).
refused_unchanged() {
  local want=$1 pat=$2 errf=$3 pid=$4
  check "refused with exit code $want (rc $rc): $(tr -d '\r' <"$errf" | grep -m1 -i refused | head -c 300)" test "$rc" = "$want"
  if [ -n "$pat" ]; then
    check "the message names the reason ($pat)" grep -qi -- "$pat" "$errf"
  fi
  svc_query
  check "running service untouched (state $(svc_field state), pid $pid -> $(svc_field pid))" \
    test "$(svc_field state)" = RUNNING -a "$(svc_field pid)" = "$pid"
}

# foreign_owner PATH...: gives PATH to another Unix user, which Wine reports as a foreign owner
# (Anonymous Logon, S-1-5-7): the way to simulate what a non-administrator planted. Needs root
# (or sudo without a password); otherwise says so and returns 1, and the caller skips those checks.
foreign_owner() {
  chown 65534 "$@" 2>/dev/null || sudo -n chown 65534 "$@" 2>/dev/null && return 0
  echo "note: cannot chown (not root, no sudo): the foreign-owner refusal is not simulated"
  return 1
}
own_again() { chown "$(id -u)" "$@" 2>/dev/null || sudo -n chown "$(id -u)" "$@"; }

# run_logged NAME CMD...: runs CMD with stdout/stderr in $work/NAME.out/.err, shows both; rc in $rc.
run_logged() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err"; rc=$?
  tr -d '\r' <"$work/$name.out" | sed "s/^/    $name: /"
  tr -d '\r' <"$work/$name.err" | sed "s/^/    $name (stderr): /"
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

  step "static checks: full paths in the scripts, the descriptors as built"
  assert_full_paths
  assert_descriptors "$AIPC_DIST/bin/asyncipc-secure.exe"

  step "install.cmd / uninstall.cmd without Administrator rights"
  # Everything is an administrator under Wine; simulate a standard user with a net.exe and an
  # fltmc.exe that fail (the helper exits 2 on unknown arguments). The scripts call them by full
  # path, so they replace System32's own for this step (the prefix is a throwaway one; a native
  # program there runs only with a "native" DLL override), which also shows that the scripts run
  # exactly those files and nothing found through PATH.
  sys32="$drive_c/windows/system32"
  cp "$sys32/net.exe" "$work/net.exe.wine"
  cp "$AIPC_HELPER" "$sys32/net.exe"; cp "$AIPC_HELPER" "$sys32/fltmc.exe"
  for script in "$inst_cmd" "$uninst_cmd"; do
    WINEDLLOVERRIDES="$WINEDLLOVERRIDES;net.exe,fltmc.exe=n" w cmd /c "$script" >"$work/nonadmin.out" 2>"$work/nonadmin.err"; rc=$?
    check "${script##*\\} as a standard user exits 5 (rc $rc)" test "$rc" = 5
    check "${script##*\\} says Administrator rights are required" grep -q "Administrator rights are required" "$work/nonadmin.err"
  done
  cp "$work/net.exe.wine" "$sys32/net.exe"; rm -f "$sys32/fltmc.exe"
  check "nothing was installed" test ! -e "$pf_unix" -a ! -e "$data_unix"
  svc_query
  check "no service was registered" test "$(svc_field exists)" = 0

  step "install.cmd over a %ProgramData%\\AsyncIPC planted by a non-administrator"
  mkdir -p "$data_unix"
  printf '{ "sddl": "D:(A;;FA;;;WD)", "log_file": "C:\\\\Windows\\\\evil.dll" }\r\n' >"$cfg"
  cp "$cfg" "$work/planted.json"
  if foreign_owner "$data_unix" "$cfg"; then
    run_logged planted w cmd /c "$inst_cmd"
    check "install.cmd refuses it with exit code 6 (rc $rc)" test "$rc" = 6
    check "the message names the folder and its owner" grep -qF 'ProgramData\AsyncIPC" is owned by S-1-5-7' "$work/planted.err"
    check "nothing was installed" test ! -e "$pf_unix"
    svc_query
    check "no service was registered" test "$(svc_field exists)" = 0
    check "the planted config was left as it was" cmp -s "$cfg" "$work/planted.json"
  fi
  rm -rf "$data_unix"

  step "install.cmd"
  run_logged install w cmd /c "$inst_cmd"
  check "install.cmd exits 0 (rc $rc)" test "$rc" = 0
  check "the data folder was created with its descriptor" grep -qF "created \"$data_win\" (data): O:BA" "$work/install.out"
  check "the logs folder was created with its descriptor" grep -qF "created \"$data_win\\logs\" (logs): O:BA" "$work/install.out"
  # Wine's sc.exe has no privs/sidtype: the script must say so and write the registry instead.
  check "install.cmd warns that sc.exe privs is unavailable" grep -q 'warning: .*sc.exe" privs failed' "$work/install.err"
  check "install.cmd warns that sc.exe sidtype is unavailable" grep -q 'warning: .*sc.exe" sidtype failed' "$work/install.err"
  assert_files "$pf_unix"
  assert_default_config
  assert_data_protected "$cfg"
  assert_service_running "$pf_win"
  assert_service_account
  pid1=$(svc_field pid)
  pubsub_roundtrip "$pf_win" asyncipc.broker
  consumer "$pf_unix" "$pf_win"

  step "install.cmd over items planted in the data folder: refused, the running broker untouched"
  cp "$cfg" "$work/cfg.before"
  if foreign_owner "$cfg"; then
    run_logged planted w cmd /c "$inst_cmd"
    refused_unchanged 6 'broker.json" is owned by S-1-5-7' "$work/planted.err" "$pid1"
    check "the config was left as it was" cmp -s "$cfg" "$work/cfg.before"
    own_again "$cfg"
  fi
  ln "$cfg" "$data_unix/planted.json"
  run_logged planted w cmd /c "$inst_cmd"
  refused_unchanged 6 'has 2 names (hard links)' "$work/planted.err" "$pid1"
  rm -f "$data_unix/planted.json"
  mkdir -p "$work/elsewhere"; mv "$data_unix/logs" "$data_unix/logs.real"
  ln -s "$work/elsewhere" "$data_unix/logs"
  run_logged planted w cmd /c "$inst_cmd"
  refused_unchanged 6 'logs" is a reparse point' "$work/planted.err" "$pid1"
  check "nothing was written where the link points" test -z "$(ls -A "$work/elsewhere")"
  rm -f "$data_unix/logs"; mv "$data_unix/logs.real" "$data_unix/logs"
  check "the config is still the one written at install" cmp -s "$cfg" "$work/cfg.before"

  step "edit the config, run install.cmd again"
  sed -i 's/"pipe_name": "asyncipc.broker"/"pipe_name": "asyncipc.reinstalled"/' "$cfg"
  check "config edited" grep -q asyncipc.reinstalled "$cfg"
  cp "$cfg" "$work/broker.json.edited"
  w cmd /c "$inst_cmd"; rc=$?
  check "install.cmd again exits 0 (rc $rc)" test "$rc" = 0
  check "edited config kept byte for byte" cmp -s "$cfg" "$work/broker.json.edited"
  assert_data_protected "$cfg" "$data_unix/logs/broker.log"
  assert_service_running "$pf_win"
  assert_service_account
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
  step "uninstall.cmd /purge over a reparse point (refused, kept), then /purge"
  mkdir -p "$work/elsewhere"; echo keep >"$work/elsewhere/keep.txt"
  ln -s "$work/elsewhere" "$data_unix/link"
  run_logged purge w cmd /c "$uninst_cmd" /purge
  check "uninstall.cmd /purge refuses with exit code 6 (rc $rc)" test "$rc" = 6
  check "the message names the reparse point" grep -qF 'AsyncIPC\link" is a reparse point' "$work/purge.err"
  check "the data folder was kept" cmp -s "$cfg" "$work/broker.json.edited"
  check "what the link points to is untouched" test -s "$work/elsewhere/keep.txt"
  rm -f "$data_unix/link"
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

  step "static check: full paths in the scripts"
  assert_full_paths

  step "fresh silent install of $old"
  w "$work/AsyncIPC-Setup-$old.exe" /S; rc=$?
  check "setup $old /S exits 0 (rc $rc)" test "$rc" = 0
  assert_files "$pf_unix"
  check "uninstaller written" test -s "$pf_unix/uninstall.exe"
  check "asyncipc-secure.exe is not installed" test ! -e "$pf_unix/bin/asyncipc-secure.exe"
  assert_default_config
  assert_data_protected "$cfg"
  assert_service_running "$pf_win"
  assert_service_account
  assert_arp "$old" "$pf_win"
  pid1=$(svc_field pid)

  step "refused setups leave the running installation alone (silent: exit code 2)"
  secure="$AIPC_DIST/bin/asyncipc-secure.exe"
  cp "$cfg" "$work/cfg.before"
  if foreign_owner "$cfg"; then
    w "$AIPC_SETUP" /S; rc=$?
    refused_unchanged 2 "" /dev/null "$pid1"
    check "the config was left as it was" cmp -s "$cfg" "$work/cfg.before"
    own_again "$cfg"
  fi
  # A parent folder everyone may change (Wine maps mode 777 to an Everyone ACE with delete and
  # delete-child rights): a user could rename it and put their own broker in its place.
  mkdir -p "$drive_c/Unsafe"; chmod 777 "$drive_c/Unsafe"
  run_verbatim "\"$(winpath "$AIPC_SETUP")\" /S /D=C:\\Unsafe\\AsyncIPC"; rc=$?
  refused_unchanged 2 "" /dev/null "$pid1"
  check "the refused folder was not created" test ! -e "$drive_c/Unsafe/AsyncIPC"
  run_logged secure w "$secure" install 'C:\Unsafe\AsyncIPC' 'C:\Program Files'
  check "asyncipc-secure gives the reason (rc $rc)" test "$rc" = 3 -a -n "$(grep -F '"C:\Unsafe" grants S-1-1-0' "$work/secure.err")"
  # An existing folder with other content: setup would take over its permissions.
  mkdir -p "$drive_c/Other"; echo other >"$drive_c/Other/readme.txt"
  run_verbatim "\"$(winpath "$AIPC_SETUP")\" /S /D=C:\\Other"; rc=$?
  refused_unchanged 2 "" /dev/null "$pid1"
  check "the other folder is unchanged ($(ls "$drive_c/Other" | tr '\n' ' '))" test "$(ls "$drive_c/Other")" = readme.txt
  run_logged secure w "$secure" install 'C:\Other' 'C:\Program Files'
  check "asyncipc-secure gives the reason (rc $rc)" test "$rc" = 3 -a -n "$(grep -F 'is not empty and holds no AsyncIPC installation' "$work/secure.err")"
  check "Add/Remove Programs still names $old in $pf_win" test "$(arp DisplayVersion)" = "$old" -a "$(arp InstallLocation)" = "$pf_win"

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
  assert_service_account
  assert_data_protected "$cfg" "$data_unix/logs/broker.log"
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
  # Outside Program Files the folder (and the parent setup had to create) gets the install
  # descriptor: as far as Wine shows it, no access for others (a plain new folder here is 755).
  for p in "$drive_c/Apps" "$custom_unix"; do
    check "${p#$drive_c/}: protected, no access for others (mode $(stat -c %a "$p"))" test "$(others_bits "$p")" = 0
  done
  assert_service_running "$custom_win"
  assert_service_account
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
