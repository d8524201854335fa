#!/bin/bash
# bad-input.sh: iscsi-gw against hostile input.
#
#  1. Broken maps: 'iscsi-gw check' must fail and name the JSON pointer of
#     the bad key; 'iscsi-gw serve' with a broken map must fail without
#     ever listening.
#  2. A daemon on a free port, a memory LUN, then t/hostile-client (raw
#     iSCSI: bad PDUs, bad logins, fuzz).  Afterwards the daemon must be
#     alive, its log free of sanitizer reports, and SIGTERM must stop it
#     with exit status 0.
#
# Environment: BUILDDIR (default .), SRCDIR (unused but accepted),
# ISCSI_GW (default $BUILDDIR/iscsi-gw), HOSTILE (default
# $BUILDDIR/t/hostile-client).  Exit 0 pass, 1 fail, 77 skip.

set -u

BUILDDIR=${BUILDDIR:-.}
SRCDIR=${SRCDIR:-}
ISCSI_GW=${ISCSI_GW:-$BUILDDIR/iscsi-gw}
HOSTILE=${HOSTILE:-$BUILDDIR/t/hostile-client}
TARGET=iqn.2026-11.org.example:t

skip() { echo "SKIP: $*"; exit 77; }

[ -x "$ISCSI_GW" ] || skip "no iscsi-gw binary at $ISCSI_GW"
[ -x "$HOSTILE" ] || skip "no hostile-client at $HOSTILE (built only with libiscsi)"
command -v mktemp >/dev/null || skip "mktemp missing"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/iscsi-gw-bad-input.XXXXXX") || skip "mktemp -d failed"
DAEMON_PID=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
pass() { echo "PASS: $*"; }

# Is something listening on 127.0.0.1:$1?
listening() {
	if command -v ss >/dev/null; then
		ss -ltnH "sport = :$1" 2>/dev/null | grep -q .
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

free_port() {
	local p
	if command -v python3 >/dev/null; then
		p=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null)
		if [ -n "$p" ]; then
			echo "$p"
			return 0
		fi
	fi
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! listening "$p"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

if ! command -v python3 >/dev/null && ! command -v ss >/dev/null; then
	skip "need python3 or ss to find a free port"
fi

# A map around one LUN backend, with portal $1.
map() {
	local portal=$1 name=$2 size=$3 extra=${4:-}
	cat <<EOF
{"portals":["$portal"],${extra}"targets":[{"name":"$name","luns":[{"lun":0,"backend":{"type":"memory","size":"$size"}}]}],"iscsi":{"login_timeout":3}}
EOF
}

# ---- 1. broken maps ----

# check_bad NAME EXPECTED-POINTER JSON
check_bad() {
	local what=$1 ptr=$2 json=$3 rc out
	printf '%s\n' "$json" >"$TMP/bad.json"
	out=$("$ISCSI_GW" check --config "$TMP/bad.json" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		fail "check accepted a map with $what: $out"
	elif [ $rc -ge 128 ]; then
		fail "check crashed (status $rc) on a map with $what: $out"
	elif ! grep -qF -- "$ptr" <<<"$out"; then
		fail "check on a map with $what: message lacks '$ptr': $out"
	else
		pass "check rejects $what (status $rc): $out"
	fi
}

PORT=$(free_port) || skip "no free port found"
P="127.0.0.1:$PORT"

printf '%s\n' "$(map "$P" "$TARGET" 16M)" >"$TMP/good.json"
if out=$("$ISCSI_GW" check --config "$TMP/good.json" 2>&1); then
	pass "check accepts the good map: $out"
else
	fail "check refuses the good map: $out"
fi

check_bad 'size "12Q"' /targets/0/luns/0/backend/size "$(map "$P" "$TARGET" 12Q)"
check_bad 'size "-1M"' /targets/0/luns/0/backend/size "$(map "$P" "$TARGET" -1M)"
check_bad 'portal "nope"' /portals/0 "$(map nope "$TARGET" 16M)"
check_bad 'portal port 99999' /portals/0 "$(map 127.0.0.1:99999 "$TARGET" 16M)"
check_bad 'an upper-case IQN' /targets/0/name "$(map "$P" IQN.2026-11.ORG.EXAMPLE:T 16M)"
check_bad 'a mixed-case IQN' /targets/0/name "$(map "$P" iqn.2026-11.org.Example:t 16M)"
check_bad 'a name that is no iSCSI name' /targets/0/name "$(map "$P" "not a name" 16M)"
check_bad 'queue_depth 0' /iscsi/queue_depth \
	"{\"portals\":[\"$P\"],\"iscsi\":{\"queue_depth\":0},\"targets\":[{\"name\":\"$TARGET\",\"luns\":[{\"lun\":0,\"backend\":{\"type\":\"memory\",\"size\":\"16M\"}}]}]}"
check_bad 'an unknown backend type' /targets/0/luns/0/backend \
	"{\"portals\":[\"$P\"],\"targets\":[{\"name\":\"$TARGET\",\"luns\":[{\"lun\":0,\"backend\":{\"type\":\"bogus\",\"size\":\"16M\"}}]}]}"
check_bad 'LUN 0 twice' /targets/0/luns/1/lun \
	"{\"portals\":[\"$P\"],\"targets\":[{\"name\":\"$TARGET\",\"luns\":[{\"lun\":0,\"backend\":{\"type\":\"memory\",\"size\":\"16M\"}},{\"lun\":0,\"backend\":{\"type\":\"memory\",\"size\":\"16M\"}}]}]}"
check_bad 'removable "yes"' /targets/0/luns/0 \
	"{\"portals\":[\"$P\"],\"targets\":[{\"name\":\"$TARGET\",\"luns\":[{\"lun\":0,\"removable\":\"yes\",\"backend\":{\"type\":\"memory\",\"size\":\"16M\"}}]}]}"
check_bad 'portals not an array' /portals \
	"{\"portals\":\"$P\",\"targets\":[{\"name\":\"$TARGET\",\"luns\":[{\"lun\":0,\"backend\":{\"type\":\"memory\",\"size\":\"16M\"}}]}]}"

# serve with a broken map: fails, and never listens on its (valid) portal.
printf '%s\n' "$(map "$P" "$TARGET" 12Q)" >"$TMP/bad-serve.json"
"$ISCSI_GW" serve --config "$TMP/bad-serve.json" >"$TMP/bad-serve.log" 2>&1 &
bad_pid=$!
listened=0
for _ in $(seq 1 50); do
	kill -0 "$bad_pid" 2>/dev/null || break
	if listening "$PORT"; then
		listened=1
		break
	fi
	sleep 0.1
done
if kill -0 "$bad_pid" 2>/dev/null; then
	kill -KILL "$bad_pid" 2>/dev/null
	wait "$bad_pid" 2>/dev/null
	fail "serve with a bad map is still running after 5 s$([ $listened = 1 ] && echo ' and listening')"
else
	wait "$bad_pid"
	rc=$?
	if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
		fail "serve with a bad map exited with status $rc: $(cat "$TMP/bad-serve.log")"
	elif [ $listened = 1 ] || grep -q "listening on" "$TMP/bad-serve.log"; then
		fail "serve with a bad map listened before failing: $(cat "$TMP/bad-serve.log")"
	elif ! grep -qF /targets/0/luns/0/backend/size "$TMP/bad-serve.log"; then
		fail "serve with a bad map: message lacks the JSON pointer: $(cat "$TMP/bad-serve.log")"
	else
		pass "serve with a bad map exits $rc without listening: $(cat "$TMP/bad-serve.log")"
	fi
fi

# ---- 2. the daemon under hostile clients ----

PORT=$(free_port) || skip "no free port found"
printf '%s\n' "$(map "127.0.0.1:$PORT" "$TARGET" 16M)" >"$TMP/map.json"
LOG=$TMP/daemon.log
"$ISCSI_GW" serve --config "$TMP/map.json" >"$LOG" 2>&1 &
DAEMON_PID=$!
up=0
for _ in $(seq 1 100); do
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	if grep -q "listening on" "$LOG" && listening "$PORT"; then
		up=1
		break
	fi
	sleep 0.1
done
if [ $up != 1 ]; then
	echo "daemon log:"
	cat "$LOG"
	fail "the daemon did not start listening on 127.0.0.1:$PORT"
	exit 1
fi
pass "daemon listening on 127.0.0.1:$PORT (pid $DAEMON_PID)"

TIMEOUT=
command -v timeout >/dev/null && TIMEOUT="timeout 600"
$TIMEOUT "$HOSTILE" 127.0.0.1 "$PORT" "$TARGET"
rc=$?
if [ $rc -eq 0 ]; then
	pass "hostile-client: every case passed"
else
	fail "hostile-client exited with status $rc"
fi

if kill -0 "$DAEMON_PID" 2>/dev/null; then
	pass "daemon still alive after the hostile client"
else
	wait "$DAEMON_PID"
	fail "daemon died during the hostile client (status $?)"
	DAEMON_PID=
fi

sanitizer_check() {
	if grep -nE "AddressSanitizer|LeakSanitizer|runtime error" "$LOG" >"$TMP/san" 2>/dev/null; then
		fail "sanitizer report in the daemon log ($1):"
		head -40 "$TMP/san"
	else
		pass "no sanitizer report in the daemon log ($1)"
	fi
}
sanitizer_check "while running"

if [ -n "$DAEMON_PID" ]; then
	kill -TERM "$DAEMON_PID"
	stopped=0
	for _ in $(seq 1 300); do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			stopped=1
			break
		fi
		sleep 0.1
	done
	if [ $stopped = 1 ]; then
		wait "$DAEMON_PID"
		rc=$?
		DAEMON_PID=
		if [ $rc -eq 0 ]; then
			pass "SIGTERM: daemon exited with status 0"
		else
			fail "SIGTERM: daemon exited with status $rc"
		fi
	else
		fail "SIGTERM: daemon still running after 30 s"
	fi
	sanitizer_check "after exit"
fi

if [ $FAILED != 0 ]; then
	echo "daemon log (last 40 lines):"
	tail -40 "$LOG"
	exit 1
fi
exit 0
