#!/usr/bin/env bash
# run_demo_test.sh SOURCE_DIR BUILD_DIR - runs the bus and point-to-point parts of tools/demo.sh
# on BUILD_DIR's programs and checks the transcript: exit 0; every line of the bus part is
# labelled with the process that printed it; every client has a name (nothing "anonymous"); the
# story is in causal order (each client's command, its output, the subscriber seeing it); the
# stats come as a table; the broker's log is its own labelled section; every line of the
# point-to-point parts is labelled server or client.
set -uo pipefail
src=${1:?usage: run_demo_test.sh SOURCE_DIR BUILD_DIR} build=${2:?usage: run_demo_test.sh SOURCE_DIR BUILD_DIR}
failures=0
check() { local d=$1; shift; if "$@"; then echo "ok: $d"; else echo "FAIL: $d"; failures=$((failures + 1)); fi; }

t0=$(date +%s)
out=$(AIPC_DEMO_PREBUILT=1 AIPC_DEMO_PARTS="bus c cpp" AIPC_BUILD_DIR="$build" bash "$src/tools/demo.sh" 2>&1)
rc=$?
echo "---- demo transcript ($(( $(date +%s) - t0 )) s)"
printf '%s\n' "$out"
echo "----"
check "demo.sh exits 0 (rc $rc)" test "$rc" = 0
check "the bus part ends OK" grep -qx '== demo: broker + bus clients OK' <<<"$out"

# The part's lines after its legend (which ends at the first blank line).
body=$(sed -n '/^== demo: broker + bus clients (pipe/,/^== demo: broker + bus clients OK/p' <<<"$out" |
       sed '1,/^$/d' | sed '$d')
labels='\[(broker|svc/sub|alice/pub|bob/aipc|carol/aipc|admin/aipc)\] '
unlabelled=$(grep -v '^$' <<<"$body" | grep -Ev "^$labels")
check "every line of the bus part is labelled (unlabelled: '$unlabelled')" test -z "$unlabelled"
for l in broker svc/sub alice/pub bob/aipc carol/aipc admin/aipc; do
  check "[$l] lines are there" grep -q "^\[$l\] " <<<"$body"
done
check "no client is anonymous" test -z "$(grep -i anonymous <<<"$out")"
# line NUMBER of the first (or last, with -l) line matching a regex, 0 when none
first() { grep -nE -m1 -- "$1" <<<"$body" | cut -d: -f1 | grep . || echo 0; }
last() { grep -nE -- "$1" <<<"$body" | tail -n1 | cut -d: -f1 | grep . || echo 0; }
readings='^\[svc/sub\] +\[example/temperature(, retained)?\] from alice \(id [0-9]+, pid [0-9]+\): '
check "the subscriber got 5 readings from alice" test "$(grep -cE "$readings" <<<"$body")" = 5
check "alice printed 5 readings" test "$(grep -cE '^\[alice/pub\] +published example/temperature: ' <<<"$body")" = 5
check "... before the subscriber printed the first" test "$(last '^\[alice/pub\] +published')" -lt "$(first "$readings")"
check "alice got example-svc's answer" grep -qE '^\[alice/pub\] +reply from example-svc: it is ' <<<"$body"
check "carol got example-svc's answer before alice started" \
  test "$(first '^\[carol/aipc\] +it is ')" -gt 0 -a "$(first '^\[carol/aipc\] +it is ')" -lt "$(first '^\[alice/pub\]')"
note='^\[svc/sub\] +\[example/note\] from bob \(id [0-9]+, pid [0-9]+\): hello from aipc.exe$'
check "the subscriber got bob's note once" test "$(grep -cE "$note" <<<"$body")" = 1
check "... after its readings" test "$(first "$note")" -gt "$(last "$readings")"
check "the subscriber saw the named clients come and go" \
  grep -qE '^\[svc/sub\] +\* (alice|bob|carol) (joined|left) ' <<<"$body"
# The story in causal order: each client's command, its output, then the subscriber seeing it
# leave (or its publications), before the next client starts.
prev=0 prev_re=start
for re in '^\[svc/sub\] +state: connected' '^\[admin/aipc\] +> aipc.exe ping ' \
          '^\[admin/aipc\] +pong from ' '^\[svc/sub\] +\* admin left ' \
          '^\[carol/aipc\] +> aipc.exe req example-svc ' '^\[carol/aipc\] +it is ' \
          '^\[svc/sub\] +\* carol left ' '^\[alice/pub\] +> bus_publisher.exe ' \
          '^\[alice/pub\] +published ' "$readings" '^\[svc/sub\] +\* alice left ' \
          '^\[bob/aipc\] +> aipc.exe pub example/note ' "$note" \
          '^\[admin/aipc\] +> aipc.exe stats ' '^\[admin/aipc\] +broker stats:$' '^\[broker\] '; do
  n=$(first "$re")
  check "in order: '$re' (line $n) after '$prev_re' (line $prev)" test "$n" -gt "$prev"
  prev=$n prev_re=$re
done
check "the stats are a table" grep -qE '^\[admin/aipc\] +broker stats:$' <<<"$body"
check "... with the clients row" grep -qE '^\[admin/aipc\] +  clients connected now / since start +[0-9]+ / [0-9]+$' <<<"$body"
check "... and the deliveries row" grep -qE '^\[admin/aipc\] +  deliveries to subscribers / dropped +[0-9]+ / 0$' <<<"$body"
check "the broker's log is the last section" test "$(first '^\[broker\] ')" -gt "$(last '^\[(svc/sub|admin/aipc)\] ')"
check "the broker's log says where it listened" grep -qE '^\[broker\] .*listening on ' <<<"$body"

# The point-to-point parts: server and client lines, each labelled.
for t in "c:C server + C client" "cpp:C++ server + C++ client"; do
  tag=${t%%:*} title=${t#*:}
  check "$title ends OK" grep -qxF "== demo: $title OK" <<<"$out"
  part=$(awk -v h="== demo: $title (" -v e="== demo: $title OK" \
             'index($0, h) == 1 { on = 1; next } $0 == e { on = 0 } on' <<<"$out")
  bad=$(grep -v '^$' <<<"$part" | grep -Ev "^\[$tag/(server|client)\] ")
  check "$title: every line labelled [$tag/server] or [$tag/client] (others: '$bad')" test -z "$bad"
  check "$title: the client got its echoes" grep -qE "^\[$tag/client\] +client(\+\+)?: exit 0 \(5/5 echoes\)" <<<"$part"
  check "$title: the server saw them" grep -qE "^\[$tag/server\] +server(\+\+)?: .*5 messages echoed" <<<"$part"
done

echo "demo test: $failures failure(s)"
[ "$failures" = 0 ]
