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
#        -> install.cmd -> checks (files, service and its account/privileges/failure flag, data
#        folder protection as far as Wine shows it, system Path, programs built with the
#        README's commands verbatim, one linked the MSVC way against asyncipc.lib) -> planted
#        broker.json owner / hard link / logs symlink: refused, running service untouched
#        -> edit config -> busy installation (a stand-in broker that lingers after STOPPED, a
#        client holding asyncipc.dll) -> install.cmd again (waits, keeps the config, renames the
#        held DLL aside, restarts) -> checks -> install.cmd over an invalid config (must fail)
#        -> install.cmd /nopath (the Path entry stays) -> uninstall.cmd while a client holds
#        asyncipc.dll (it goes at the next restart, the output says so; a simulated restart runs
#        the pending deletions) -> checks (keeps config, Path restored) -> uninstall.cmd again
#        -> /purge over a reparse point (refused, kept) -> uninstall.cmd /purge
#  nsis: a system Path over 1024 characters -> Setup-<older>.exe /S -> checks -> refusals
#        (planted broker.json, /D= below a folder everyone may change, /D= a non-empty foreign
#        folder) leave the running install alone -> edit config -> busy installation
#        -> Setup-<version>.exe /S (upgrade) -> checks (as cmd) -> Setup /S /NOPATH over it (the
#        Path entry stays) -> setup over an invalid config (must fail) -> QuietUninstallString
#        _?= -> checks (Path restored exactly) -> Setup /S /NOPATH /D=<custom dir> -> checks
#        (custom folder and its new parent protected, Path untouched) -> uninstall /PURGE
#        -> checks -> Setup /S, uninstall while a client holds asyncipc.dll (exit code 3010, the
#        DLL and its folders go at the next restart; a simulated restart runs them)
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
# ge A B: both are numbers and A >= B.
ge() { [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ]; }
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
  [ -n "${hold_pid:-}" ] && kill "$hold_pid" 2>/dev/null
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
  if [ -e "$AIPC_DIST/lib/asyncipc.lib" ]; then
    check "installed lib/asyncipc.lib (Visual Studio import library)" cmp -s "$d/lib/asyncipc.lib" "$AIPC_DIST/lib/asyncipc.lib"
  else
    echo "note: this build made no asyncipc.lib (no llvm-dlltool/llvm-readobj)"
  fi
  check "installed broker is the built one" cmp -s "$d/bin/asyncipc-broker.exe" "$AIPC_DIST/bin/asyncipc-broker.exe"
  check "installed DLL is the built one" cmp -s "$d/bin/asyncipc.dll" "$AIPC_DIST/bin/asyncipc.dll"
  # Shipped headers and docs refer only to what is shipped: no project-internal SPEC.md, issue
  # numbers or team notes.
  local refs
  refs=$(grep -rnIiE 'SPEC(\.md| section| [0-9])|\bissues? #?[0-9]|see issue|TEAM-NOTES' "$d/include" "$d/docs" 2>/dev/null | head -5)
  check "installed headers and docs cite no unshipped SPEC.md/issues${refs:+: $refs}" test -z "$refs"
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

# readme_block NAME: the fenced block that follows the README line "<!-- installer-test: NAME ...".
readme_block() {
  awk -v m="<!-- installer-test: $1 " 'index($0, m) == 1 { f = 1; next }
    f == 1 && /^```/ { f = 2; next }  f == 2 && /^```/ { exit }  f == 2 { print }' "$AIPC_SOURCE_DIR/README.md"
}

# dll_path INSTALL_DIR_WIN: nothing while the system Path is short (programs find the installed
# asyncipc.dll through it); DIR\bin once it is longer than 1000 characters, which Wine cuts at
# about 1024 when it builds a process environment from the registry (Windows does not).
dll_path() { [ "$(path_reg | wc -c)" -le 1000 ] || echo "$1\bin"; }

# consumer INSTALL_DIR_UNIX INSTALL_DIR_WIN [PIPE]: programs built against the installed package
# with the README's own CMakeLists.txt and commands, run VERBATIM (bash -e on the README's text,
# with ASYNCIPC_SRC = this source tree and ASYNCIPC_DIR = the installation folder): the C
# consumer (consumer.c as the README's main.c) and the C++ consumers (consumer/, C++11 and C++17).
# They run with the installed DLL found through the system PATH the installer set, and talk
# through the installed broker.
consumer() {
  local du=$1 dw=$2 pipe=${3:-} lists cmds d rc out exe
  lists=$(readme_block cmakelists); cmds=$(readme_block cross-build)
  check "README holds the CMakeLists.txt and the cross-build commands the suite runs" \
    test -n "$lists" -a -n "$(grep -c cmake <<<"$cmds")"
  echo "$cmds" | sed 's/^/    README commands: /'
  rm -rf "$work/myapp" "$work/myapp-cpp"; mkdir -p "$work/myapp"
  printf '%s\n' "$lists" >"$work/myapp/CMakeLists.txt"
  cp "$AIPC_SOURCE_DIR/tests/win/installer/consumer/consumer.c" "$work/myapp/main.c"
  cp -r "$AIPC_SOURCE_DIR/tests/win/installer/consumer" "$work/myapp-cpp"
  for d in myapp myapp-cpp; do
    (cd "$work/$d" && export ASYNCIPC_SRC="$AIPC_SOURCE_DIR" ASYNCIPC_DIR="$du" \
       PATH="$(dirname "$AIPC_CMAKE"):$PATH" && bash -e -c "$cmds") >"$work/$d.log" 2>&1; rc=$?
    if [ "$rc" = 0 ]; then
      pass "the README's commands, verbatim, configure and build $d with the project's toolchain file"
    else
      fail "the README's commands, verbatim, configure and build $d (rc $rc): $(tail -20 "$work/$d.log")"
      return
    fi
  done
  check "find_package used the installed package ($(grep -o 'AsyncIPC .* from .*' "$work/myapp-cpp.log"))" \
    grep -qF "from $du/lib/cmake/AsyncIPC" "$work/myapp-cpp.log"
  check "no asyncipc.dll next to the programs (the installed one must be found)" \
    test ! -e "$work/myapp/build/asyncipc.dll" -a ! -e "$work/myapp-cpp/build/asyncipc.dll"
  out=$(WINEPATH=$(dll_path "$dw") w "$work/myapp/build/myapp.exe" $pipe 2>&1 | tr -d '\r'); rc=$?
  echo "$out" | sed 's/^/    myapp: /'
  check "C consumer (README's CMakeLists.txt) exchanged messages (p2p and through the broker) and exited 0" \
    test "$rc" = 0 -a -n "$(grep -x 'PASSED (0 failures)' <<<"$out")"
  for exe in "consumer_cpp11:C++ 201103, string_view no" "consumer_cpp17:C++ 201703, string_view yes"; do
    out=$(WINEPATH=$(dll_path "$dw") w "$work/myapp-cpp/build/${exe%%:*}.exe" $pipe 2>&1 | tr -d '\r'); rc=$?
    echo "$out" | sed "s/^/    ${exe%%:*}: /"
    check "${exe%%:*} (installed asyncipc.hpp/bus.hpp: ${exe#*:}) exchanged messages and exited 0" \
      test "$rc" = 0 -a -n "$(grep '^PASSED' <<<"$out")" -a -n "$(grep -xF "${exe#*:}" <<<"$out")"
  done
  [ -z "$pipe" ] && getting_started "$du" "$dw" "$cmds"
  msvc_consumer "$du" "$dw"
}

# getting_started INSTALL_DIR_UNIX INSTALL_DIR_WIN README_COMMANDS: the programs and the
# CMakeLists.txt of docs/getting-started.md, taken from the page as written, built with the
# README's commands and run against the installed broker (on its default pipe).
getting_started() {
  local du=$1 dw=$2 cmds=$3 g="$work/hello" f out rc
  rm -rf "$g"; mkdir -p "$g"
  for f in hello.c hello.cpp CMakeLists.txt; do
    awk -v m="<!-- getting-started: $f -->" 'index($0, m) == 1 { st = 1; next }
      st == 1 && /^```/ { st = 2; next }  st == 2 && /^```/ { exit }  st == 2 { print }' \
      "$AIPC_SOURCE_DIR/docs/getting-started.md" >"$g/$f"
    check "docs/getting-started.md holds $f" test -s "$g/$f"
  done
  (cd "$g" && export ASYNCIPC_SRC="$AIPC_SOURCE_DIR" ASYNCIPC_DIR="$du" \
     PATH="$(dirname "$AIPC_CMAKE"):$PATH" && bash -e -c "$cmds") >"$g.log" 2>&1; rc=$?
  if [ "$rc" != 0 ]; then
    fail "getting-started programs built with the README's commands (rc $rc): $(tail -20 "$g.log")"
    return
  fi
  pass "getting-started programs built with the README's commands"
  for f in "hello_c:hi from C (from hello-c)" "hello_cpp:hi from C++ (from hello-cpp)"; do
    out=$(WINEPATH=$(dll_path "$dw") w "$g/build/${f%%:*}.exe" 2>&1 | tr -d '\r'); rc=$?
    echo "$out" | sed "s/^/    ${f%%:*}: /"
    check "getting-started ${f%%:*} got its publication back through the broker (rc $rc)" \
      test "$rc" = 0 -a "$out" = "hello/world: ${f#*:}"
  done
}

# msvc_consumer INSTALL_DIR_UNIX INSTALL_DIR_WIN: the Visual Studio way, as far as Linux allows.
# asyncipc.lib must name every function asyncipc.h declares (llvm-nm); a C program compiled by
# clang in MSVC mode (x86_64-pc-windows-msvc, COFF objects as cl.exe makes them) and linked by
# lld-link (link.exe's command line) against the installed asyncipc.lib takes the address of
# every one of them and calls some, then runs with the installed DLL. There is no MSVC C runtime
# here, so it has its own entry point and imports three kernel32 functions (kernel32.lib made
# with llvm-dlltool); wchar.h, which asyncipc.h includes, is a stub for the same reason.
msvc_consumer() {
  local du=$1 dw=$2 lib="$1/lib/asyncipc.lib" m="$work/msvc" names missing extra t out rc
  if [ ! -e "$AIPC_DIST/lib/asyncipc.lib" ]; then
    echo "note: this build made no asyncipc.lib (no llvm-dlltool/llvm-readobj): MSVC checks skipped"
    return
  fi
  check "asyncipc.lib is installed" test -s "$lib"
  names=$(grep -oE '^ASYNCIPC_API[^(]*[^A-Za-z0-9_(]([A-Za-z_][A-Za-z0-9_]*)\(' "$du/include/asyncipc/asyncipc.h" \
          | sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)\($/\1/' | sort -u)
  check "asyncipc.h declares functions ($(wc -w <<<"$names"))" test "$(wc -w <<<"$names")" -gt 20
  for t in llvm-nm clang lld-link llvm-dlltool; do
    command -v $t >/dev/null || { echo "note: $t not found (Debian: llvm, clang, lld): MSVC link test skipped"; return; }
  done
  t=$(llvm-nm "$lib" 2>/dev/null)
  missing=$(for n in $names; do grep -qE " T __imp_$n\$" <<<"$t" || echo "$n"; done)
  check "asyncipc.lib imports every function asyncipc.h declares${missing:+ (missing: $missing)}" test -z "$missing"
  # The .lib is made from the DLL's export table: nothing beyond the header (no cJSON, say).
  extra=$(sed -n 's/.* T __imp_//p' <<<"$t" | sort -u | comm -13 <(tr ' ' '\n' <<<"$names" | sort -u) -)
  check "asyncipc.dll exports nothing asyncipc.h does not declare${extra:+ (extra: $(echo $extra | head -c 300))}" test -z "$extra"
  rm -rf "$m"; mkdir -p "$m/stub"
  printf '/* stand-in for the C runtime'"'"'s wchar.h (none on Linux): wchar_t comes from stddef.h */\n#include <stddef.h>\n' >"$m/stub/wchar.h"
  { echo "#define AIPC_EXPORTS(X) \\"; for n in $names; do echo "    X($n) \\"; done; echo; } >"$m/aipc_exports.h"
  printf 'LIBRARY kernel32.dll\nEXPORTS\n  GetStdHandle\n  WriteFile\n  ExitProcess\n' >"$m/kernel32.def"
  if llvm-dlltool -m i386:x86-64 -d "$m/kernel32.def" -l "$m/kernel32.lib" >"$m/log" 2>&1 \
     && clang --target=x86_64-pc-windows-msvc -ffreestanding -fno-stack-protector -O1 -Wall -Werror \
          -I"$du/include" -I"$m/stub" -I"$m" -c "$AIPC_SOURCE_DIR/tests/win/installer/consumer/msvc_consumer.c" \
          -o "$m/msvc_consumer.obj" >>"$m/log" 2>&1 \
     && lld-link /nologo /entry:start /subsystem:console /nodefaultlib /out:"$m/msvc_consumer.exe" \
          "$m/msvc_consumer.obj" /libpath:"$du/lib" asyncipc.lib "$m/kernel32.lib" >>"$m/log" 2>&1; then
    pass "a program compiled in MSVC mode links with lld-link against the installed asyncipc.lib"
  else
    fail "MSVC-mode build against asyncipc.lib: $(tail -20 "$m/log")"
    return
  fi
  out=$(WINEPATH=$(dll_path "$dw") w "$m/msvc_consumer.exe" 2>&1 | tr -d '\r'); rc=$?
  echo "$out" | sed 's/^/    msvc_consumer: /'
  check "the MSVC-linked program runs with the installed asyncipc.dll (rc $rc)" \
    test "$rc" = 0 -a -n "$(grep -x PASSED <<<"$out")"
}

# assert_event_source INSTALL_DIR_WIN: the Application-log source AsyncIPCBroker names the
# installed broker as its message file, and that file's message table turns the broker's event
# ids (1000 + the service-specific exit code) into text, as Event Viewer does (Wine's event log
# keeps no events, so the lookup is what can be checked).
evkey="HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\$SVC"
evval() { w reg query "$evkey" /v "$1" 2>/dev/null | tr -d '\r' | sed -n "s/^ *$1 *REG_[A-Z_]* *//p"; }
assert_event_source() {
  local exe="$1\bin\asyncipc-broker.exe" id out
  check "event source EventMessageFile is the installed broker (got '$(evval EventMessageFile)')" \
    test "$(evval EventMessageFile)" = "$exe"
  check "event source TypesSupported is 7 (got '$(evval TypesSupported)')" test "$(( $(evval TypesSupported) ))" = 7
  for id in 1001 1002 1003 1004 1005; do
    out=$(helper message "$exe" $id "AsyncIPC Broker could not start (test $id)")
    check "the broker's message table reads event $id as text (got '$out')" \
      test "$out" = "AsyncIPC Broker could not start (test $id)"
  done
}
event_source_gone() { ! w reg query "$evkey" >/dev/null 2>&1; }

# ---- the system PATH ----------------------------------------------------------------------------
envkey='HKLM\System\CurrentControlSet\Control\Session Manager\Environment'
# path_reg: the system Path as the registry holds it (unexpanded). reg.exe under a loaded Wine
# occasionally fails to start: an empty answer is asked again, at most 3 times (Path is never
# empty here).
path_reg() {
  local v= i
  for i in 1 2 3; do
    v=$(w reg query "$envkey" /v Path 2>/dev/null | tr -d '\r' | sed -n 's/^ *Path *REG_[A-Z_]* *//Ip')
    [ -n "$v" ] && break
  done
  printf '%s\n' "$v"
}
# path_count DIR_WIN: how many entries of the system Path name DIR_WIN (any case).
path_count() { tr ';' '\n' <<<"$(path_reg)" | grep -cixF -- "$1"; }
# long_path: the prefix's Path made longer than the 1024 characters an NSIS string or setx holds,
# with an empty entry and a %VARIABLE% entry that must survive as they are; its value in $path0.
long_path() {
  local p i
  p=$(path_reg)
  for i in $(seq -w 1 60); do p="$p;C:\aipc-test\unrelated-folder-$i"; done
  p="$p;;%SystemRoot%\aipc-test-expand"
  w reg add "$envkey" /v Path /t REG_EXPAND_SZ /d "$p" /f >/dev/null
  path0=$(path_reg)
  check "the system Path was made ${#path0} characters long" test "${#path0}" -gt 2000 -a "$path0" = "$p"
}
# assert_on_path DIR_WIN: the installer appended DIR_WIN\bin once and kept the rest; a new
# Command Prompt runs the installed programs by name.
assert_on_path() {
  local bin="$1\bin" out
  check "the system Path is the old one plus ;$bin (length ${#path0} -> $(path_reg | wc -c))" \
    test "$(path_reg)" = "$path0;$bin"
  check "$bin is in the system Path once (got $(path_count "$bin"))" test "$(path_count "$bin")" = 1
  if [ "$(path_reg | wc -c)" -le 1000 ]; then
    out=$(w cmd /c "asyncipc-broker --version" 2>&1 | tr -d '\r')
    check "a new Command Prompt runs asyncipc-broker by name (got '$out')" \
      test "$out" = "asyncipc-broker $AIPC_VERSION"
  else
    echo "note: Wine cuts a Path read from the registry at about 1024 characters: running by name is checked with a short Path"
  fi
}
assert_path_restored() {
  local now
  now=$(path_reg)
  check "the system Path is back to what it was before the installation (${#path0} characters; now ${#now}${now:+, ends '${now: -60}'})" \
    test "$now" = "$path0"
}

# assert_failure_flag: failure actions also after a stop with an error exit code - what
# "sc failureflag NAME 1" sets, as the service manager reports it, or (Wine's sc has no
# failureflag) the registry value the installers write instead.
assert_failure_flag() {
  if [ -n "$(svc_field failure_flag)" ]; then
    check "failure actions flag (non-crash failures) is 1" test "$(svc_field failure_flag)" = 1
  else
    echo "note: this service manager does not report the failure actions flag (Wine: error $(svc_field failure_flag_query_error))"
  fi
  check "registry FailureActionsOnNonCrashFailures is 1 (got '$(regval FailureActionsOnNonCrashFailures)')" \
    test "$(( $(regval FailureActionsOnNonCrashFailures) ))" = 1
}

# ---- an upgrade over a busy installation ---------------------------------------------------------
# prepare_busy INSTALL_DIR_UNIX INSTALL_DIR_WIN: the service's binary becomes the helper's broker
# stand-in, which reports STOPPED and then keeps running (its .exe in use) for 3 s, and a client
# process holds the installed asyncipc.dll. Sets pid1 (the stand-in) and hold_pid.
prepare_busy() {
  local du=$1 dw=$2
  w sc stop "$SVC" >/dev/null 2>&1
  check "the broker stopped for the stand-in" w "$AIPC_HELPER" wait "$SVC" STOPPED 30000
  # A new file, not written into the one the old process may still map.
  rm -f "$du/bin/asyncipc-broker.exe" "$du/bin/asyncipc-broker.exe.linger.log" "$du/bin/"*.old
  cp "$AIPC_HELPER" "$du/bin/asyncipc-broker.exe"
  w sc start "$SVC" >/dev/null 2>&1
  check "the lingering stand-in runs as the service" w "$AIPC_HELPER" wait "$SVC" RUNNING 30000
  svc_query; pid1=$(svc_field pid)
  hold_dll "$dw"
}
# hold_dll INSTALL_DIR_WIN: a client process that loaded the installed asyncipc.dll (hold_pid).
hold_dll() {
  local i
  timeout 600 "$AIPC_WINE" "$AIPC_HELPER" hold-dll "$1\bin\asyncipc.dll" 500 >"$work/hold.out" 2>&1 &
  hold_pid=$!
  for i in $(seq 1 100); do grep -q '^loaded' "$work/hold.out" 2>/dev/null && break; sleep 0.2; done
  check "a client process holds the installed asyncipc.dll" grep -q '^loaded' "$work/hold.out"
}
# assert_busy_handled INSTALL_DIR_UNIX [INSTALLER_OUTPUT]: after the upgrade over prepare_busy:
# the installer waited for the stand-in's process to exit before writing asyncipc-broker.exe
# (the new file is younger than the exit, and needed no renaming), and replaced the held
# asyncipc.dll by renaming it aside (deleted at the next restart) while the client runs on.
assert_busy_handled() {
  local du=$1 outf=${2:-} log="$1/bin/asyncipc-broker.exe.linger.log" stopped exited written pending waited
  stopped=$(sed -n 's/^stopped //p' "$log" 2>/dev/null | tail -n1 | tr -d '\r')
  exited=$(sed -n 's/^exiting //p' "$log" 2>/dev/null | tail -n1 | tr -d '\r')
  written=$(find "$du/bin/asyncipc-broker.exe" -printf '%C@' 2>/dev/null | awk '{ printf "%.0f", $1 * 1000 }')
  check "the stand-in reported STOPPED, then exited about 3 s later (stopped $stopped, exited $exited)" \
    ge "$exited" "$(( ${stopped:-0} + 2500 ))"
  check "asyncipc-broker.exe was replaced after the old process exited (exit $exited ms, written $written ms)" \
    ge "$written" "$exited"
  check "the installed broker is the built one" cmp -s "$du/bin/asyncipc-broker.exe" "$AIPC_DIST/bin/asyncipc-broker.exe"
  check "asyncipc-broker.exe needed no renaming (it was free when copied): $(ls "$du/bin" | tr '\n' ' ')" \
    test -z "$(ls "$du/bin" | grep '^asyncipc-broker\.exe\..*old$')"
  check "the held asyncipc.dll was renamed aside to asyncipc.dll.1.old" test -e "$du/bin/asyncipc.dll.1.old"
  check "the new asyncipc.dll is in place" cmp -s "$du/bin/asyncipc.dll" "$AIPC_DIST/bin/asyncipc.dll"
  pending=$(w reg query 'HKLM\System\CurrentControlSet\Control\Session Manager' /v PendingFileRenameOperations 2>/dev/null | tr -d '\r')
  check "asyncipc.dll.1.old is deleted at the next restart (PendingFileRenameOperations)" \
    grep -qiF 'AsyncIPC\bin\asyncipc.dll.1.old' <<<"$pending"
  check "the client holding the old DLL still runs" kill -0 "$hold_pid"
  if [ -n "$outf" ]; then
    waited=$(sed -n 's/.*exited \([0-9]*\) ms after the service manager reported STOPPED.*/\1/p' "$outf" | tail -n1)
    check "the installer says it waited for the broker's process (${waited:-?} ms after STOPPED)" \
      ge "$waited" 2000
    check "the installer says asyncipc.dll was in use and its old copy goes at the next restart" \
      grep -q 'asyncipc.dll" is in use by a running program.*deleted at the next restart' "$outf"
  fi
  kill "$hold_pid" 2>/dev/null; wait "$hold_pid" 2>/dev/null; hold_pid=
  rm -f "$log" "$du/bin/"*.old
}

# ---- an uninstall while a client holds asyncipc.dll ----------------------------------------------
# pending_ops: PendingFileRenameOperations, one name per line (the pairs' empty targets dropped,
# a folder's trailing backslash too: NSIS writes one, MoveFileEx callers need not).
pending_ops() {
  w reg query 'HKLM\System\CurrentControlSet\Control\Session Manager' /v PendingFileRenameOperations \
    2>/dev/null | tr -d '\r' | sed -n 's/^ *PendingFileRenameOperations *REG_MULTI_SZ *//p' |
    sed 's/\\0/\n/g' | grep -v '^$' | sed 's/\\$//'
}
# pending_line SUFFIX: the line number of the first pending operation ending with SUFFIX (0 if
# none; compared as a plain string).
pending_line() {
  pending_ops | SUF=$1 awk 'substr($0, length($0) - length(ENVIRON["SUF"]) + 1) == ENVIRON["SUF"] { n = NR; exit }
                            END { print n + 0 }'
}
# assert_held_uninstalled UNIX_DIR "LEFT" [OUTPUT]: after an uninstall while hold_dll's client
# ran: all but the held DLL is gone now (LEFT: what `find` still lists, sorted, space-separated);
# the DLL, then bin, then the folder are deleted at the next restart; the uninstaller said so
# (OUTPUT); the client ran on. Then the client ends and Windows restarts - simulated by
# `wineboot -r`, which runs the pending operations as Windows does while it boots: bin is gone.
assert_held_uninstalled() {
  local du=$1 want=$2 outf=${3:-} left dll bin top
  left=$(cd "$du" 2>/dev/null && find . -mindepth 1 | sort | tr '\n' ' ')
  check "only what was in use is left until the restart (want '$want', got '$left')" test "$left" = "$want"
  dll=$(pending_line "${du##*/}\\bin\\asyncipc.dll")
  bin=$(pending_line "${du##*/}\\bin")
  top=$(pending_line "\\${du##*/}")
  check "asyncipc.dll, then bin, then the folder are deleted at the next restart (PendingFileRenameOperations lines $dll, $bin, $top of: $(pending_ops | tr '\n' ' '))" \
    test "$dll" -gt 0 -a "$bin" -gt "$dll" -a "$top" -gt "$bin"
  check "the client holding the DLL still runs" kill -0 "$hold_pid"
  if [ -n "$outf" ]; then
    check "the uninstaller says asyncipc.dll is in use and goes at the next restart" \
      grep -q 'asyncipc.dll" is in use by a running program; it is deleted at the next restart' "$outf"
  fi
  kill "$hold_pid" 2>/dev/null; wait "$hold_pid" 2>/dev/null; hold_pid=
  w wineboot -r >/dev/null 2>&1
  check "after the (simulated) restart bin is gone" test ! -e "$du/bin"
  check "... and nothing is pending any more ($(pending_ops | wc -l) operations)" test -z "$(pending_ops)"
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

  step "asyncipc-secure remove-tree (uninstall.cmd's removal) never follows a link inside"
  mkdir -p "$work/rt/AsyncIPC/bin" "$work/rt-target/deep"
  echo keep >"$work/rt-target/deep/keep.txt"; echo x >"$work/rt/AsyncIPC/bin/aipc.exe"
  ln -s "$work/rt-target" "$work/rt/AsyncIPC/link"
  run_logged removetree w "$AIPC_DIST/bin/asyncipc-secure.exe" remove-tree "$(winpath "$work/rt/AsyncIPC")"
  check "what the link points to is untouched (rc $rc)" test -s "$work/rt-target/deep/keep.txt"
  # Windows removes the link itself; Wine cannot remove a Unix symbolic link to a folder
  # through the Win32 API, and then the removal fails naming it.
  check "the link was removed, or the failure names it (rc $rc)" \
    eval 'test "$rc" = 0 -a ! -e "$work/rt/AsyncIPC/link" || grep -q "removing the link \".*AsyncIPC.link\"" "$work/removetree.err"'
  rm -rf "$work/rt" "$work/rt-target"

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
  path0=$(path_reg)
  run_logged install w cmd /c "$inst_cmd"
  check "install.cmd exits 0 (rc $rc)" test "$rc" = 0
  check "the data folder was created with its descriptor" grep -qF "created \"$data_win\" (data): O:BA" "$work/install.out"
  check "the logs folder was created with its descriptor" grep -qF "created \"$data_win\\logs\" (logs): O:BA" "$work/install.out"
  # Wine's sc.exe has no privs/sidtype: the script must say so and write the registry instead.
  check "install.cmd warns that sc.exe privs is unavailable" grep -q 'warning: .*sc.exe" privs failed' "$work/install.err"
  check "install.cmd warns that sc.exe sidtype is unavailable" grep -q 'warning: .*sc.exe" sidtype failed' "$work/install.err"
  check "install.cmd warns that sc.exe failureflag is unavailable" grep -q 'warning: .*sc.exe" failureflag failed' "$work/install.err"
  assert_files "$pf_unix"
  assert_default_config
  assert_data_protected "$cfg"
  assert_service_running "$pf_win"
  assert_service_account
  assert_failure_flag
  assert_event_source "$pf_win"
  assert_on_path "$pf_win"
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

  step "edit the config, run install.cmd again over a lingering broker process and a held asyncipc.dll"
  sed -i 's/"pipe_name": "asyncipc.broker"/"pipe_name": "asyncipc.reinstalled"/' "$cfg"
  check "config edited" grep -q asyncipc.reinstalled "$cfg"
  cp "$cfg" "$work/broker.json.edited"
  prepare_busy "$pf_unix" "$pf_win"
  run_logged reinstall w cmd /c "$inst_cmd"
  check "install.cmd again exits 0 (rc $rc)" test "$rc" = 0
  assert_busy_handled "$pf_unix" "$work/reinstall.out"
  check "edited config kept byte for byte" cmp -s "$cfg" "$work/broker.json.edited"
  assert_data_protected "$cfg" "$data_unix/logs/broker.log"
  assert_service_running "$pf_win"
  assert_service_account
  check "service was restarted (pid $pid1 -> $(svc_field pid))" test "$(svc_field pid)" != "$pid1"
  assert_failure_flag
  assert_on_path "$pf_win"
  pubsub_roundtrip "$pf_win" asyncipc.reinstalled

  step "install.cmd /nopath over the installation: the system Path keeps the entry added before"
  run_logged nopath w cmd /c "$inst_cmd" /nopath
  check "install.cmd /nopath exits 0 (rc $rc)" test "$rc" = 0
  assert_on_path "$pf_win"
  assert_service_running "$pf_win"

  step "install.cmd over an invalid config"
  broken_config_fails w cmd /c "$inst_cmd"
  check "install.cmd names the cause" grep -q "stopped while starting" "$work/broken.err"

  step "uninstall.cmd (service registered but stopped) while a client holds asyncipc.dll"
  hold_dll "$pf_win"
  run_logged uninstall w cmd /c "$uninst_cmd"
  check "uninstall.cmd exits 0 (rc $rc)" test "$rc" = 0
  assert_held_uninstalled "$pf_unix" "./bin ./bin/asyncipc.dll " "$work/uninstall.out"
  svc_query
  check "service is gone" test "$(svc_field exists)" = 0
  check "program files are gone" test ! -e "$pf_unix"
  check "config kept" cmp -s "$cfg" "$work/broker.json.edited"
  assert_path_restored
  check "the event source is unregistered" event_source_gone
  w cmd /c "$uninst_cmd"; rc=$?
  check "uninstall.cmd with nothing installed exits 0 (rc $rc)" test "$rc" = 0
  assert_path_restored
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

  # reg.exe under a loaded Wine occasionally fails to start (ERROR_INTERNAL_ERROR): an empty
  # answer is asked again, at most 3 times, before it counts.
  arp() {
    local v= i
    for i in 1 2 3; do
      v=$(w reg query "$arpkey" /v "$1" 2>/dev/null | tr -d '\r' | sed -n "s/^ *$1 *REG_[A-Z_]* *//p")
      [ -n "$v" ] && break
    done
    printf '%s\n' "$v"
  }
  arp_gone() { ! w reg query "$arpkey" >/dev/null 2>&1; }
  assert_arp() { # VERSION INSTALL_DIR_WIN
    check "ARP DisplayName AsyncIPC" test "$(arp DisplayName)" = AsyncIPC
    check "ARP DisplayVersion $1 (got '$(arp DisplayVersion)')" test "$(arp DisplayVersion)" = "$1"
    check "ARP InstallLocation $2 (got '$(arp InstallLocation)')" test "$(arp InstallLocation)" = "$2"
    check "ARP UninstallString" test "$(arp UninstallString)" = "\"$2\\uninstall.exe\""
    check "ARP QuietUninstallString" test "$(arp QuietUninstallString)" = "\"$2\\uninstall.exe\" /S"
    check "ARP Publisher" test -n "$(arp Publisher)"
    check "ARP EstimatedSize > 0 KB ($(arp EstimatedSize))" test $(( $(arp EstimatedSize) )) -gt 0
  }

  step "static check: full paths in the scripts"
  assert_full_paths

  step "fresh silent install of $old (over a system Path longer than 1024 characters)"
  long_path
  w "$work/AsyncIPC-Setup-$old.exe" /S; rc=$?
  check "setup $old /S exits 0 (rc $rc)" test "$rc" = 0
  assert_files "$pf_unix"
  check "uninstaller written" test -s "$pf_unix/uninstall.exe"
  check "asyncipc-secure.exe is not installed" test ! -e "$pf_unix/bin/asyncipc-secure.exe"
  assert_default_config
  assert_data_protected "$cfg"
  assert_service_running "$pf_win"
  assert_service_account
  assert_failure_flag
  assert_event_source "$pf_win"
  assert_arp "$old" "$pf_win"
  assert_on_path "$pf_win"
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

  step "edit the config, upgrade to $AIPC_VERSION over a lingering broker process and a held asyncipc.dll"
  sed -i 's/"pipe_name": "asyncipc.broker"/"pipe_name": "asyncipc.upgraded"/' "$cfg"
  check "config edited" grep -q asyncipc.upgraded "$cfg"
  cp "$cfg" "$work/broker.json.edited"
  rm -f "$pf_unix/bin/aipc.exe"      # the upgrade must put every file back
  prepare_busy "$pf_unix" "$pf_win"
  w "$AIPC_SETUP" /S; rc=$?
  check "setup $AIPC_VERSION /S over $old exits 0 (rc $rc)" test "$rc" = 0
  assert_busy_handled "$pf_unix"
  check "edited config kept byte for byte" cmp -s "$cfg" "$work/broker.json.edited"
  assert_files "$pf_unix"
  assert_service_running "$pf_win"
  check "service was restarted by the upgrade (pid $pid1 -> $(svc_field pid))" test "$(svc_field pid)" != "$pid1"
  assert_service_account
  assert_data_protected "$cfg" "$data_unix/logs/broker.log"
  assert_arp "$AIPC_VERSION" "$pf_win"
  assert_failure_flag
  assert_on_path "$pf_win"
  pubsub_roundtrip "$pf_win" asyncipc.upgraded
  consumer "$pf_unix" "$pf_win" asyncipc.upgraded

  step "setup /S /NOPATH over the installation: the system Path keeps the entry added before"
  w "$AIPC_SETUP" /S /NOPATH; rc=$?
  check "setup $AIPC_VERSION /S /NOPATH over $AIPC_VERSION exits 0 (rc $rc)" test "$rc" = 0
  assert_on_path "$pf_win"
  assert_service_running "$pf_win"

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
  check "the event source is unregistered" event_source_gone
  check "config kept" cmp -s "$cfg" "$work/broker.json.edited"
  assert_path_restored

  step "silent install into a custom folder (/D=) without the PATH entry (/NOPATH), uninstall with /PURGE"
  custom_win='C:\Apps\AsyncIPC Custom'
  custom_unix="$drive_c/Apps/AsyncIPC Custom"
  run_verbatim "\"$(winpath "$AIPC_SETUP")\" /S /NOPATH /D=$custom_win"; rc=$?
  check "setup /S /NOPATH /D= exits 0 (rc $rc)" test "$rc" = 0
  check "/NOPATH: the system Path was left alone" test "$(path_reg)" = "$path0"
  assert_files "$custom_unix"
  # Outside Program Files the folder (and the parent setup had to create) gets the install
  # descriptor: as far as Wine shows it, no access for others (a plain new folder here is 755).
  for p in "$drive_c/Apps" "$custom_unix"; do
    check "${p#$drive_c/}: protected, no access for others (mode $(stat -c %a "$p"))" test "$(others_bits "$p")" = 0
  done
  assert_service_running "$custom_win"
  assert_service_account
  assert_event_source "$custom_win"
  check "config still kept" cmp -s "$cfg" "$work/broker.json.edited"
  check "ARP InstallLocation is the custom folder" test "$(arp InstallLocation)" = "$custom_win"
  run_verbatim "\"$custom_win\\uninstall.exe\" /S /PURGE _?=$custom_win"; rc=$?
  check "uninstaller /PURGE exits 0 (rc $rc)" test "$rc" = 0
  svc_query
  check "service is gone" test "$(svc_field exists)" = 0
  check "custom folder holds only uninstall.exe" test "$(ls "$custom_unix" 2>/dev/null)" = uninstall.exe
  check "Add/Remove Programs entry is gone" arp_gone
  check "/PURGE removed %ProgramData%\\AsyncIPC" test ! -e "$drive_c/ProgramData/AsyncIPC"
  assert_path_restored

  step "silent install, then a silent uninstall while a client holds asyncipc.dll"
  rm -rf "$custom_unix"
  w "$AIPC_SETUP" /S; rc=$?
  check "setup /S exits 0 (rc $rc)" test "$rc" = 0
  assert_service_running "$pf_win"
  hold_dll "$pf_win"
  code=$(run_verbatim "\"$pf_win\\uninstall.exe\" /S _?=$pf_win" | tr -d '\r' | sed -n 's/^exit code //p')
  check "the uninstaller exits 3010, success with a restart to finish (exit code $code)" test "$code" = 3010
  svc_query
  check "service is gone" test "$(svc_field exists)" = 0
  check "Add/Remove Programs entry is gone" arp_gone
  assert_path_restored
  assert_held_uninstalled "$pf_unix" "./bin ./bin/asyncipc.dll ./uninstall.exe "
  check "after the restart only uninstall.exe (run in place) is left" \
    test "$(ls "$pf_unix" 2>/dev/null)" = uninstall.exe
else
  echo "FAIL: unknown mode $mode"; exit 2
fi

step "done: $checks checks, $failures failures"
[ "$failures" = 0 ]
