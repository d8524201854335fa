#!/bin/bash
# Reservations on the wire (SPC-4 §5.13): libiscsi's persistent reservation
# and RESERVE(6) suites, each with two initiators (the same URL twice), then
# the full iscsi-test-cu ALL on one file LUN, asserting 0 failed with
# cu-score; then APTPL through a restart with a raw initiator: a key
# registered with APTPL = 1 and its Write Exclusive reservation are still
# there after the daemon restarts (PRgeneration back to 0), and are gone
# for good once unregistered with APTPL = 0.  PREEMPT AND ABORT's aborts
# on the wire are t/tmf-other-nexus.sh's; REGISTER AND MOVE is not
# checked on the wire.
source "$(dirname "$0")/functions.sh"
requires iscsi-test-cu --list
requires python3 --version

port=$(free_port)
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "128M" } },
  { "lun": 1, "backend": { "type": "memory", "size": "8M" } }' \
	'"state_dir": "state"'
url=iscsi://127.0.0.1:$port/$TARGET/0

score() { python3 "$CU_SCORE" "$@"; }

start_gw "$TMP/map.json"

: >"$TMP/pr.log"
for s in PrinReadKeys PrinServiceactionRange PrinReportCapabilities \
	 ProutRegister ProutReserve ProutClear ProutPreempt Reserve6; do
	timeout 300 iscsi-test-cu -d -v -t "ALL.$s" "$url" "$url" \
		>>"$TMP/pr.log" 2>&1
done
note "PR suites: $(score "$TMP/pr.log" | head -1)"
f=$(score "$TMP/pr.log" --list failed)
[ -z "$f" ] || { cat "$TMP/pr.log"; fail "PR suites failed: $f"; }
# Every test ran: none skipped for want of PERSISTENT RESERVE OUT,
# RESERVE(6) or TARGET COLD RESET.
sk=$(score "$TMP/pr.log" --list skipped)
[ -z "$sk" ] || fail "PR suites skipped: $sk"

timeout 900 iscsi-test-cu -d -S -v -t ALL "$url" "$url" >"$TMP/all.log" 2>&1
note "ALL: $(score "$TMP/all.log" | head -1)"
f=$(score "$TMP/all.log" --list failed)
[ -z "$f" ] || { tail -60 "$TMP/all.log"; fail "ALL failed: $f"; }
stop_gw

# ---- APTPL through a restart ----
check_py() {
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$1" <<'PY'
import sys, struct
from iscsi_raw import Conn
port, target, phase = int(sys.argv[1]), sys.argv[2], sys.argv[3]
KEY = 0x1122334455667788

def cmd(c, cdb, read_len=0, write=b""):
    return c.command(cdb, read_len=read_len, write=write, lun=1)

def prout(c, sa, typ, rk, sark, aptpl=False):
    cdb = bytes([0x5f, sa, typ, 0, 0, 0, 0, 0, 24, 0])
    p = struct.pack(">QQI", rk, sark, 0) + bytes([1 if aptpl else 0, 0, 0, 0])
    return cmd(c, cdb, write=p)[:2]

def prin(c, sa):
    st, sense, d = cmd(c, bytes([0x5e, sa, 0, 0, 0, 0, 0, 1, 0, 0]), 256)
    assert st == 0, (sa, st, sense)
    return d

def keys(c):
    d = prin(c, 0)
    gen, n = struct.unpack_from(">II", d)
    return gen, [struct.unpack_from(">Q", d, 8 + 8 * i)[0] for i in range(n // 8)]

def login(name, isid):
    c = Conn("127.0.0.1", port)
    assert c.login(name, target, isid=isid)[0] == 0
    return c

WRITE = bytes([0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0])
READ = bytes([0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0])
a = login("iqn.2026-11.org.example:pr-a", b"\x80\0\0\0\0\x21")
b = login("iqn.2026-11.org.example:pr-b", b"\x80\0\0\0\0\x22")
if phase == "first":
    assert keys(a) == (0, []), keys(a)
    assert prout(a, 0, 0, 0, KEY, aptpl=True) == (0, None)
    assert prout(a, 1, 1, KEY, 0) == (0, None)     # RESERVE, Write Exclusive
    caps = prin(a, 2)
    assert caps[2] & 0x01 and caps[3] & 0x01, caps.hex()   # PTPL_C, PTPL_A
    assert cmd(b, WRITE, write=b"\0" * 512)[0] == 0x18
    print("ok: registered with APTPL, reserved")
elif phase == "second":
    gen, k = keys(a)
    assert (gen, k) == (0, [KEY]), (gen, k)
    d = prin(a, 1)
    assert struct.unpack_from(">I", d, 4)[0] == 16 and \
        struct.unpack_from(">Q", d, 8)[0] == KEY and d[21] == 1, d.hex()
    assert cmd(b, WRITE, write=b"\0" * 512)[0] == 0x18, "b may write"
    assert cmd(b, READ, 512)[0] == 0, "b may not read"
    assert cmd(a, WRITE, write=b"\0" * 512)[0] == 0, "the holder may not write"
    print("ok: key and reservation restored; PRgeneration 0")
    # Unregister with APTPL = 0: nothing is kept any more.
    assert prout(a, 0, 0, KEY, 0) == (0, None)
    assert cmd(b, WRITE, write=b"\0" * 512)[0] == 0
else:
    assert keys(a) == (0, []), keys(a)
    caps = prin(a, 2)
    assert caps[2] & 0x01 and not caps[3] & 0x01, caps.hex()
    print("ok: nothing restored after APTPL 0")
PY
}
rm -f "$TMP"/state/pr-*
start_gw "$TMP/map.json"
check_py first || fail "before restart"
stop_gw
ls "$TMP"/state/pr-*-1 >/dev/null 2>&1 || fail "no state file for LUN 1"
[ -z "$(ls "$TMP"/state/ | grep '\.tmp$')" ] || fail "a temp file is left"
start_gw "$TMP/map.json"
grep -q "restored 1 persistent reservation registration and the reservation" \
	"$GW_LOG" || { cat "$GW_LOG"; fail "restore not logged"; }
check_py second || fail "after restart"
stop_gw
ls "$TMP"/state/pr-*-1 >/dev/null 2>&1 && fail "state file kept after APTPL 0"
start_gw "$TMP/map.json"
check_py third || fail "after the second restart"
stop_gw
