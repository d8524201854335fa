#!/bin/bash
# EXTENDED COPY across targets and backends, as VMware's VAAI clone sends
# it: a raw initiator (t/iscsi_raw.py) reads the NAA designators of the
# LUNs from their Device Identification VPD pages (two sessions, one per
# target), then sends EXTENDED COPY(LID1) to LUN 0 of the first target to
# copy that file LUN (512-byte blocks) to a memory LUN of the second
# target with 512-byte blocks and to one with 4096-byte blocks; RECEIVE
# COPY RESULTS reports the held status.  qemu-img reads both copies back
# through iscsi:// and they must equal the source.  Refusals: a read-only
# destination (DATA PROTECT), a range past the end (COPY ABORTED), a
# designator of no LUN (COPY ABORTED), and a LUN of a target the sender has
# no session with, as source or destination (COPY ABORTED, UNREACHABLE
# COPY TARGET: a copy is no way around another target's ACL, CHAP or
# networks).  Then libiscsi's ExtendedCopy and
# ReceiveCopyResults suites on a 512-byte and a 4096-byte LUN: none may
# fail or skip.  Does not check the copy's
# durability across a crash (t/durability.sh covers WRITE's) nor
# concurrency with other writes.
source "$(dirname "$0")/functions.sh"
requires python3 --version
requires iscsi-test-cu --list
requires qemu-img --version
qemu-img --help | grep -q "Supported formats:.*iscsi" || { echo "SKIP: qemu-img lacks the iscsi driver (qemu-block-extra)"; exit 77; }

port=$(free_port)
T1=iqn.2026-11.org.example:src
T2=iqn.2026-11.org.example:dst
head -c 16777216 /dev/urandom > "$TMP/in.raw"
cp "$TMP/in.raw" "$TMP/src.img"
cat >"$TMP/map.json" <<EOM
{ "portals": ["127.0.0.1:$port"],
  "targets": [
    { "name": "$T1", "luns": [
      { "lun": 0, "backend": { "type": "file", "path": "src.img" } },
      { "lun": 1, "backend": { "type": "file", "path": "cu.img",
                               "size": "64M" } },
      { "lun": 2, "backend": { "type": "memory", "size": "64M" },
        "block_size": 4096 } ] },
    { "name": "$T2", "luns": [
      { "lun": 0, "backend": { "type": "memory", "size": "16M" } },
      { "lun": 1, "backend": { "type": "memory", "size": "16M" },
        "block_size": 4096 },
      { "lun": 2, "backend": { "type": "memory", "size": "16M" },
        "read_only": true } ] } ] }
EOM
start_gw "$TMP/map.json"

PYTHONPATH="$SRCDIR/t" python3 - $port $T1 $T2 <<'PY' || fail "EXTENDED COPY through the raw initiator"
import struct, sys
from iscsi_raw import Conn

port, t1, t2 = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def session(target, isid):
    c = Conn("127.0.0.1", port)
    assert c.login("iqn.2026-11.org.example:xcopy", target, isid=isid)[0] == 0
    return c

def do(c, lun, cdb, data=b"", read_len=0):
    """Run one command: (status, sense bytes, data-in)."""
    c.scsi(cdb, write=data, read_len=read_len, lun=lun)
    din = b""
    while True:
        r, d = c.recv()
        op = r[0] & 0x3f
        if op == 0x25:                      # Data-In
            din += d
            if r[1] & 0x01:                 # S: status in this PDU
                return r[3], b"", din
        elif op == 0x21:                    # SCSI Response
            sense = d[2:2 + struct.unpack(">H", d[:2])[0]] if d else b""
            return r[3], sense, din

def tur_until_good(c, lun):
    for _ in range(5):
        if do(c, lun, bytes(6))[0] == 0:
            return
    raise AssertionError("TEST UNIT READY never GOOD")

def naa(c, lun):
    """The NAA designator of LUN lun, from VPD page 83h."""
    st, _, d = do(c, lun, bytes([0x12, 1, 0x83, 1, 0, 0]), read_len=256)
    assert st == 0, st
    o = 4
    while o < 4 + struct.unpack(">H", d[2:4])[0]:
        n = d[o + 3]
        if d[o + 1] & 0x3f == 0x03:         # association LU, type NAA
            return d[o + 4:o + 4 + n]
        o += 4 + n
    raise AssertionError("no NAA designator")

def cscd(designator, block_len):
    p = bytearray(32)
    p[0] = 0xe4
    p[4] = 0x01
    p[5] = 0x03
    p[7] = len(designator)
    p[8:8 + len(designator)] = designator
    p[29:32] = block_len.to_bytes(3, "big")
    return bytes(p)

def b2b(src, dst, nblocks, src_lba, dst_lba, dc=False):
    return struct.pack(">BBHHHHHQQ", 0x02, 0x02 if dc else 0, 0x18,
                       src, dst, 0, nblocks, src_lba, dst_lba)

def xcopy(c, lun, cscds, segs, list_id=0, usage=2):
    t, s = b"".join(cscds), b"".join(segs)
    hdr = struct.pack(">BBHIII", list_id, usage << 3, len(t), 0, len(s), 0)
    p = hdr + t + s
    cdb = bytes([0x83]) + bytes(9) + struct.pack(">I", len(p)) + bytes(2)
    return do(c, lun, cdb, data=p)

a = session(t1, b"\x80\x00\x00\x00\x00\x11")
b = session(t2, b"\x80\x00\x00\x00\x00\x12")
for c, luns in ((a, [0]), (b, [0, 1, 2])):
    for lun in luns:
        tur_until_good(c, lun)
src, d512, d4k, dro = naa(a, 0), naa(b, 0), naa(b, 1), naa(b, 2)

# 16 MiB: 32768 source blocks to the 512-byte LUN, held as list 5...
st, sense, _ = xcopy(a, 0, [cscd(src, 512), cscd(d512, 512)],
                     [b2b(0, 1, 32768, 0, 0)], list_id=5, usage=0)
assert st == 0, (st, sense.hex())
st, _, d = do(a, 0, bytes([0x84, 0x00, 5]) + bytes(7) +
              struct.pack(">I", 64) + bytes(2), read_len=64)
assert st == 0 and d[4] == 0x01, (st, d.hex())     # completed, good
units, count = d[7], struct.unpack(">I", d[8:12])[0]
assert count << (10 * units) == 16 << 20, (units, count)
# ...and 4096 destination blocks (DC) to the 4096-byte LUN, in two
# segments.
st, sense, _ = xcopy(a, 0, [cscd(src, 512), cscd(d4k, 4096)],
                     [b2b(0, 1, 2048, 0, 0, dc=True),
                      b2b(0, 1, 2048, 16384, 2048, dc=True)])
assert st == 0, (st, sense.hex())
# A read-only destination: DATA PROTECT.
st, sense, _ = xcopy(a, 0, [cscd(src, 512), cscd(dro, 512)],
                     [b2b(0, 1, 8, 0, 0)])
assert st == 2 and sense[2] & 0x0f == 0x07, (st, sense.hex())
# Past the end of the destination: COPY ABORTED.
st, sense, _ = xcopy(a, 0, [cscd(src, 512), cscd(d512, 512)],
                     [b2b(0, 1, 8, 0, 32767)])
assert st == 2 and sense[2] & 0x0f == 0x0a, (st, sense.hex())
# A designator that names no LUN here: COPY ABORTED, UNREACHABLE COPY
# TARGET.
bad = bytes([src[0] ^ 0x01]) + src[1:]
st, sense, _ = xcopy(a, 0, [cscd(src, 512), cscd(bad, 512)],
                     [b2b(0, 1, 8, 0, 0)])
assert st == 2 and sense[2] & 0x0f == 0x0a and sense[12:14] == b"\x08\x04", \
    (st, sense.hex())
# The copy manager may be a LUN of the destination's target too.
st, sense, _ = xcopy(b, 2, [cscd(d512, 512), cscd(src, 512)],
                     [b2b(0, 1, 8, 0, 0)])
assert st == 0, (st, sense.hex())
# An initiator with a session on the first target only cannot reach the
# second target's LUNs through a copy (its ACL, CHAP and network checks
# are not bypassed): they name no LUN for it.
e = Conn("127.0.0.1", port)
assert e.login("iqn.2026-11.org.example:elsewhere", t1,
               isid=b"\x80\x00\x00\x00\x00\x13")[0] == 0
tur_until_good(e, 0)
for cs in ([cscd(d512, 512), cscd(src, 512)],      # read another's LUN
           [cscd(src, 512), cscd(d512, 512)]):     # write another's LUN
    st, sense, _ = xcopy(e, 0, cs, [b2b(0, 1, 8, 0, 0)])
    assert st == 2 and sense[2] & 0x0f == 0x0a and \
        sense[12:14] == b"\x08\x04", (st, sense.hex())
e.logout()
a.logout()
b.logout()
print("ok: EXTENDED COPY across targets, refusals as expected")
PY

for lun in 0 1; do
	qemu-img convert -f raw -O raw "iscsi://127.0.0.1:$port/$T2/$lun" "$TMP/out$lun.raw" ||
		fail "convert out (LUN $lun)"
	cmp "$TMP/out$lun.raw" "$TMP/in.raw" || fail "copy to $T2 LUN $lun differs"
done
cmp "$TMP/src.img" "$TMP/in.raw" || fail "the source changed"

: # cu-score keeps the first result of each test: one log per LUN.
for lun in 1 2; do
	url=iscsi://127.0.0.1:$port/$T1/$lun
	log=$TMP/cu$lun.log
	: >"$log"
	for s in ExtendedCopy ReceiveCopyResults; do
		timeout 300 iscsi-test-cu -d -v -t "ALL.$s" "$url" "$url" \
			>>"$log" 2>&1
	done
	note "LUN $lun: ExtendedCopy, ReceiveCopyResults: $(python3 "$CU_SCORE" "$log" | head -1)"
	f=$(python3 "$CU_SCORE" "$log" --list failed)
	[ -z "$f" ] || { cat "$log"; fail "LUN $lun failed: $f"; }
	sk=$(python3 "$CU_SCORE" "$log" --list skipped)
	[ -z "$sk" ] || fail "LUN $lun skipped: $sk"
	[ "$(python3 "$CU_SCORE" "$log" --list passed | wc -w)" = 8 ] ||
		fail "LUN $lun: not 8 tests passed"
done
grep -q " error: " "$GW_LOG" && { cat "$GW_LOG" >&2; fail "errors in the log"; }
stop_gw
