#!/bin/bash
# The FUSE view (top-level "fuse_mount"), on a 512-byte file LUN (LUN 0,
# read-only in the view), a 4096-byte memory LUN with "fuse_writable"
# (LUN 1) and a read-only, removable memory LUN with "fuse_writable"
# (LUN 2).
# Checks: the layout (a folder per target, lun<N> and lun<N>.stats), sizes
# and mode bits; random data written through iSCSI (qemu-img) while the
# view is read in a loop is then read back through the view byte for byte
# (no stale page cache); the stats files count the writes; writes through
# the view fail with EACCES without fuse_writable and EROFS on a read-only
# LUN; unaligned and aligned writes through the view (read-modify-write
# of partial blocks), fsync, ENOSPC at the end, and the result read back
# through iSCSI (qemu-io read -P, qemu-img convert + cmp); SIGTERM while a
# reader holds a view file open exits 0 and leaves no mount behind; a
# stale mount left by a killed daemon is replaced at the next start; with
# LUN 2's medium ejected the view's reads fail with ENOMEDIUM.
# Does not check: per-initiator images in the view, a daemon that drops
# root ("user"), blockdev or nbd LUNs in the view.
source "$(dirname "$0")/functions.sh"
requires_fuse_view
requires python3 --version
requires qemu-img --version
requires qemu-io --version
qemu-img --help | grep -q "Supported formats:.*iscsi" ||
	{ echo "$0: SKIP: qemu-img lacks the iscsi driver (qemu-block-extra)"; exit 77; }

port=$(free_port)
mnt=$TMP/view
size=16777216
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "16M" } },
  { "lun": 1, "backend": { "type": "memory", "size": "16M" }, "block_size": 4096,
    "fuse_writable": true },
  { "lun": 2, "backend": { "type": "memory", "size": "1M" }, "read_only": true,
    "fuse_writable": true, "removable": true }' '"fuse_mount": "view"'
# Whatever happens, never leave a mount behind (runs after stop_gw_quiet).
cleanup_fn "grep -qF ' $mnt ' /proc/mounts && umount -l '$mnt'"
start_gw "$TMP/map.json"
dir=$mnt/$TARGET
url=iscsi://127.0.0.1:$port/$TARGET

mounted() { grep -qF " $mnt fuse" /proc/mounts; }
mounted || fail "no FUSE mount on $mnt"
grep -q "FUSE view of 1 target mounted on $mnt" "$GW_LOG" || fail "no mount line in the log"

# Layout, sizes, modes.
[ "$(ls "$mnt")" = "$TARGET" ] || fail "root lists: $(ls "$mnt")"
[ "$(ls "$dir" | tr '\n' ' ')" = "lun0 lun0.stats lun1 lun1.stats lun2 lun2.stats " ] ||
	fail "target folder lists: $(ls "$dir" | tr '\n' ' ')"
[ "$(stat -c %s "$dir/lun0")" = $size ] || fail "lun0 size $(stat -c %s "$dir/lun0")"
[ "$(stat -c %s "$dir/lun2")" = 1048576 ] || fail "lun2 size"
[ "$(stat -c '%a %U' "$dir/lun0")" = "400 root" ] || fail "lun0 mode $(stat -c '%a %U' "$dir/lun0")"
[ "$(stat -c %a "$dir/lun1")" = 600 ] || fail "lun1 mode $(stat -c %a "$dir/lun1")"
[ "$(stat -c %a "$dir/lun2")" = 400 ] || fail "lun2 mode (read-only LUN) $(stat -c %a "$dir/lun2")"
[ "$(stat -c %a "$dir/lun0.stats")" = 444 ] || fail "stats mode"
[ -e "$dir/lun3" ] && fail "lun3 exists"
[ -e "$mnt/iqn.2026-11.org.example:nope" ] && fail "unknown target exists"
cmp -s -n $size "$dir/lun0" /dev/zero || fail "lun0 does not read as zeros before any write"

# iSCSI writes while the view is read in a loop; then the view must show
# every byte written.
head -c $size /dev/urandom > "$TMP/in.raw"
for lun in 0 1; do
	rm -f "$TMP/stop" "$TMP/ready" "$TMP/reader.out"
	python3 - "$dir/lun$lun" "$TMP/stop" "$TMP/ready" $size > "$TMP/reader.out" 2>&1 <<'PY' &
import os, sys
path, stop, ready, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
reads = passes = 0
open(ready, "w").close()
while not os.path.exists(stop):
    fd = os.open(path, os.O_RDONLY)
    off = 0
    while off < size and not os.path.exists(stop):
        b = os.pread(fd, 256 << 10, off)
        assert len(b) == min(256 << 10, size - off), "short read at %d: %d" % (off, len(b))
        off += len(b)
        reads += 1
    assert os.pread(fd, 4096, size) == b"", "read past the end"
    os.close(fd)
    passes += 1
assert reads > 0, "no read while the writer ran"
print("%d reads of 256 KiB (%d passes) while iSCSI wrote" % (reads, passes))
PY
	reader=$!
	for i in $(seq 100); do [ -e "$TMP/ready" ] && break; sleep 0.1; done
	qemu-img convert -n -f raw -O raw "$TMP/in.raw" "$url/$lun" || fail "qemu-img convert in (LUN $lun)"
	touch "$TMP/stop"
	wait $reader || { cat "$TMP/reader.out"; fail "concurrent reader of lun$lun"; }
	note "LUN $lun: concurrent reader: $(cat "$TMP/reader.out")"
	cmp "$dir/lun$lun" "$TMP/in.raw" || fail "the view of lun$lun differs from what iSCSI wrote"
done
# Unaligned reads (dd with odd offsets and sizes, and across the end).
dd if="$dir/lun0" bs=1 skip=1000 count=3000 status=none | cmp - <(dd if="$TMP/in.raw" bs=1 skip=1000 count=3000 status=none) ||
	fail "unaligned read"
python3 - "$dir/lun0" "$TMP/in.raw" $size <<'PY' || fail "reads at odd offsets"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); want = open(sys.argv[2], "rb").read(); size = int(sys.argv[3])
for off, n in [(1, 1), (511, 2), (513, 70000), (size - 700, 4096), (size - 1, 10), (size, 10), (size + 5000, 1)]:
    got = os.pread(fd, n, off)
    assert got == want[off:off + n], (off, n, len(got))
PY

# Stats: live counters of the iSCSI writes.
cat "$dir/lun0.stats"
stat0() { awk -v k="$1" '$1 == k { print $2 }' "$dir/lun$2.stats"; }
[ "$(stat0 size 0)" = $size ] || fail "stats size"
[ "$(stat0 block_size 0)" = 512 ] && [ "$(stat0 block_size 1)" = 4096 ] || fail "stats block_size"
[ "$(stat0 backend 0)" = file ] && [ "$(stat0 backend 1)" = memory ] || fail "stats backend"
[ "$(stat0 read_only 0)" = false ] && [ "$(stat0 read_only 2)" = true ] || fail "stats read_only"
[ "$(stat0 fuse_writable 0)" = false ] && [ "$(stat0 fuse_writable 1)" = true ] || fail "stats fuse_writable"
[ "$(stat0 writes 0)" -gt 0 ] || fail "stats: no writes counted on LUN 0"
[ "$(stat0 write_bytes 0)" -ge $size ] || fail "stats: write_bytes $(stat0 write_bytes 0) < $size on LUN 0"
[ "$(stat0 write_bytes 1)" -ge $size ] || fail "stats: write_bytes on LUN 1"
[ "$(stat0 reads 0)" -gt 0 ] || fail "stats: no reads counted on LUN 0"
[ "$(stat0 errors 0)" = 0 ] || fail "stats: errors on LUN 0"

# Writes through the view: refused without fuse_writable (EACCES) and on
# a read-only LUN (EROFS); the stats file is never writable.
python3 - "$dir" <<'PY' || fail "write refusals"
import errno, os, sys
d = sys.argv[1]
for name, want in [("lun0", errno.EACCES), ("lun2", errno.EROFS), ("lun0.stats", errno.EACCES)]:
    try:
        os.open(os.path.join(d, name), os.O_WRONLY)
    except OSError as e:
        assert e.errno == want, (name, e)
    else:
        raise AssertionError("%s opened for writing" % name)
try:
    os.truncate(os.path.join(d, "lun1"), 4096)
except OSError as e:
    assert e.errno == errno.EPERM, e
else:
    raise AssertionError("lun1 truncated")
PY
dd if=/dev/zero of="$dir/lun0" bs=512 count=1 conv=notrunc status=none 2>/dev/null &&
	fail "dd wrote to lun0 (not fuse_writable)"
cmp "$dir/lun0" "$TMP/in.raw" || fail "lun0 changed after refused writes"

# Writable LUN 1 (4096-byte blocks): partial blocks, an aligned run, a
# write across the end (cut short) and one past it (ENOSPC), then fsync.
writes0=$(stat0 writes 1)
cp "$TMP/in.raw" "$TMP/expect1.raw"
python3 - "$dir/lun1" "$TMP/expect1.raw" $size <<'PY' || fail "writes through the view"
import errno, os, sys
path, expect, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_RDWR | os.O_TRUNC)   # O_TRUNC is ignored, as on a disk
assert os.fstat(fd).st_size == size
ex = os.open(expect, os.O_RDWR)
writes = [(1000, b"\xab" * 5000),            # head and tail partial
          (8190, b"\x5a" * 3),                # inside one block, across a boundary
          (1 << 20, b"\xcd" * 65536),         # aligned
          (3 * 4096 + 17, b"\x11" * 1),       # one byte
          (200000, os.urandom(300000))]       # large, unaligned
for off, data in writes:
    assert os.pwrite(fd, data, off) == len(data), off
    os.pwrite(ex, data, off)
n = os.pwrite(fd, b"\xee" * 8192, size - 100)
assert n == 100, n
os.pwrite(ex, b"\xee" * 100, size - 100)
try:
    os.pwrite(fd, b"x", size)
except OSError as e:
    assert e.errno == errno.ENOSPC, e
else:
    raise AssertionError("write past the end")
os.fsync(fd)
for off, data in writes:
    assert os.pread(fd, len(data), off) == data, off
os.close(fd)
PY
qemu-io -r -f raw -c 'read -P 0xab 1000 5000' -c 'read -P 0xcd 1048576 65536' \
	-c 'read -P 0xee 16777116 100' "$url/1" > "$TMP/qemu-io.out" ||
	{ cat "$TMP/qemu-io.out"; fail "qemu-io read"; }
grep -q "Pattern verification failed" "$TMP/qemu-io.out" && { cat "$TMP/qemu-io.out"; fail "qemu-io pattern"; }
qemu-img convert -f raw -O raw "$url/1" "$TMP/out1.raw" || fail "qemu-img convert out (LUN 1)"
cmp "$TMP/out1.raw" "$TMP/expect1.raw" || fail "iSCSI does not read what the view wrote (LUN 1)"
[ "$(stat0 writes 1)" -ge $((writes0 + 6)) ] || fail "view writes not counted ($writes0 -> $(stat0 writes 1))"
[ "$(stat0 errors 1)" = 0 ] || fail "stats: errors on LUN 1"

# LUN 2 is removable: with its medium ejected (START STOP UNIT from a
# raw initiator) the view's reads fail with ENOMEDIUM, as iSCSI reads end
# with NOT READY, MEDIUM NOT PRESENT; loaded again, they read.
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$dir/lun2" <<'PY' || fail "view of an ejected medium"
import errno, os, sys
from iscsi_raw import Conn
port, target, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Conn("127.0.0.1", port)
assert c.login("iqn.2026-11.org.example:eject", target)[0] == 0
fd = os.open(path, os.O_RDONLY)
assert len(os.pread(fd, 4096, 0)) == 4096
assert c.command(bytes([0x1b, 0, 0, 0, 0x02, 0]), lun=2)[:2] == (0, None), "eject"
st, sn, _ = c.command(bytes([0x00] * 6), lun=2)
assert st == 2 and sn == (0x02, 0x3a, 0x00), ("TUR with the medium out", st, sn)
try:
    os.pread(fd, 4096, 0)
    raise AssertionError("the view read an ejected medium")
except OSError as e:
    assert e.errno == errno.ENOMEDIUM, e
assert c.command(bytes([0x1b, 0, 0, 0, 0x03, 0]), lun=2)[:2] == (0, None), "load"
assert len(os.pread(fd, 4096, 0)) == 4096
os.close(fd)
print("ok: ENOMEDIUM while ejected, reads again once loaded")
PY

# SIGTERM while a reader holds lun0 open: exit 0 at once, no mount left,
# and the reader's next read fails instead of hanging.
python3 - "$dir/lun0" "$TMP/held" > "$TMP/held.out" 2>&1 <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 4096, 0)
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.05)
try:
    os.pread(fd, 4096, 0)
    print("read after shutdown: succeeded")
except OSError as e:
    print("read after shutdown:", e.strerror)
PY
holder=$!
for i in $(seq 100); do [ -e "$TMP/held" ] && break; sleep 0.1; done
[ -e "$TMP/held" ] || fail "the holder did not open lun0"
start=$(date +%s)
stop_gw
[ $(( $(date +%s) - start )) -le 5 ] || fail "shutdown took more than 5 s with a file held open"
mounted && fail "the view is still mounted after shutdown"
grep -q "FUSE view unmounted from $mnt" "$GW_LOG" || fail "no unmount line in the log"
rm -f "$TMP/held"
wait $holder
note "holder: $(cat "$TMP/held.out")"
grep -q "read after shutdown: succeeded" "$TMP/held.out" && fail "a read through the view succeeded after shutdown"

# A stale mount from a killed daemon is replaced at the next start.
start_gw "$TMP/map.json"
kill -KILL $GW_PID; wait $GW_PID 2>/dev/null
mounted || fail "no stale mount after SIGKILL (test assumption)"
stat "$mnt" >/dev/null 2>&1 && fail "the stale mount still answers (test assumption)"
start_gw "$TMP/map.json"
grep -q "stale FUSE mount" "$GW_LOG" || fail "the stale mount was not reported"
cmp "$dir/lun0" "$TMP/in.raw" || fail "lun0 after restart"
[ "$(grep -cF " $mnt fuse" /proc/mounts)" = 1 ] || fail "more than one mount on $mnt"
stop_gw
mounted && fail "the view is still mounted after the second shutdown"
exit 0
