#!/bin/bash
# The nbd and nbdkit backends against a real nbdkit: an nbd+unix:// export
# and a gateway-owned nbdkit chain pass iscsi-test-cu families and a
# qemu-img round trip; faults from nbdkit's own filters: "error" gives
# MEDIUM ERROR sense while other LUNs keep serving; "delay" shows commands
# overlapping (8 one-second reads finish together, not in 8 s); an nbdkit
# killed mid-IO is restarted and the copy completes intact; an NBD server
# that goes away gives NOT READY after reconnect_timeout, and reads work
# again once it is back.
source "$(dirname "$0")/functions.sh"
requires nbdkit --version
requires iscsi-test-cu --list
requires python3 --version

sock=$TMP/export.sock
nbdkit -U "$sock" -P "$TMP/nbdkit.pid" memory 64M
cleanup_fn 'kill $(cat "$TMP/nbdkit.pid") 2>/dev/null'
for i in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
truncate -s 32M "$TMP/kit.img"
port=$(free_port)
write_map "$TMP/map.json" $port "
  { \"lun\": 0, \"backend\": { \"type\": \"nbd\", \"uri\": \"nbd+unix:///?socket=$sock\",
                              \"reconnect_timeout\": 2 }, \"thin\": true },
  { \"lun\": 1, \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"file\",
                              \"args\": [\"file=$TMP/kit.img\"] } },
  { \"lun\": 2, \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"memory\",
                              \"args\": [\"size=16M\", \"error-pread-rate=1\", \"error=EIO\"],
                              \"filters\": [\"error\"] } },
  { \"lun\": 3, \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"memory\",
                              \"args\": [\"size=16M\", \"delay-read=1\"],
                              \"filters\": [\"delay\"] } }"
start_gw "$TMP/map.json"
url=iscsi://127.0.0.1:$port/$TARGET
grep -q "LUN 2: nbdkit" "$GW_LOG" || fail "nbdkit LUN not up"

# Conformance on the NBD export and the nbdkit file chain.
: > "$TMP/cu.log"
for lun in 0 1; do
	for s in ALL.Read10 ALL.Write10 ALL.Write16 ALL.WriteSame16 ALL.Unmap ALL.iSCSIResiduals; do
		iscsi-test-cu -d -v -t $s $url/$lun >>"$TMP/cu.log" 2>&1
	done
done
summary=$(python3 "$CU_SCORE" "$TMP/cu.log"); echo "$summary"
python3 "$CU_SCORE" "$TMP/cu.log" --list failed
echo "$summary" | grep -q "failed 0$" || fail "iscsi-test-cu on NBD backends"

PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "fault checks"
import sys, struct, time
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]
c = Conn("127.0.0.1", port)
assert c.login("iqn.2026-11.org.example:nbd", target)[0] == 0

def status(lun, cdb, read_len=0):
    c.scsi(cdb, read_len=read_len, lun=lun)
    while True:
        r, d = c.recv()
        if r[0] & 0x3f == 0x21:
            s = d[2:]
            return r[3], (s[2] & 0xf, s[12], s[13]) if s else None
        if r[0] & 0x3f == 0x25 and r[1] & 1:
            return r[3], None

READ1 = struct.pack(">BBIBHB", 0x28, 0, 0, 0, 1, 0)
st, sense = status(2, READ1, 512)
assert st == 2 and sense == (3, 0x11, 0x00), (st, sense)
assert status(1, READ1, 512)[0] == 0, "another LUN stopped serving"
print("ok: EIO from the error filter is MEDIUM ERROR 11/00; other LUNs serve")

# Eight reads on the delay LUN, all sent before any answer.
t0 = time.time()
itts = [c.scsi(struct.pack(">BBIBHB", 0x28, 0, i * 8, 0, 1, 0), read_len=512, lun=3)
        for i in range(8)]
done = 0
while done < 8:
    r, d = c.recv()
    if r[0] & 0x3f == 0x25 and r[1] & 1:
        done += 1
took = time.time() - t0
assert took < 5, "8 one-second reads took %.1f s: serialised" % took
print("ok: 8 delayed reads overlapped (%.1f s)" % took)
PY

# Kill the gateway's nbdkit for LUN 1 during a copy (or just after it).
head -c 25165824 /dev/urandom > "$TMP/in.raw"
qemu-img convert -n -f raw -O raw "$TMP/in.raw" $url/1 &
qpid=$!
sleep 0.3
kitpid=$(pgrep -f "nbdkit.*file=$TMP/kit.img" | head -1)
[ -n "$kitpid" ] || fail "no nbdkit child found"
kill -9 $kitpid
wait $qpid || fail "qemu-img failed across the nbdkit restart"
# Read it all back through the gateway: if the copy finished before the
# kill, this is what meets the dead server and restarts it.
qemu-img convert -f raw -O raw $url/1 "$TMP/back.raw" || fail "read back after the kill"
head -c 25165824 "$TMP/back.raw" | cmp - "$TMP/in.raw" || fail "data read back differs"
head -c 25165824 "$TMP/kit.img" | cmp - "$TMP/in.raw" || fail "data differs after the restart"
grep -q "nbdkit file restarted" "$GW_LOG" || fail "no restart in the log"
echo "ok: nbdkit restarted mid-copy, data intact"

# The external NBD server goes away: NOT READY after reconnect_timeout.
kill $(cat "$TMP/nbdkit.pid"); sleep 0.3
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "server-gone checks"
import sys, struct, time
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]
c = Conn("127.0.0.1", port, timeout=30)
assert c.login("iqn.2026-11.org.example:gone", target)[0] == 0
c.scsi(struct.pack(">BBIBHB", 0x28, 0, 0, 0, 1, 0), read_len=512, lun=0)
t0 = time.time()
while True:
    r, d = c.recv()
    if r[0] & 0x3f in (0x21, 0x25) and (r[0] & 0x3f == 0x21 or r[1] & 1):
        break
s = d[2:]
assert r[3] == 2 and (s[2] & 0xf) == 2, "expected NOT READY, got status %x" % r[3]
print("ok: NOT READY %.1f s after the server left" % (time.time() - t0))
PY
rm -f "$sock"
nbdkit -U "$sock" -P "$TMP/nbdkit.pid" memory 64M
for i in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
iscsi-inq $url/0 >/dev/null || fail "INQUIRY after the server came back"
qemu-img convert -f raw -O raw $url/0 "$TMP/out0.raw" || fail "reads after the server came back"
stop_gw
