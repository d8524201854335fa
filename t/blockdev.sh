#!/bin/bash
# The blockdev backend on real block devices: loop devices (this machine
# has no device-mapper, so no LVM here; an LV is driven the same way).
# Size from the device, O_DIRECT and libaio by default, exclusive open (a second LUN
# on the same device is refused), a 4096-byte-sector loop device served
# with 4096-byte blocks, a qemu-img round trip, iscsi-test-cu families
# Read/Write/WriteSame/Unmap on a thin LUN; UNMAP deallocates (a hole
# punched in the device) and the range reads zeroes.  Needs root and
# losetup; skips otherwise.
source "$(dirname "$0")/functions.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for loop devices"; exit 77; }
requires losetup --version
requires iscsi-test-cu --list

truncate -s 64M "$TMP/dev512.img"
truncate -s 64M "$TMP/dev4k.img"
dev1=$(losetup -f --show "$TMP/dev512.img") || { echo "SKIP: no loop device"; exit 77; }
cleanup_fn "losetup -d $dev1"
dev2=$(losetup -f --show -b 4096 "$TMP/dev4k.img") || { echo "SKIP: no second loop device"; exit 77; }
cleanup_fn "losetup -d $dev2"

port=$(free_port)
write_map "$TMP/map.json" $port "
  { \"lun\": 0, \"backend\": { \"type\": \"blockdev\", \"path\": \"$dev1\" }, \"thin\": true },
  { \"lun\": 1, \"backend\": { \"type\": \"blockdev\", \"path\": \"$dev2\" } }"
# Two LUNs on one device: refused (O_EXCL).
write_map "$TMP/twice.json" $port "
  { \"lun\": 0, \"backend\": { \"type\": \"blockdev\", \"path\": \"$dev1\" } },
  { \"lun\": 1, \"backend\": { \"type\": \"blockdev\", \"path\": \"$dev1\" } }"
timeout 10 "$ISCSI_GW" serve --config "$TMP/twice.json" >"$TMP/twice.log" 2>&1 && fail "two LUNs on one device accepted"
grep -q "in use" "$TMP/twice.log" || { cat "$TMP/twice.log"; fail "no clear message for a shared device"; }

start_gw "$TMP/map.json"
grep -q "LUN 1: blockdev, 16384 blocks of 4096 bytes" "$GW_LOG" || { cat "$GW_LOG"; fail "4096-byte device not served with 4096-byte blocks"; }
# O_DIRECT by default, so reads and writes go the async way (libaio).
if grep -q '#define HAVE_LIBAIO 1' "$BUILDDIR/config.h" 2>/dev/null; then
	[ "$(grep -c "LUN [01]: blockdev, .*, IO async" "$GW_LOG")" = 2 ] ||
		{ cat "$GW_LOG"; fail "blockdev LUNs do not use async IO"; }
fi
url=iscsi://127.0.0.1:$port/$TARGET
if command -v qemu-img >/dev/null && qemu-img --help | grep -q "Supported formats:.*iscsi"; then
	head -c 16777216 /dev/urandom > "$TMP/in.raw"
	for lun in 0 1; do
		qemu-img convert -n -f raw -O raw "$TMP/in.raw" $url/$lun || fail "qemu-img in ($lun)"
		qemu-img convert -f raw -O raw $url/$lun "$TMP/out.raw" || fail "qemu-img out ($lun)"
		head -c 16777216 "$TMP/out.raw" | cmp - "$TMP/in.raw" || fail "data differs ($lun)"
	done
	head -c 16777216 "$TMP/dev512.img" | cmp - "$TMP/in.raw" || fail "the device does not hold the data"
	# UNMAP on the thin LUN gives the space back (a hole punched in
	# the device: the loop device punches its backing file) and reads
	# zeroes.
	sync
	before=$(stat -c %b "$TMP/dev512.img")
	qemu-io -f raw -c "discard 0 8M" $url/0 >/dev/null || fail "UNMAP (qemu-io discard)"
	sync
	after=$(stat -c %b "$TMP/dev512.img")
	[ $((before - after)) -ge $(( (8 << 20) / 512 / 2 )) ] ||
		fail "UNMAP did not deallocate on the device ($before -> $after blocks)"
	out=$(qemu-io -f raw -c "read -P 0 0 8M" -c "read -P 0 8M 4k" $url/0 2>&1)
	grep -q "Pattern verification failed at offset $((8 << 20))" <<<"$out" ||
		fail "reads after UNMAP: $out"
	grep -q "Pattern verification failed at offset 0" <<<"$out" &&
		fail "unmapped blocks do not read as zeroes"
	note "UNMAP deallocated $(( (before - after) * 512 >> 20 )) MiB on the device"
fi
: > "$TMP/cu.log"
for lun in 0 1; do
	for s in ALL.Read10 ALL.Read16 ALL.Write10 ALL.Write16 ALL.WriteSame10 ALL.WriteSame16 ALL.Unmap ALL.SynchronizeCache10 ALL.iSCSIResiduals; do
		iscsi-test-cu -d -v -t $s $url/$lun >>"$TMP/cu.log" 2>&1
	done
done
summary=$(python3 "$CU_SCORE" "$TMP/cu.log"); echo "$summary"
python3 "$CU_SCORE" "$TMP/cu.log" --list failed
echo "$summary" | grep -q "failed 0$" || fail "iscsi-test-cu on loop devices"
stop_gw
