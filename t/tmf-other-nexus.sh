#!/bin/bash
# Commands aborted by another I_T nexus, on the wire (SAM-5 §5.6, §7.4;
# SPC-4 §5.13.11.2.6), as a cluster's failover does it: LUN 0 is an nbdkit
# chain whose reads take 3 seconds (the delay filter), so a READ of
# initiator A is still in flight when initiator B acts.
#  - CLEAR TASK SET from B (one task set for every nexus: TST 0) aborts
#    A's READ: B's response comes only once the READ has left the workers,
#    A gets no status for it, and A's next command gets the unit attention
#    COMMANDS CLEARED BY ANOTHER INITIATOR (TAS 0), once; B gets none.
#  - ABORT TASK SET from B leaves A's READ alone: A gets its data.
#  - Failover with PERSISTENT RESERVE OUT: A holds a Write Exclusive,
#    Registrants Only reservation, B is registered; B sends PREEMPT AND
#    ABORT against A's key while A's READ is in flight.  A gets no status
#    for it, then REGISTRATIONS PREEMPTED and COMMANDS CLEARED BY ANOTHER
#    INITIATOR, and its WRITE is a RESERVATION CONFLICT; READ KEYS lists
#    B's key alone and READ RESERVATION shows B holding the reservation.
source "$(dirname "$0")/functions.sh"
requires python3 --version
requires_nbdkit_plugin memory

port=$(free_port)
write_map "$TMP/map.json" $port "
  { \"lun\": 0, \"backend\": { \"type\": \"nbdkit\", \"plugin\": \"memory\",
                              \"args\": [\"size=16M\", \"delay-read=3\"],
                              \"filters\": [\"delay\"], \"connections\": 4 } }"
start_gw "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "commands aborted by another nexus"
import select, struct, sys, time
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]

def session(name, isid):
    c = Conn("127.0.0.1", port, timeout=30)
    assert c.login("iqn.2026-11.org.example:" + name, target, isid=isid)[0] == 0
    assert c.command(bytes(6))[0] == 0          # POWER ON taken
    return c

def status(c, itt):
    """Wait for the SCSI Response (or final Data-In) of itt."""
    data = b""
    while True:
        r, d = c.recv()
        op = r[0] & 0x3f
        if struct.unpack_from(">I", r, 16)[0] != itt:
            raise AssertionError("unexpected PDU 0x%02x" % op)
        if op == 0x25:
            data += d
            if r[1] & 0x01:
                return r[3], None, data
        elif op == 0x21:
            s = d[2:] if d else b""
            return r[3], ((s[2] & 0x0f, s[12], s[13]) if s else None), data

def tmf(c, fn, lun=0):
    bhs = bytearray(48)
    bhs[0] = 0x42 | 0x40                   # immediate: takes no CmdSN
    bhs[1] = 0x80 | fn
    struct.pack_into(">Q", bhs, 8, lun << 48)
    itt = c.next_itt()
    struct.pack_into(">IIII", bhs, 16, itt, 0xffffffff, c.cmdsn, c.exp_statsn)
    c.send(bhs)
    t0 = time.time()
    r, _ = c.recv()
    assert r[0] & 0x3f == 0x22 and struct.unpack_from(">I", r, 16)[0] == itt
    return r[2], time.time() - t0

def nothing_for(c, secs):
    """True when no PDU arrives on c within secs."""
    return not select.select([c.s], [], [], secs)[0]

def read16(lba, n=8):
    return bytes([0x88, 0]) + struct.pack(">QIBB", lba, n, 0, 0)

def prout(c, sa, typ, key, sakey):
    plist = struct.pack(">QQ", key, sakey) + bytes(8)
    cdb = bytes([0x5f, sa, typ, 0, 0]) + struct.pack(">I", len(plist)) + b"\0"
    return c.command(cdb, write=plist)[:2]

a = session("node-a", b"\x80\x00\x00\x00\x00\x0a")
b = session("node-b", b"\x80\x00\x00\x00\x00\x0b")
TUR = bytes(6)
UA_CLEARED = (0x06, 0x2f, 0x00)

# CLEAR TASK SET from B aborts A's READ.
itt = a.scsi(read16(0), read_len=4096)
time.sleep(0.5)                             # the READ is in the backend
rsp, took = tmf(b, 4)                       # CLEAR TASK SET
assert rsp == 0, ("CLEAR TASK SET response", rsp)
assert took > 1.5, "answered before the aborted READ left (%.1f s)" % took
assert nothing_for(a, 4.0), "a status came for the aborted READ"
a.scsi(TUR); st = status(a, a.itt)
assert st[:2] == (2, UA_CLEARED), ("A's first command after", st)
a.scsi(TUR); st = status(a, a.itt)
assert st[:2] == (0, None), ("A's second command after", st)
b.scsi(TUR); st = status(b, b.itt)
assert st[:2] == (0, None), ("B has no unit attention", st)
print("ok: CLEAR TASK SET from B aborted A's READ (%.1f s), A got 2F/00 once" % took)

# ABORT TASK SET from B is B's own: A's READ completes.
itt = a.scsi(read16(8), read_len=4096)
time.sleep(0.5)
rsp, took = tmf(b, 2)
assert rsp == 0, ("ABORT TASK SET response", rsp)
st = status(a, itt)
assert st[0] == 0 and len(st[2]) == 4096, ("A's READ after B's ABORT TASK SET", st[:2])
a.scsi(TUR); st = status(a, a.itt)
assert st[:2] == (0, None), ("no unit attention for A", st)
print("ok: ABORT TASK SET from B left A's READ alone")

# Failover: PREEMPT AND ABORT.
KA, KB = 0xaaaa, 0xbbbb
assert prout(a, 0x00, 0x00, 0, KA) == (0, None), "A registers"
assert prout(b, 0x00, 0x00, 0, KB) == (0, None), "B registers"
assert prout(a, 0x01, 0x05, KA, 0) == (0, None), "A reserves WE-RO"
itt = a.scsi(read16(16), read_len=4096)
time.sleep(0.5)
t0 = time.time()
assert prout(b, 0x05, 0x05, KB, KA) == (0, None), "B preempts and aborts"
took = time.time() - t0
assert took > 1.5, "PREEMPT AND ABORT answered before the aborted READ left"
assert nothing_for(a, 4.0), "a status came for the preempted READ"
a.scsi(TUR); st1 = status(a, a.itt)
a.scsi(TUR); st2 = status(a, a.itt)
a.scsi(TUR); st3 = status(a, a.itt)
assert (st1[:2], st2[:2], st3[:2]) == ((2, (6, 0x2a, 0x05)), (2, UA_CLEARED), (0, None)), \
    ("A's unit attentions", st1[:2], st2[:2], st3[:2])
w = bytes([0x8a, 0]) + struct.pack(">QIBB", 0, 1, 0, 0)
st = a.command(w, write=bytes(512))
assert st[0] == 0x18, ("A's WRITE after the preemption", st[:2])
st, sn, keys = b.command(bytes([0x5e, 0x00, 0, 0, 0, 0, 0, 0, 64, 0]), 64)
assert st == 0 and struct.unpack_from(">I", keys, 4)[0] == 8 and \
    struct.unpack_from(">Q", keys, 8)[0] == KB, ("READ KEYS", st, keys[:16].hex())
st, sn, res = b.command(bytes([0x5e, 0x01, 0, 0, 0, 0, 0, 0, 64, 0]), 64)
assert st == 0 and struct.unpack_from(">Q", res, 8)[0] == KB and res[21] & 0x0f == 5, \
    ("READ RESERVATION", st, res[:24].hex())
print("ok: PREEMPT AND ABORT: A's READ aborted (%.1f s), A got 2A/05 then 2F/00, "
      "its WRITE conflicts; B holds the reservation" % took)
PY
grep -q "CLEAR TASK SET on LUN 0" "$GW_LOG" || fail "no log line for CLEAR TASK SET"
grep -q "PREEMPT AND ABORT: ITT" "$GW_LOG" || fail "no log line for the preempted READ"
stop_gw
