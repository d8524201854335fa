#!/bin/bash
# A file LUN with 512-byte blocks and "direct": true: writes not aligned
# to 4096 bytes are read-modify-writes of whole 4 KiB blocks.  Many
# one-sector writes to neighbouring sectors at once (all in flight, over
# the IO workers) must all land: none may put a neighbour back to its old
# contents.  Aligned 4 KiB writes to other blocks go at the same time,
# the async way (libaio), while the one-sector ones bounce on the workers.
# Checked in the backing file, sector by sector, for several rounds.
# READ CAPACITY(16) says so: 8 logical blocks per physical block (a 512e
# disk), where a file LUN through the page cache says 1.
source "$(dirname "$0")/functions.sh"
requires python3 --version
requires iscsi-readcapacity16 --help

port=$(free_port)
write_map "$TMP/map.json" $port \
  '{ "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "4M", "direct": true } }'
# O_DIRECT needs a file system that has it (tmpfs has not).
if ! direct_ok; then
	echo "SKIP: $TMP does not support O_DIRECT"; exit 77
fi
start_gw "$TMP/map.json"
if grep -q '#define HAVE_LIBAIO 1' "$BUILDDIR/config.h" 2>/dev/null; then
	grep -q "LUN 0: file, 8192 blocks of 512 bytes, IO async" "$GW_LOG" ||
		{ cat "$GW_LOG"; fail "the direct LUN does not use async IO"; }
fi
rc16=$(iscsi-readcapacity16 iscsi://127.0.0.1:$port/$TARGET/0)
echo "$rc16" | grep -q "LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT:3" ||
	fail "the direct 512-byte LUN does not report 4096-byte physical blocks: $rc16"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$TMP/lun0.img" <<'PY' || fail "lost one-sector writes"
import struct, sys
from iscsi_raw import Conn
port, target, img = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Conn("127.0.0.1", port, timeout=60)
assert c.login("iqn.2026-11.org.example:rmw", target)[0] == 0
for _ in range(3):
    c.scsi(bytes(6)); r, _ = c.recv()
    if r[3] == 0:
        break
lost = 0
for rnd in range(8):
    sectors = list(range(0, 128))           # 16 blocks of 4 KiB
    order = sectors[rnd % 2::2] + sectors[1 - rnd % 2::2]
    for k, s in enumerate(order):
        data = bytes([(s * 7 + rnd * 13 + 1) % 251 + 1]) * 512
        cdb = struct.pack(">BBIBHB", 0x2a, 0, s, 0, 1, 0) + bytes(6)
        c.scsi(cdb, write=data)
        if k % 8 == 0:
            # Among them, aligned 4 KiB writes to the next 16 blocks:
            # these go the async way (libaio) while the others bounce.
            b = 16 + k // 8
            data = bytes([(b * 5 + rnd * 3 + 1) % 251 + 1]) * 4096
            cdb = struct.pack(">BBIBHB", 0x2a, 0, b * 8, 0, 8, 0) + bytes(6)
            c.scsi(cdb, write=data)
    done = 0
    while done < len(order) + 16:
        r, _ = c.recv()
        if r[0] & 0x3f == 0x21:
            assert r[3] == 0, "write status %x" % r[3]
            done += 1
    with open(img, "rb") as f:
        got = f.read(256 * 512)
    for s in sectors:
        want = bytes([(s * 7 + rnd * 13 + 1) % 251 + 1]) * 512
        if got[s * 512:(s + 1) * 512] != want:
            lost += 1
    for b in range(16, 32):
        want = bytes([(b * 5 + rnd * 3 + 1) % 251 + 1]) * 4096
        if got[b * 4096:(b + 1) * 4096] != want:
            lost += 1
assert lost == 0, "%d writes lost of %d" % (lost, 8 * (128 + 16))
print("ok: 1024 one-sector writes and 128 aligned ones, none lost")
c.logout()
PY
stop_gw
note "ok"
