#!/bin/bash
# Per-initiator images in the FUSE view: while an initiator is logged in,
# its image of each per-initiator LUN is a file "lun<N>.<key>" (and
# "lun<N>.<key>.stats") in the target's folder.  Data written through
# iSCSI by that initiator (qemu-img, as that initiator name, while the
# view file is read in a loop) reads back byte for byte through the view,
# for a fresh-file image and for an overlay of a golden image; the file
# goes when the initiator's last session ends, except that a file held
# open in the view keeps the image open until it is closed.
source "$(dirname "$0")/functions.sh"
requires_fuse_view
requires python3 --version
requires qemu-img --version
requires qemu-nbd --version
qemu-img --help | grep -q "Supported formats:.*iscsi" ||
	{ echo "$0: SKIP: qemu-img lacks the iscsi driver (qemu-block-extra)"; exit 77; }

port=$(free_port)
mnt=$TMP/view
cd "$TMP"
python3 -c "
f = open('golden.img', 'wb'); f.write(b'G' * (1 << 20)); f.truncate(8 << 20)"
write_map "$TMP/map.json" $port '
  { "lun": 0, "per_initiator": { "kind": "file", "size": "16M" } },
  { "lun": 1, "per_initiator": { "kind": "overlay", "golden": "golden.img" } }' \
  '"fuse_mount": "view", "state_dir": "state"'
cleanup_fn "grep -qF ' $mnt ' /proc/mounts && umount -l '$mnt'"
start_gw "$TMP/map.json"
dir=$mnt/$TARGET
INI=iqn.2026-11.org.example:viewer
[ -z "$(ls "$dir")" ] || fail "images listed before any login: $(ls "$dir")"

# Hold a session as $INI until $TMP/go-away exists.
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$INI" "$TMP/go-away" <<'PY' &
import os, sys, time
from iscsi_raw import Conn
port, target, ini, flag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = Conn("127.0.0.1", port, timeout=120)
assert c.login(ini, target)[0] == 0
while not os.path.exists(flag):
    time.sleep(0.1)
c.logout()
PY
holder=$!
cleanup_fn "touch '$TMP/go-away'; wait $holder 2>/dev/null"
for i in $(seq 100); do
	[ "$(ls "$dir" | grep -c '^lun[01]\.[^ ]*[0-9a-f]$')" = 2 ] && break
	sleep 0.1
done
f0=$(ls -d "$dir"/lun0.iqn.2026-11.org.example_viewer-* 2>/dev/null | grep -v stats)
f1=$(ls -d "$dir"/lun1.iqn.2026-11.org.example_viewer-* 2>/dev/null | grep -v stats)
[ -n "$f0" ] && [ -n "$f1" ] || fail "the logged-in initiator's images are not in the view: $(ls "$dir")"
[ "$(stat -c %s "$f0")" = 16777216 ] || fail "file image size $(stat -c %s "$f0")"
[ "$(stat -c %s "$f1")" = 8388608 ] || fail "overlay image size $(stat -c %s "$f1")"
grep -q "^initiator $INI$" "$f0.stats" || fail "stats: $(cat "$f0.stats")"
# The overlay reads the golden data through the view.
head -c 1048576 "$f1" | cmp - <(python3 -c "import sys; sys.stdout.buffer.write(b'G' * (1 << 20))") ||
	fail "the overlay's golden data through the view"

# Write through iSCSI as $INI (a second session of the same initiator
# shares the image) while the view is read in a loop.
head -c 4194304 /dev/urandom > src.raw
( while [ ! -e "$TMP/copy-done" ]; do cat "$f0" > /dev/null || exit 1; done ) &
reader=$!
opts="driver=iscsi,transport=tcp,portal=127.0.0.1:$port,target=$TARGET,initiator-name=$INI"
qemu-img convert -n -f raw --target-image-opts src.raw "$opts,lun=0" || fail "qemu-img to LUN 0"
qemu-img convert -n -f raw --target-image-opts src.raw "$opts,lun=1" || fail "qemu-img to LUN 1"
touch "$TMP/copy-done"
wait $reader || fail "reading the view during the copy"
head -c 4194304 "$f0" | cmp - src.raw || fail "file image: the view differs from what was written"
head -c 4194304 "$f1" | cmp - src.raw || fail "overlay image: the view differs from what was written"
tail -c +4194305 "$f1" | cmp -s - <(head -c 4194304 /dev/zero) || fail "overlay image: the rest is not the golden image's zeroes"
grep -q "^writes [1-9]" "$f0.stats" || fail "stats count no writes: $(cat "$f0.stats")"

# Hold the file image open in the view, end the session: the image stays
# open (and readable) until the file is closed, then leaves the view.
exec 7<"$f0"
touch "$TMP/go-away"
wait $holder || fail "the holding session"
sleep 1
head -c 4194304 <&7 | cmp - src.raw || fail "a file open in the view lost its image"
ls "$dir" | grep -q "^lun0\." || fail "the image left the view while its file was open"
exec 7<&-
for i in $(seq 50); do ls "$dir" | grep -q "^lun0\." || break; sleep 0.1; done
ls "$dir" | grep -q "^lun" && fail "images still in the view after logout: $(ls "$dir")"
# The image itself persists (policy keep) in state_dir.
ls state/images/*/lun0/*.img >/dev/null || fail "the file image was not kept"
stop_gw
grep -qF " $mnt " /proc/mounts && fail "mount left behind"
note "ok"
