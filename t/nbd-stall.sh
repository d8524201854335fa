#!/bin/bash
# A LUN whose backend hangs must not take every IO worker: with 4 IO
# workers and an nbdkit chain whose reads each take 4 seconds (nbdkit's
# delay filter), six reads queued on that LUN hold at most 3 workers,
# and a read of a memory LUN sent after them is answered before any of
# them.  (The check is the order of the answers, not a time.)  And with
# one NBD connection and reconnect_timeout 0, two reads at once both
# succeed: waiting for the busy connection is not a server gone away.
source "$(dirname "$0")/functions.sh"
requires python3 --version
requires_nbdkit_plugin memory

port=$(free_port)
write_map "$TMP/map.json" $port "
  { \"lun\": 0, \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"memory\",
                              \"args\": [\"size=16M\", \"delay-read=4\"],
                              \"filters\": [\"delay\"], \"connections\": 8 } },
  { \"lun\": 1, \"backend\": { \"type\": \"memory\", \"size\": \"16M\" } },
  { \"lun\": 2, \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"memory\",
                              \"args\": [\"size=16M\", \"delay-read=1\"],
                              \"filters\": [\"delay\"], \"connections\": 1,
                              \"reconnect_timeout\": 0 } }" \
  '"io_threads": 4'
start_gw "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "a hanging LUN starved another"
import struct, sys
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]
c = Conn("127.0.0.1", port, timeout=60)
assert c.login("iqn.2026-11.org.example:stall", target)[0] == 0
read10 = lambda lba: struct.pack(">BBIBHB", 0x28, 0, lba, 0, 1, 0) + bytes(6)
# Clear the login's unit attentions on both LUNs.
for lun in (0, 1):
    for _ in range(3):
        c.scsi(bytes(6), lun=lun)
        r, _ = c.recv()
        if r[3] == 0:
            break
slow = [c.scsi(read10(i), read_len=512, lun=0) for i in range(6)]
fast = c.scsi(read10(0), read_len=512, lun=1)
order = []
while len(order) < 7:
    r, d = c.recv()
    op = r[0] & 0x3f
    if op == 0x21 or (op == 0x25 and r[1] & 1):
        itt = struct.unpack(">I", r[16:20])[0]
        order.append(itt)
        assert r[3] == 0, "status %x" % r[3]
assert order[0] == fast, "the memory LUN's read waited for the hanging LUN: %s" % order
print("ok: memory LUN answered first; order", order)
# One NBD connection, reconnect_timeout 0: a read that waits for the
# busy connection is not a server that is away (no NOT READY).
for lun in (2,):
    for _ in range(3):
        c.scsi(bytes(6), lun=lun)
        r, _ = c.recv()
        if r[3] == 0:
            break
two = [c.scsi(read10(i), read_len=512, lun=2) for i in range(2)]
done = 0
while done < 2:
    r, d = c.recv()
    op = r[0] & 0x3f
    if op == 0x21 or (op == 0x25 and r[1] & 1):
        assert r[3] == 0, "a read waiting for the one busy NBD connection failed: status %x" % r[3]
        done += 1
print("ok: two reads over one NBD connection with reconnect_timeout 0")
c.logout()
PY
stop_gw
note "ok"
