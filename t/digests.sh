#!/bin/bash
# CRC32C header and data digests (RFC 7143 §11.1, §13.1) on the wire.
# A raw initiator negotiates both and checks every digest the target
# sends; a bad data digest on a SCSI command gives CHECK CONDITION
# (ABORTED COMMAND, PROTOCOL SERVICE CRC ERROR) and the session goes on; on
# a NOP-Out a Reject (data digest error); a bad header digest drops the
# connection (ErrorRecoveryLevel 0).  A map that requires header digests
# refuses an initiator offering only None.  Then libiscsi (header digests) runs
# iscsi-test-cu Read10/Write10 against a target whose map requires them.
source "$(dirname "$0")/functions.sh"
requires python3 --version

port=$(free_port)
write_map "$TMP/map.json" $port '{ "lun": 0, "backend": { "type": "memory", "size": "8M" } }'
start_gw "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "raw digest checks"
import sys, struct
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]

def login():
    c = Conn("127.0.0.1", port)
    st, data = c.login("iqn.2026-11.org.example:dig", target,
                       extra=b"HeaderDigest=CRC32C,None\0DataDigest=CRC32C,None\0")
    assert st == 0, "login %x" % st
    keys = dict(kv.split("=", 1) for kv in data.decode().split("\0") if kv)
    assert keys["HeaderDigest"] == "CRC32C" and keys["DataDigest"] == "CRC32C", keys
    c.hd = c.dd = True
    return c

c = login()
c.nop_out(itt=0x51)
bhs = bytearray(48); bhs[0] = 0x40; bhs[1] = 0x80
struct.pack_into(">III", bhs, 16, 0x52, 0xffffffff, c.cmdsn)
c.send(bhs, b"ping-data!")
r, d = c.recv()
assert r[0] & 0x3f == 0x20 and struct.unpack_from(">I", r, 16)[0] == 0x51
r, d = c.recv()
assert r[0] & 0x3f == 0x20 and d == b"ping-data!", d
print("ok: digests both ways, checked")

# WRITE(10) of one block with immediate data and a bad data digest.
wbhs = bytearray(48); wbhs[0] = 0x01; wbhs[1] = 0x80 | 0x20 | 1
struct.pack_into(">IIII", wbhs, 16, 0x60, 512, c.cmdsn, c.exp_statsn)
c.cmdsn += 1
wbhs[32:42] = struct.pack(">BBIBHB", 0x2a, 0, 0, 0, 1, 0)
c.send(wbhs, b"x" * 512, bad_dd=True)
r, d = c.recv()
assert r[0] & 0x3f == 0x21 and r[3] == 2, "expected CHECK CONDITION"
sense = d[2:]
assert (sense[2] & 0x0f, sense[12], sense[13]) == (0x0b, 0x47, 0x05), sense[:14]
print("ok: bad data digest on a command: ABORTED COMMAND 47/05")
# The CmdSN window went on: a TEST UNIT READY with the next CmdSN works.
c.scsi(b"\0" * 6)
r, d = c.recv()
assert r[0] & 0x3f == 0x21 and r[3] == 0
# NOP-Out with a bad data digest: Reject, reason 0x02.
bhs = bytearray(48); bhs[0] = 0x40; bhs[1] = 0x80
struct.pack_into(">III", bhs, 16, 0x53, 0xffffffff, c.cmdsn)
c.send(bhs, b"damaged!", bad_dd=True)
r, d = c.recv()
assert r[0] & 0x3f == 0x3f and r[2] == 0x02, "expected Reject 0x02"
print("ok: bad data digest on NOP-Out: Reject")
# A bad header digest: the connection is dropped.
c.send(bhs, b"x", bad_hd=True)
assert c.closed_within(3), "connection not closed on a header digest error"
print("ok: bad header digest drops the connection")
PY
grep -q "header digest error" "$GW_LOG" || fail "no log line for the header digest error"
stop_gw

# libiscsi with header digests against a map that requires them.
requires iscsi-test-cu --list
port=$(free_port)
write_map "$TMP/map2.json" $port '{ "lun": 0, "backend": { "type": "memory", "size": "64M" } }' \
	'"iscsi": { "header_digest": "require" }'
start_gw "$TMP/map2.json" -D iscsi.login=1
# An initiator that will not use header digests is refused.
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "require: None accepted"
import sys
from iscsi_raw import Conn
c = Conn("127.0.0.1", int(sys.argv[1]))
st, _ = c.login("iqn.2026-11.org.example:nodig", sys.argv[2], extra=b"HeaderDigest=None\0")
assert st == 0x0200, "status %04x" % st
print("ok: header_digest require refuses HeaderDigest=None")
PY
url="iscsi://127.0.0.1:$port/$TARGET/0?header_digest=crc32c"
: > "$TMP/cu.log"
for s in ALL.Read10 ALL.Write10 ALL.iSCSIResiduals; do
	iscsi-test-cu -d -v -t $s "$url" >>"$TMP/cu.log" 2>&1
done
summary=$(python3 "$CU_SCORE" "$TMP/cu.log"); echo "$summary"
echo "$summary" | grep -q "failed 0$" || fail "iscsi-test-cu with header digests"
grep -q "login: normal session.*HeaderDigest CRC32C" "$GW_LOG" || fail "header digest not in use"
stop_gw
