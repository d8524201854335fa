#!/bin/bash
# Dropping root: with "user" in the map, the daemon binds a privileged
# port and opens its LUNs as root, then runs as that user (every thread),
# and still serves reads and writes.  Needs root (skips otherwise).
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
