#!/bin/bash
# serve --syslog: the log goes to syslog (/dev/log, facility daemon, tag
# iscsi-gw[PID]) instead of stderr.  Run in a private mount namespace
# whose /dev is a fresh tmpfs, where a small datagram listener stands in
# for the system's syslog daemon (this machine has none) at /dev/log; the
# daemon, the socket and the messages are real.
source "$(dirname "$0")/functions.sh"
requires unshare --version
requires python3 --version
[ "$(id -u)" = 0 ] || { echo "SKIP: a mount namespace needs root"; exit 77; }
unshare -m true 2>/dev/null || { echo "SKIP: cannot make a mount namespace here"; exit 77; }

port=$(free_port)
write_map "$TMP/map.json" $port '{ "lun": 0, "backend": { "type": "memory", "size": "1M" } }'
cat >"$TMP/listen.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
PY
unshare -m --propagation private bash -c '
	mount -t tmpfs none /dev || exit 1
	python3 "$1/listen.py" "$1/syslog.txt" &
	l=$!
	for i in $(seq 50); do [ -e "$1/syslog.txt.ready" ] && break; sleep 0.1; done
	"$2" serve --syslog --config "$1/map.json" >"$1/stderr.txt" 2>&1 &
	g=$!
	for i in $(seq 50); do grep -q "listening on" "$1/syslog.txt" 2>/dev/null && break; sleep 0.1; done
	kill -TERM $g; wait $g; echo "exit $?" >"$1/exit.txt"
	kill $l
' _ "$TMP" "$ISCSI_GW" || fail "the namespace run"
cat "$TMP/syslog.txt"
grep -q "exit 0" "$TMP/exit.txt" || fail "serve --syslog: $(cat "$TMP/exit.txt" "$TMP/stderr.txt")"
grep -qE '^<30>.*iscsi-gw\[[0-9]+\]: listening on 127.0.0.1:'"$port" "$TMP/syslog.txt" ||
	fail "no 'listening on' line (daemon.info) in syslog"
grep -qE '^<30>.*iscsi-gw\[[0-9]+\]: stopped' "$TMP/syslog.txt" || fail "no 'stopped' line in syslog"
[ ! -s "$TMP/stderr.txt" ] || fail "serve --syslog wrote to stderr: $(cat "$TMP/stderr.txt")"
note "ok"
