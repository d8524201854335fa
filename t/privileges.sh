#!/bin/bash
# Dropping root: with "user" in the map, the daemon binds a privileged
# port and opens its LUNs as root, then runs as that user (every thread),
# and still serves reads and writes; an nbdkit LUN's server runs as that
# user too, and is restarted when killed.  Needs root (skips otherwise).
source "$(dirname "$0")/functions.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to drop privileges"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "SKIP: no user nobody"; exit 77; }
requires iscsi-inq --help

# A free port below 1024.
port=
for p in $(seq 900 1000); do
	ss -ltn 2>/dev/null | grep -q ":$p " || { port=$p; break; }
done
[ -n "$port" ] || { echo "SKIP: no free privileged port"; exit 77; }
chmod 755 "$TMP"
write_map "$TMP/map.json" $port '{ "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "16M" } }' \
	'"user": "nobody"'
start_gw "$TMP/map.json"
sleep 0.2
[ "$(ps -o user= -p $GW_PID)" = nobody ] || fail "daemon is not running as nobody"
for task in /proc/$GW_PID/task/*; do
	uid=$(awk '/^Uid:/ { print $2 }' "$task/status")
	[ "$uid" = 65534 ] || fail "thread $(basename "$task") runs as uid $uid"
done
grep -q "running as user nobody" "$GW_LOG" || fail "no log line"
url=iscsi://127.0.0.1:$port/$TARGET/0
iscsi-inq $url >/dev/null || fail "INQUIRY"
if command -v iscsi-test-cu >/dev/null; then
	iscsi-test-cu -d -t SCSI.Write10.Simple $url >"$TMP/cu.log" 2>&1 || { cat "$TMP/cu.log"; fail "writes as nobody"; }
fi
stop_gw

# An nbdkit LUN with "user": the gateway's nbdkit runs as the user too, in
# a socket folder the user owns, so that once the daemon is no longer root
# it can restart an nbdkit that died, and stop it at the end.
if grep -q '#define HAVE_LIBNBD 1' "$BUILDDIR/config.h" 2>/dev/null &&
   command -v nbdkit >/dev/null && command -v qemu-img >/dev/null &&
   qemu-img --help | grep -q "Supported formats:.*iscsi"; then
	truncate -s 16M "$TMP/kit.img"
	chown nobody "$TMP/kit.img"
	write_map "$TMP/kit.json" $port "
  { \"lun\": 0, \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"file\",
                              \"args\": [\"file=$TMP/kit.img\"] } }" \
		'"user": "nobody"'
	start_gw "$TMP/kit.json"
	sleep 0.2
	kitpid=$(pgrep -P $GW_PID -x nbdkit | head -1)
	[ -n "$kitpid" ] || fail "no nbdkit child"
	head -c 8388608 /dev/urandom > "$TMP/in.raw"
	url=iscsi://127.0.0.1:$port/$TARGET/0
	qemu-img convert -n -f raw -O raw "$TMP/in.raw" $url || fail "qemu-img in"
	kill -9 $kitpid
	qemu-img convert -f raw -O raw $url "$TMP/out.raw" || fail "read back after killing nbdkit"
	head -c 8388608 "$TMP/out.raw" | cmp - "$TMP/in.raw" || fail "data differs after the restart"
	grep -q "nbdkit file restarted" "$GW_LOG" || { cat "$GW_LOG"; fail "no restart in the log"; }
	kitpid=$(pgrep -P $GW_PID -x nbdkit | head -1)
	[ -n "$kitpid" ] && [ "$(ps -o user= -p $kitpid)" = nobody ] ||
		fail "the restarted nbdkit does not run as nobody"
	# nbdkit listens on the socket it was handed (socket activation).
	sock=$(ss -xlnp | awk -v p="pid=$kitpid," 'index($0, p) {print $5}')
	[ -n "$sock" ] || fail "no listening socket of nbdkit $kitpid"
	sockdir=$(dirname "$sock")
	[ "$(stat -c %U "$sock")" = nobody ] || fail "socket $sock is not nobody's"
	[ "$(stat -c %U "$sockdir")" = nobody ] || fail "socket folder $sockdir is not nobody's"
	stop_gw
	kill -0 $kitpid 2>/dev/null && fail "nbdkit left running after the stop"
	[ -e "$sockdir" ] && fail "socket folder $sockdir left behind"
	echo "ok: as nobody, a killed nbdkit is restarted (as nobody) and stopped at the end"
fi
