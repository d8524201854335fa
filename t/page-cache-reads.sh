#!/bin/bash
# Reads served from the page cache by the network thread (a file LUN
# without "direct"): copied with preadv2(RWF_NOWAIT) up to 256 KiB, sent
# with sendfile(2) from 64 KiB when no data digest is in use and the
# initiator is not on a loopback address (through a non-loopback address
# of this host, when it has one), and by a worker when the blocks are not
# cached.  A raw initiator checks every
# byte against the file: with and without data digests, with Data-In PDUs
# of 8 KiB and of 256 KiB, page-unaligned ranges, eight reads in flight
# at once (their PDUs interleaved on the wire), a read of data just
# written, and the same reads after the file's pages were dropped.
source "$(dirname "$0")/functions.sh"
requires python3 --version

dd if=/dev/urandom of="$TMP/disk.img" bs=1M count=8 status=none
cp "$TMP/disk.img" "$TMP/disk.img.ref"	# what the reads must see
cat "$TMP/disk.img" >/dev/null
port=$(free_port)
write_map "$TMP/map.json" $port "{ \"lun\": 0, \"backend\": { \"type\": \"file\", \"path\": \"$TMP/disk.img\" } }"
start_gw "$TMP/map.json"

check() {	# check LABEL: the raw reads against the file
	PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$TMP/disk.img" "$1" "${2:-127.0.0.1}" <<'PY' || fail "page-cache reads ($1)"
import os, sys, struct
from iscsi_raw import Conn
port, target, path, label = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host = sys.argv[5]
cold = label.startswith("not cached")

def drop():
    """Not cached: the file's pages dropped before each read."""
    if cold:
        fd = os.open(path, os.O_RDONLY)
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)

def session(dd, mrdsl):
    c = Conn(host, port)
    extra = b"DataDigest=%s\0MaxRecvDataSegmentLength=%d\0" % (
        b"CRC32C" if dd else b"None", mrdsl)
    st, data = c.login("iqn.2026-11.org.example:pcr", target, extra=extra)
    assert st == 0, "login %x" % st
    keys = dict(kv.split("=", 1) for kv in data.decode().split("\0") if kv)
    c.dd = keys.get("DataDigest") == "CRC32C"
    assert c.dd == dd, keys
    return c

def read10(c, lba, nb):
    drop()
    cdb = struct.pack(">BBIBHB", 0x28, 0, lba, 0, nb, 0)
    return c.scsi(cdb, read_len=nb * 512)

def collect(c, itts, mrdsl):
    """Responses of the reads itts: {itt: data}, checking order."""
    bufs = {i: bytearray() for i in itts}
    left = set(itts)
    while left:
        r, d = c.recv()
        op, itt = r[0] & 0x3f, struct.unpack_from(">I", r, 16)[0]
        assert itt in left, "unexpected ITT %x (op %x)" % (itt, op)
        if op == 0x25:
            off = struct.unpack_from(">I", r, 40)[0]
            assert off == len(bufs[itt]), "offset %d, have %d" % (off, len(bufs[itt]))
            assert 0 < len(d) <= mrdsl, len(d)
            bufs[itt] += d
            if r[1] & 0x01:
                assert r[3] == 0, "status %x" % r[3]
                left.discard(itt)
        elif op == 0x21:
            assert r[3] == 0, "status %x" % r[3]
            left.discard(itt)
        else:
            raise AssertionError("opcode %x" % op)
        c.exp_statsn = struct.unpack_from(">I", r, 24)[0] + 1 if r[1] & 0x01 or op == 0x21 else c.exp_statsn
    return bufs

img = open(path + ".ref", "rb").read()
ranges = [(0, 8), (7, 9), (0, 2048), (12345, 200), (3, 129), (16000, 383),
          (1000, 512)]
for dd in (False, True):
    for mrdsl in (8192, 262144):
        c = session(dd, mrdsl)
        for lba, nb in ranges:
            itt = read10(c, lba, nb)
            got = collect(c, [itt], mrdsl)[itt]
            assert got == img[lba * 512:(lba + nb) * 512], \
                "LBA %d+%d differs (digest %s, %d)" % (lba, nb, dd, mrdsl)
        # Eight in flight: their Data-In PDUs interleave.
        want = {}
        for k in range(8):
            lba = 1 + k * 997
            want[read10(c, lba, 512 + k)] = img[lba * 512:(lba + 512 + k) * 512]
        got = collect(c, list(want), mrdsl)
        for itt in want:
            assert got[itt] == want[itt], "in-flight read %x differs" % itt
        c.logout()
print("ok: %s: reads equal the file, digests and PDU sizes mixed" % label)

# Write 8 KiB (immediate data), then read it back in a 256 KiB read.
c = session(False, 262144)
data = bytes((i * 7 + len(label)) & 0xff for i in range(8192))
cdb = struct.pack(">BBIBHB", 0x2a, 0, 4096, 0, 16, 0)
itt = c.scsi(cdb, write=data)
r, d = c.recv()
assert r[0] & 0x3f == 0x21 and r[3] == 0, "write status %x" % r[3]
c.exp_statsn = struct.unpack_from(">I", r, 24)[0] + 1
itt = read10(c, 4000, 512)
got = collect(c, [itt], 262144)[itt]
want = img[4000 * 512:4096 * 512] + data + img[4112 * 512:4512 * 512]
assert got == want, "read after write differs"
c.logout()
with open(path + ".ref", "r+b") as f:
    f.seek(4096 * 512)
    f.write(data)
print("ok: %s: a read sees the write before it" % label)
PY
}

check cached
check "not cached"

# sendfile: through an address of this host that is not a loopback one.
ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.' | grep -v '^127\.' | head -1)
if [ -n "$ip" ]; then
	port=$(free_port)
	sed "s/127\.0\.0\.1:[0-9]*/$ip:$port/" "$TMP/map.json" >"$TMP/map2.json"
	start_gw "$TMP/map2.json"
	cat "$TMP/disk.img" >/dev/null
	check "cached, via $ip" "$ip"
	check "not cached, via $ip" "$ip"
else
	note "no non-loopback IPv4 address: sendfile not exercised"
fi
