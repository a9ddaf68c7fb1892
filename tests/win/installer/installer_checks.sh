# installer_checks.sh - sourced by run_installer_test.sh (never run alone): the checks of the
# real state after each installer step and the helpers they need. It uses the driver's
# variables (mode, work, WINEPREFIX, SVC, paths and registry keys) and its primitives
# (check, pass, fail, step, w, helper, winpath, run_verbatim); see run_installer_test.sh.
# shellcheck shell=bash

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
