#!/bin/bash
# Per-initiator images of kind lvm against real LVM: a volume group on a
# loop device, a thin pool, a golden thin volume; two initiators get thin
# snapshots, write their own data, find it after a restart; a thick
# volume under policy delete is removed after logout.  Needs LVM and
# device-mapper: where they are missing (this project's CI machines have
# no device-mapper) the test says so and skips; t/per-initiator-lvm.sh
# covers everything else with a stand-in for LVM's commands.
source "$(dirname "$0")/functions.sh"
[ -e /dev/mapper/control ] || { echo "SKIP: no device-mapper (/dev/mapper/control): real LVM cannot run here"; exit 77; }
command -v lvcreate >/dev/null || { echo "SKIP: LVM is not installed (apt-get install lvm2)"; exit 77; }
requires qemu-io --version
requires losetup --version

vg=igwtest$$
truncate -s 512M "$TMP/pv.img"
pv=$(losetup --find --show "$TMP/pv.img") || { echo "SKIP: no loop device"; exit 77; }
cleanup_fn "losetup -d $pv"
pvcreate -qq "$pv" || fail "pvcreate"
cleanup_fn "pvremove -qq -ff -y $pv"
vgcreate -qq $vg "$pv" || fail "vgcreate"
cleanup_fn "vgremove -qq -ff -y $vg"
lvcreate -qq --yes --type thin-pool --size 256M --name pool0 $vg || fail "thin pool"
lvcreate -qq --yes --type thin --virtualsize 32M --thinpool pool0 --name golden $vg || fail "golden"
gdev=/dev/$vg/golden
python3 -c "import sys; f = open(sys.argv[1], 'r+b'); f.write(b'G' * (1 << 20)); f.flush()" "$gdev"
sync
golden_sum=$(sha256sum < "$gdev")

port=$(free_port)
cd "$TMP"
cat >map.json <<EOM
{ "portals": ["127.0.0.1:$port"], "state_dir": "state",
  "targets": [
    { "name": "$TARGET",
      "luns": [ { "lun": 0, "per_initiator": { "kind": "lvm", "vg": "$vg",
                  "origin": "golden", "thin_pool": "pool0" } } ] },
    { "name": "iqn.2026-11.org.example:thick",
      "luns": [ { "lun": 0, "per_initiator": { "kind": "lvm", "vg": "$vg",
                  "size": "16M", "policy": "delete" } } ] } ] }
EOM
start_gw map.json
INI=iqn.2026-11.org.example:node
qio() {
	local ini=$1 lun=$2 tgt=$3; shift 3
	local out
	out=$(qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$port,target=$tgt,lun=$lun,initiator-name=$ini" "$@" 2>&1)
	[ $? -eq 0 ] && ! grep -qiE "fail|error|mismatch" <<<"$out" && return 0
	echo "qemu-io as $ini: $out" >&2
	return 1
}
for i in 1 2; do
	qio $INI$i 0 $TARGET -c "read -P 0x47 0 1M" -c "write -P 0x1$i 4M 1M" || fail "node$i"
done
stop_gw
start_gw map.json
for i in 1 2; do
	qio $INI$i 0 $TARGET -c "read -P 0x47 0 1M" -c "read -P 0x1$i 4M 1M" || fail "node$i after restart"
done
[ "$(sha256sum < "$gdev")" = "$golden_sum" ] || fail "the golden volume changed"
qio ${INI}1 0 iqn.2026-11.org.example:thick -c "write -P 0x33 0 1M" || fail "thick volume"
sleep 3
[ "$(lvs --noheadings -o lv_name $vg | grep -c igw-l0-iqn.2026-11.org.example_node1)" = 1 ] ||
	fail "policy delete: the thick volume is still there (or the snapshot went)"
stop_gw
note "ok"
