# t/functions.sh: helpers shared by the integration tests (nbdkit style).
# Each test sources this, calls requires for what it needs, start_gw with
# a map, and exits 0 (pass), 1 (fail) or 77 (skip).
#
# Environment: BUILDDIR (default: the current folder), SRCDIR (the source
# tree), ISCSI_GW (the daemon binary; default $BUILDDIR/iscsi-gw).

set -u
: "${SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${BUILDDIR:=$PWD}"
: "${ISCSI_GW:=$BUILDDIR/iscsi-gw}"
CU_SCORE="${CU_SCORE:-$SRCDIR/../shared/tools/cu-score}"
CU_UNION="${CU_UNION:-$SRCDIR/../shared/tools/cu-union}"
[ -f "$CU_SCORE" ] || CU_SCORE=/work/shared/tools/cu-score
[ -f "$CU_UNION" ] || CU_UNION=/work/shared/tools/cu-union

_cleanup_fns=()
cleanup_fn() { _cleanup_fns+=("$*"); }
_run_cleanup() {
	local i
	for ((i=${#_cleanup_fns[@]}-1; i>=0; i--)); do
		eval "${_cleanup_fns[$i]}" || true
	done
}
trap _run_cleanup EXIT
trap 'exit 1' INT TERM

# requires CMD...: skip the test (77) unless each command works.
requires() {
	if ! "$@" >/dev/null 2>&1; then
		echo "$0: SKIP: requires: $*"
		exit 77
	fi
}

fail() { echo "$0: FAIL: $*" >&2; exit 1; }
note() { echo "$0: $*"; }

TMP=$(mktemp -d /tmp/igw-test.XXXXXX)
cleanup_fn "rm -rf '$TMP'"

# A free TCP port on the loopback.
free_port() {
	python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# start_gw MAP [ARGS...]: start the daemon in the background on the map's
# portal, wait until it listens, set GW_PID and GW_LOG.
start_gw() {
	local map=$1; shift
	GW_LOG=$TMP/gw.$RANDOM.log
	"$ISCSI_GW" serve --config "$map" "$@" >"$GW_LOG" 2>&1 &
	GW_PID=$!
	cleanup_fn "stop_gw_quiet $GW_PID"
	local i
	for ((i=0; i<100; i++)); do
		if grep -q "listening on" "$GW_LOG" 2>/dev/null; then
			# Also wait for the LUNs to be announced.
			sleep 0.1
			return 0
		fi
		kill -0 $GW_PID 2>/dev/null || { cat "$GW_LOG" >&2; fail "iscsi-gw exited at start"; }
		sleep 0.1
	done
	cat "$GW_LOG" >&2
	fail "iscsi-gw did not start listening"
}

stop_gw_quiet() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; true; }

# stop_gw: SIGTERM, which must end the daemon with status 0 within 15 s.
stop_gw() {
	local rc i
	kill -TERM $GW_PID 2>/dev/null || fail "iscsi-gw is not running"
	for ((i=0; i<150; i++)); do
		kill -0 $GW_PID 2>/dev/null || break
		sleep 0.1
	done
	kill -0 $GW_PID 2>/dev/null && fail "iscsi-gw did not stop on SIGTERM"
	wait $GW_PID; rc=$?
	[ $rc -eq 0 ] || { cat "$GW_LOG" >&2; fail "iscsi-gw exited with $rc on SIGTERM"; }
	check_log_clean
}

# Sanitizer reports in the daemon's log fail the test.
check_log_clean() {
	if grep -E "AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer" "$GW_LOG" >/dev/null; then
		cat "$GW_LOG" >&2
		fail "sanitizer report in the daemon's log"
	fi
}

# write_map FILE PORT LUNS_JSON [EXTRA_TOP_JSON]
write_map() {
	local file=$1 port=$2 luns=$3 extra=${4:-}
	cat >"$file" <<EOM
{ "portals": ["127.0.0.1:$port"],
  ${extra:+$extra,}
  "targets": [ { "name": "iqn.2026-11.org.example:t1",
                 "luns": [ $luns ] } ] }
EOM
}
TARGET=iqn.2026-11.org.example:t1

# requires_nbdkit_plugin NAME: skip (77) when nbdkit lacks that plugin.
requires_nbdkit_plugin() {
	requires nbdkit --version
	nbdkit --dump-plugin "$1" >/dev/null 2>&1 ||
		{ echo "SKIP: nbdkit has no $1 plugin"; exit 77; }
}

# direct_ok: true when $TMP's file system has O_DIRECT (tmpfs before
# Linux 6.6 has not).
direct_ok() {
	dd if=/dev/zero of="$TMP/probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null
}

# fake_lvm FREE_BYTES: put t/fake-lvm (a stand-in for LVM's commands, for
# machines without device-mapper; see its header) first in PATH with an
# empty volume group vg0 of FREE_BYTES, and detach its loop devices at
# exit.  Skips (77) without root or loop devices.
fake_lvm() {
	requires losetup --version
	requires python3 --version
	[ "$(id -u)" = 0 ] || { echo "SKIP: loop devices need root"; exit 77; }
	export FAKE_LVM_DIR=$TMP/lvm
	mkdir -p "$FAKE_LVM_DIR/vg0"
	echo "$1" > "$FAKE_LVM_DIR/vg0/.free"
	export PATH=$SRCDIR/t/fake-lvm:$PATH
	cleanup_fn _fake_lvm_detach
}
_fake_lvm_detach() {
	local m
	for m in "$FAKE_LVM_DIR"/vg0/*.json; do
		[ -f "$m" ] && losetup -d "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dev"])' "$m")" 2>/dev/null
	done
	true
}

# requires_fuse_view: skip (77) unless /dev/fuse, root and a build of
# iscsi-gw with the FUSE view are there.
requires_fuse_view() {
	[ -c /dev/fuse ] || { echo "$0: SKIP: /dev/fuse is missing"; exit 77; }
	[ "$(id -u)" = 0 ] || { echo "$0: SKIP: mounting the view needs root"; exit 77; }
	"$ISCSI_GW" check --config /dev/stdin >/dev/null 2>&1 <<'EOM' ||
{ "portals": ["127.0.0.1:1"], "fuse_mount": "v", "targets": [] }
EOM
		{ echo "$0: SKIP: this build of iscsi-gw has no FUSE view (libfuse3)"; exit 77; }
}
