#!/bin/bash
# Unit attentions on the wire: after a gateway restart, an initiator that
# logs in again with the same name and ISID gets POWER ON OCCURRED (29h/01h)
# on its first TEST UNIT READY, once; a new initiator gets none; INQUIRY
# is never refused by a UA.  After LOGICAL UNIT RESET from one session the
# other session sees BUS DEVICE RESET FUNCTION OCCURRED (29h/03h).
source "$(dirname "$0")/functions.sh"
requires python3 --version

port=$(free_port)
write_map "$TMP/map.json" $port '{ "lun": 0, "backend": { "type": "memory", "size": "8M" } }' \
	'"state_dir": "state"'
check_py() {
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$1" <<'PY'
import sys, struct
from iscsi_raw import Conn
port, target, phase = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def status(c, cdb, read_len=0):
    c.scsi(cdb, read_len=read_len)
    while True:
        r, d = c.recv()
        op = r[0] & 0x3f
        if op == 0x21:
            sense = d[2:] if d else b""
            return r[3], (sense[2] & 0x0f, sense[12], sense[13]) if sense else None
        if op == 0x25 and r[1] & 0x01:
            return r[3], None

TUR = b"\0" * 6
INQ = bytes([0x12, 0, 0, 0, 96, 0])
old = Conn("127.0.0.1", port)
assert old.login("iqn.2026-11.org.example:old", target, isid=b"\x80\0\0\0\0\x11")[0] == 0
if phase == "first":
    assert status(old, TUR) == (0, None), "a new nexus got a UA"
    print("ok: no UA for a new nexus")
else:
    assert status(old, INQ, 96)[0] == 0, "INQUIRY refused"
    st, sense = status(old, TUR)
    assert st == 2 and sense == (6, 0x29, 0x01), (st, sense)
    assert status(old, TUR) == (0, None), "UA reported twice"
    print("ok: POWER ON OCCURRED after restart, once")
    new = Conn("127.0.0.1", port)
    assert new.login("iqn.2026-11.org.example:new", target, isid=b"\x80\0\0\0\0\x12")[0] == 0
    assert status(new, TUR) == (0, None)
    # LUN RESET from "new": "old" sees 29/03.
    bhs = bytearray(48); bhs[0] = 0x42; bhs[1] = 0x80 | 5
    struct.pack_into(">IIII", bhs, 16, 0x999, 0xffffffff, new.cmdsn, new.exp_statsn)
    new.send(bhs)
    r, _ = new.recv()
    assert r[0] & 0x3f == 0x22 and r[2] == 0, "LUN RESET response"
    st, sense = status(old, TUR)
    assert st == 2 and sense == (6, 0x29, 0x03), (st, sense)
    print("ok: LUN RESET raised a UA on the other nexus")
PY
}
start_gw "$TMP/map.json"
check_py first || fail "before restart"
stop_gw
[ -s "$TMP/state/nexus-seen" ] || fail "state_dir/nexus-seen not written"
start_gw "$TMP/map.json"
check_py second || fail "after restart"
stop_gw
