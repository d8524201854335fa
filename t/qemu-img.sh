#!/bin/bash
# QEMU's iscsi driver (libiscsi inside qemu-img) as the initiator: a random
# 24 MiB image is converted in through iscsi://, converted back out, and
# must be byte-identical.  Runs on a 512-byte file LUN, a 4096-byte memory
# LUN, a file LUN with "direct": true (O_DIRECT, page cache bypassed) and
# a thin file LUN, where QEMU asks GET LBA STATUS and `qemu-img map` must
# show only the written 24 MiB as allocated.
source "$(dirname "$0")/functions.sh"
requires qemu-img --version
qemu-img --help | grep -q "Supported formats:.*iscsi" || { echo "SKIP: qemu-img lacks the iscsi driver (qemu-block-extra)"; exit 77; }

port=$(free_port)
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "32M" } },
  { "lun": 1, "backend": { "type": "memory", "size": "32M" }, "block_size": 4096 },
  { "lun": 2, "backend": { "type": "file", "path": "direct.img", "size": "32M", "direct": true } },
  { "lun": 3, "backend": { "type": "file", "path": "thin.img", "size": "32M" }, "thin": true }'
start_gw "$TMP/map.json"
head -c 25165824 /dev/urandom > "$TMP/in.raw"
for lun in 0 1 2 3; do
	url=iscsi://127.0.0.1:$port/$TARGET/$lun
	qemu-img convert -n -f raw -O raw "$TMP/in.raw" "$url" || fail "convert in (LUN $lun)"
	qemu-img convert -f raw -O raw "$url" "$TMP/out$lun.raw" || fail "convert out (LUN $lun)"
	head -c 25165824 "$TMP/out$lun.raw" | cmp - "$TMP/in.raw" || fail "data differs (LUN $lun)"
	qemu-img info "$url" | grep -q "virtual size: 32 MiB" || fail "qemu-img info size (LUN $lun)"
done
# The file LUN holds the same bytes on disk.
head -c 25165824 "$TMP/lun0.img" | cmp - "$TMP/in.raw" || fail "backing file differs"
head -c 25165824 "$TMP/direct.img" | cmp - "$TMP/in.raw" || fail "O_DIRECT backing file differs"
# Allocation status of the thin LUN: written 24 MiB mapped, the rest not.
qemu-img map --output=json -f raw iscsi://127.0.0.1:$port/$TARGET/3 > "$TMP/map.out" || fail "qemu-img map"
cat "$TMP/map.out"
python3 - "$TMP/map.out" <<'PY' || fail "allocation map of the thin LUN"
import json, sys
m = json.load(open(sys.argv[1]))
data = sum(e["length"] for e in m if e["data"])
hole = sum(e["length"] for e in m if not e["data"])
assert data == 24 << 20 and hole == 8 << 20, (data, hole)
PY
stop_gw
