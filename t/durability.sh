#!/bin/bash
# Durability, the DAS-compatibility rule: an acknowledged write is where
# the initiator was told it is.  The layer below is an nbdkit chain whose
# cache filter keeps writes in a private cache until they are flushed
# (cache=writeback), so an abrupt kill of it loses every unflushed write.
#  - write_cache false: every write that got GOOD survives kill -9 of
#    nbdkit and of the gateway.
#  - write_cache true: writes before a SYNCHRONIZE CACHE survive; writes
#    after it, never flushed, are lost: this shows the setup really drops
#    unflushed data, so the first check could fail.
source "$(dirname "$0")/functions.sh"
requires nbdkit --version
requires python3 --version
nbdkit --dump-config | grep -q . || { echo "SKIP: nbdkit unusable"; exit 77; }

truncate -s 8M "$TMP/a.img" "$TMP/b.img"
port=$(free_port)
write_map "$TMP/map.json" $port "
  { \"lun\": 0, \"write_cache\": false,
    \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"file\",
                   \"args\": [\"file=$TMP/a.img\", \"cache=writeback\"],
                   \"filters\": [\"cache\"] } },
  { \"lun\": 1, \"write_cache\": true,
    \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"file\",
                   \"args\": [\"file=$TMP/b.img\", \"cache=writeback\"],
                   \"filters\": [\"cache\"] } }"
start_gw "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "writes"
import sys, struct
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]
c = Conn("127.0.0.1", port)
assert c.login("iqn.2026-11.org.example:dur", target)[0] == 0

def do(lun, cdb, data=b""):
    c.scsi(cdb, write=data, lun=lun)
    while True:
        r, d = c.recv()
        if r[0] & 0x3f == 0x21:
            return r[3]

def write(lun, lba, v):
    return do(lun, struct.pack(">BBIBHB", 0x2a, 0, lba, 0, 8, 0), bytes([v]) * 4096)

for i in range(32):
    assert write(0, i * 8, i + 1) == 0
for i in range(16):
    assert write(1, i * 8, i + 1) == 0
assert do(1, struct.pack(">BBIBHB", 0x35, 0, 0, 0, 0, 0)) == 0   # SYNC CACHE
for i in range(16, 32):
    assert write(1, i * 8, i + 1) == 0
print("ok: 32 + 32 writes acknowledged, SYNCHRONIZE CACHE after 16 on LUN 1")
PY
# Abrupt stop of the layer below, then of the gateway.
for pid in $(pgrep -f "nbdkit.*file=$TMP/"); do kill -9 $pid; done
kill -9 $GW_PID; wait $GW_PID 2>/dev/null
python3 - "$TMP/a.img" "$TMP/b.img" <<'PY' || fail "acknowledged data lost"
import sys
a = open(sys.argv[1], "rb").read()
b = open(sys.argv[2], "rb").read()
blk = lambda img, i: img[i * 4096:(i + 1) * 4096]
lost = [i for i in range(32) if blk(a, i) != bytes([i + 1]) * 4096]
assert not lost, "write_cache false: acknowledged writes lost: %s" % lost
print("ok: write_cache false: all 32 acknowledged writes survived")
lost = [i for i in range(16) if blk(b, i) != bytes([i + 1]) * 4096]
assert not lost, "write_cache true: writes before SYNCHRONIZE CACHE lost: %s" % lost
print("ok: write_cache true: the 16 writes before SYNCHRONIZE CACHE survived")
after = [i for i in range(16, 32) if blk(b, i) == bytes([i + 1]) * 4096]
assert not after, "the layer below kept unflushed writes %s: the test cannot tell" % after
print("ok: the 16 unflushed writes after it were lost (the setup drops unflushed data)")
PY
