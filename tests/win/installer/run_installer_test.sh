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

# The state checks and helpers of every step (service, files, descriptors, Path, programs
# built from the docs, busy upgrades and uninstalls) are in installer_checks.sh.
. "$(dirname "${BASH_SOURCE[0]}")/installer_checks.sh"

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
