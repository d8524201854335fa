#!/bin/bash
# Session life on the wire, with a raw initiator (t/iscsi_raw.py) doing
# what real ones do not: the target pings an idle initiator with NOP-In
# (ITT 0xffffffff, a real TTT) and drops one that never answers; a second
# login with the same initiator name and ISID reinstates the session
# (the old connection is closed); Logout closes cleanly; a login that never
# finishes is dropped after login_timeout.  Not checked here: iSCSI command
# semantics (iscsi-test-cu does that).
source "$(dirname "$0")/functions.sh"
requires python3 --version

port=$(free_port)
write_map "$TMP/map.json" $port '{ "lun": 0, "backend": { "type": "memory", "size": "80M" } }' \
	'"iscsi": { "nop_interval": 1, "nop_timeout": 2, "login_timeout": 2,
	            "max_sessions_per_initiator": 2, "max_buffer_mb": 64 }'
start_gw "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "raw initiator checks"
import sys, time, struct, socket
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]
ini = "iqn.2026-11.org.example:raw"

# 1. NOP-In ping of an idle initiator; answering keeps the link up.
c = Conn("127.0.0.1", port)
st, _ = c.login(ini, target)
assert st == 0, "login status %04x" % st
c.s.settimeout(5)
bhs, data = c.recv()
assert bhs[0] & 0x3f == 0x20, "expected a NOP-In, got opcode %x" % bhs[0]
itt, ttt = struct.unpack_from(">II", bhs, 16)
assert itt == 0xffffffff and ttt != 0xffffffff, "ping tags %x %x" % (itt, ttt)
c.nop_out(itt=0xffffffff, ttt=ttt)
print("ok: NOP-In ping answered")
# 2. Not answering the next ping gets the connection dropped.
assert c.closed_within(8), "a silent initiator was not dropped"
print("ok: silent initiator dropped")

# 3. Reinstatement: same name and ISID, new connection.
a = Conn("127.0.0.1", port)
assert a.login(ini, target, isid=b"\x80\x00\x00\x00\x00\x07")[0] == 0
b = Conn("127.0.0.1", port)
assert b.login(ini, target, isid=b"\x80\x00\x00\x00\x00\x07")[0] == 0
assert a.closed_within(3), "old session not closed on reinstatement"
# The new session works: TEST UNIT READY.
b.scsi(b"\x00" * 6)
while True:
    r, d = b.recv()
    if r[0] & 0x3f == 0x21:
        break
assert r[3] == 0, "TUR status %x" % r[3]
print("ok: session reinstated, new session serves commands")
# 4. A different ISID is another session: both live.
d2 = Conn("127.0.0.1", port)
assert d2.login(ini, target, isid=b"\x80\x00\x00\x00\x00\x08")[0] == 0
r, _ = b.logout()
assert r[0] & 0x3f == 0x26 and r[2] == 0, "logout response"
assert b.closed_within(3), "not closed after logout"
r, _ = d2.logout()
assert r[0] & 0x3f == 0x26 and r[2] == 0
print("ok: logout")
# 5. Limits: a third session of one initiator is refused (0x0206) ...
x1 = Conn("127.0.0.1", port)
assert x1.login(ini, target, isid=b"\x80\0\0\0\0\x31")[0] == 0
x2 = Conn("127.0.0.1", port)
assert x2.login(ini, target, isid=b"\x80\0\0\0\0\x32")[0] == 0
x3 = Conn("127.0.0.1", port)
st, _ = x3.login(ini, target, isid=b"\x80\0\0\0\0\x33")
assert st == 0x0206, "third session: status %04x" % st
print("ok: max_sessions_per_initiator")
# ... and command buffers per connection are bounded (max_buffer_mb 64):
# three 32 MiB reads whose data we do not read back: the third gets
# TASK SET FULL instead of another 32 MiB.
x1.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
itts = []
for i in range(3):
    cdb = struct.pack(">BBQIBB", 0x88, 0, 0, 65536, 0, 0)
    itts.append(x1.scsi(cdb, read_len=32 << 20))
time.sleep(1)
full = False
while True:
    r, d = x1.recv()
    op = r[0] & 0x3f
    itt = struct.unpack_from(">I", r, 16)[0]
    if op == 0x21 and itt == itts[2]:
        full = r[3] == 0x28
        break
    if op == 0x25 and r[1] & 0x01 and itt == itts[2]:
        break
assert full, "third 32 MiB read was not refused with TASK SET FULL"
print("ok: max_buffer_mb")
x1.s.close(); x2.s.close(); x3.s.close()

# 6. A login that never completes is dropped after login_timeout.
e = socket.create_connection(("127.0.0.1", port))
e.settimeout(6)
t0 = time.time()
assert e.recv(100) == b"", "expected close"
assert time.time() - t0 < 6
print("ok: login timeout")
PY
grep -q "session reinstated" "$GW_LOG" || fail "no log line for reinstatement"
grep -q "no answer to NOP-In" "$GW_LOG" || fail "no log line for the dead initiator"
stop_gw
