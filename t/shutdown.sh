#!/bin/bash
# SIGTERM with commands in flight: the daemon stops accepting, finishes
# what it received, sends the responses, closes the backends and exits 0;
# every write that got GOOD is in the backing file afterwards (write_cache
# false: it was stable before its status).  A second daemon on the same
# port starts at once (the port was released).
source "$(dirname "$0")/functions.sh"
requires python3 --version

port=$(free_port)
write_map "$TMP/map.json" $port '{ "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "64M" } }'
start_gw "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$GW_PID" "$TMP/lun0.img" <<'PY' || fail "in-flight writes"
import sys, os, signal, struct
from iscsi_raw import Conn
port, target, pid, img = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = Conn("127.0.0.1", port)
assert c.login("iqn.2026-11.org.example:sd", target)[0] == 0
blocks = 128                      # 64 KiB per write
sent = {}
for i in range(48):
    lba = i * blocks
    data = bytes([i + 1]) * (blocks * 512)
    cdb = struct.pack(">BBIBHB", 0x2a, 0, lba, 0, blocks, 0)
    # All the data as immediate data (under FirstBurstLength).
    itt = c.next_itt()
    bhs = bytearray(48)
    bhs[0] = 0x01; bhs[1] = 0x80 | 0x20
    struct.pack_into(">IIII", bhs, 16, itt, len(data), c.cmdsn, c.exp_statsn)
    c.cmdsn += 1
    bhs[32:42] = cdb
    c.send(bhs, data)
    sent[itt] = (lba, i + 1)
os.kill(pid, signal.SIGTERM)
good = set()
try:
    while True:
        r, d = c.recv()
        op = r[0] & 0x3f
        if op == 0x21:
            itt = struct.unpack_from(">I", r, 16)[0]
            if r[3] == 0:
                good.add(itt)
        elif op == 0x31:   # R2T: send the data asked for
            itt, ttt = struct.unpack_from(">II", r, 16)
            off, ln = struct.unpack_from(">II", r, 40)
            lba, v = sent[itt]
            o = bytearray(48); o[0] = 0x05; o[1] = 0x80
            struct.pack_into(">IIII", o, 16, itt, ttt, 0, c.exp_statsn)
            struct.pack_into(">II", o, 36, 0, off)
            c.send(o, bytes([v]) * ln)
except (EOFError, ConnectionError, OSError):
    pass
print("GOOD responses: %d of %d" % (len(good), len(sent)))
with open(img, "rb") as f:
    for itt in good:
        lba, v = sent[itt]
        f.seek(lba * 512)
        assert f.read(blocks * 512) == bytes([v]) * (blocks * 512), "acknowledged write %d lost" % itt
assert len(good) > 0, "no write completed before shutdown"
PY
# stop_gw-like checks: the daemon is already stopping.
for i in $(seq 150); do kill -0 $GW_PID 2>/dev/null || break; sleep 0.1; done
kill -0 $GW_PID 2>/dev/null && fail "daemon still running 15 s after SIGTERM"
wait $GW_PID; rc=$?
[ $rc = 0 ] || { cat "$GW_LOG"; fail "exit status $rc after SIGTERM"; }
grep -q "stopped" "$GW_LOG" || fail "no 'stopped' line"
check_log_clean
start_gw "$TMP/map.json"
stop_gw
