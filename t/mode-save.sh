#!/bin/bash
# Saved mode pages on the wire, with a raw initiator: MODE SENSE reports
# PS and the saved values (PC 11b); MODE SELECT with SP changes the
# current value and saves it in state_dir before its status; after a
# restart the saved value is the current one; MODE SELECT without SP
# changes the current value only; a damaged file stops the start with a
# message naming it; without state_dir SP and PC 11b are refused with
# SAVING PARAMETERS NOT SUPPORTED.
source "$(dirname "$0")/functions.sh"
requires python3 --version

port=$(free_port)
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "16M" } }' \
	'"state_dir": "state"'

check_py() {
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$1" <<'PY'
import sys, struct
from iscsi_raw import Conn
port, target, phase = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def cmd(c, cdb, read_len=0, write=b""):
    return c.command(cdb, read_len=read_len, write=write, lun=0)

def sense_caching(c, pc):
    """MODE SENSE(10), DBD, caching page: (status, sense, page bytes)."""
    st, sn, d = cmd(c, bytes([0x5a, 0x08, pc << 6 | 0x08, 0, 0, 0, 0, 0, 64, 0]), 64)
    return st, sn, d[8:8 + 20] if st == 0 else b""

def select_caching(c, wce, sp):
    st, sn, page = sense_caching(c, 0)
    assert st == 0, (st, sn)
    page = bytearray(page)
    page[0] &= 0x3f                      # PS is reserved in MODE SELECT
    page[2] = (page[2] & ~0x04) | (0x04 if wce else 0)
    plist = bytes(8) + bytes(page)
    cdb = bytes([0x55, 0x10 | (1 if sp else 0), 0, 0, 0, 0, 0, 0, len(plist), 0])
    return cmd(c, cdb, write=plist)[:2]

c = Conn("127.0.0.1", port)
assert c.login("iqn.2026-11.org.example:ms", target)[0] == 0
if phase == "first":
    st, sn, cur = sense_caching(c, 0)
    assert st == 0 and cur[0] & 0x80, ("PS", st, sn, cur.hex())
    assert not cur[2] & 0x04, "write cache starts off (map default)"
    st, sn, saved = sense_caching(c, 3)
    assert st == 0 and not saved[2] & 0x04, (st, sn)
    assert select_caching(c, 1, True) == (0, None)
    assert sense_caching(c, 0)[2][2] & 0x04, "current WCE not set"
    assert sense_caching(c, 3)[2][2] & 0x04, "saved WCE not set"
    print("ok: WCE 1 saved")
elif phase == "second":
    assert sense_caching(c, 0)[2][2] & 0x04, "saved WCE not restored"
    assert sense_caching(c, 3)[2][2] & 0x04
    # Without SP only the current value changes.
    assert select_caching(c, 0, False) == (0, None)
    assert not sense_caching(c, 0)[2][2] & 0x04
    assert sense_caching(c, 3)[2][2] & 0x04, "SP 0 changed the saved value"
    print("ok: restored; SP 0 leaves it")
elif phase == "third":
    assert sense_caching(c, 0)[2][2] & 0x04, "current after restart = saved"
    print("ok: saved value current again after a restart")
else:
    st, sn = select_caching(c, 1, True)
    assert st == 2 and sn == (5, 0x39, 0), ("SP without state_dir", st, sn)
    st, sn, _ = sense_caching(c, 3)
    assert st == 2 and sn == (5, 0x39, 0), ("PC 3 without state_dir", st, sn)
    st, sn, cur = sense_caching(c, 0)
    assert st == 0 and not cur[0] & 0x80, "PS without state_dir"
    print("ok: nothing to save to without state_dir")
c.logout()
PY
}

start_gw "$TMP/map.json"
check_py first || fail "first run"
f=$(ls "$TMP"/state/mode-*-0 2>/dev/null) || fail "no saved mode page file"
grep -qx "wce 1" "$f" || fail "file does not say wce 1: $(cat "$f")"
[ -z "$(ls "$TMP"/state/ | grep '\.tmp$')" ] || fail "a temp file is left"
stop_gw
start_gw "$TMP/map.json"
grep -q "saved mode pages restored (write cache on)" "$GW_LOG" ||
	{ cat "$GW_LOG"; fail "restore not logged"; }
check_py second || fail "after restart"
stop_gw
start_gw "$TMP/map.json"
check_py third || fail "after the second restart"
stop_gw

# A damaged file stops the start, naming the file.
echo "wce 7" >>"$f"
out=$("$ISCSI_GW" serve --config "$TMP/map.json" 2>&1 & p=$!; sleep 2; kill $p 2>/dev/null; wait $p)
echo "$out" | grep -q "mode-.*-0:6: unreadable line" ||
	fail "damaged file not named: $out"

# Without state_dir.
port=$(free_port)
write_map "$TMP/map2.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "16M" } }'
start_gw "$TMP/map2.json"
check_py none || fail "without state_dir"
stop_gw
