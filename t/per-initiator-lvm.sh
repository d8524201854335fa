#!/bin/bash
# Per-initiator images of kind lvm: thin snapshots of a golden LV and
# fresh thick LVs, made and removed through LVM's commands.
#
# This machine has no device-mapper, so LVM itself cannot run: the lvs,
# lvcreate and lvremove found first in PATH are t/fake-lvm/lvm-fake, a
# stand-in that speaks LVM's JSON report format and error messages and
# keeps each "LV" as a sparse file behind a loop device.  What is real:
# the gateway's command lines, its parsing of the JSON report, the block
# devices it serves (loop devices through the blockdev backend), names,
# policies, state and the login refusal when the VG is full.
# t/per-initiator-lvm-real.sh runs the same against real LVM where
# device-mapper exists.
source "$(dirname "$0")/functions.sh"
requires qemu-io --version
fake_lvm $((64 << 20))
# The golden LV: a thin volume in pool0 with 1 MiB of 'G'.
lvcreate --yes --type thin --virtualsize $((16 << 20))b --thinpool pool0 --name golden vg0 >/dev/null ||
	{ echo "SKIP: no loop device available"; exit 77; }
gdev=$(lvs --reportformat json vg0/golden | python3 -c 'import json,sys; print(json.load(sys.stdin)["report"][0]["lv"][0]["lv_path"])')
python3 -c "import sys; open(sys.argv[1], 'r+b').write(b'G' * (1 << 20))" "$gdev"
sync
golden_sum=$(sha256sum < "$gdev")

port=$(free_port)
cd "$TMP"
cat >map.json <<EOM
{ "portals": ["127.0.0.1:$port"],
  "state_dir": "state",
  "targets": [
    { "name": "$TARGET",
      "luns": [ { "lun": 0, "per_initiator": { "kind": "lvm", "vg": "vg0",
                  "origin": "golden", "thin_pool": "pool0" } } ] },
    { "name": "iqn.2026-11.org.example:thick",
      "luns": [ { "lun": 0, "per_initiator": { "kind": "lvm", "vg": "vg0",
                  "size": "24M", "prefix": "scratch", "policy": "delete" } } ] } ] }
EOM
"$ISCSI_GW" check --config map.json || fail "map refused"
start_gw map.json

INI=iqn.2026-11.org.example:node
qio() {
	local ini=$1 lun=$2 tgt=$3; shift 3
	local out
	out=$(qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$port,target=$tgt,lun=$lun,initiator-name=$ini" "$@" 2>&1)
	local rc=$?
	[ $rc -eq 0 ] && ! grep -qiE "fail|error|mismatch" <<<"$out" && return 0
	echo "qemu-io as $ini on LUN $lun of $tgt: $out" >&2
	return 1
}

for i in 1 2; do
	qio $INI$i 0 $TARGET -c "read -P 0x47 0 1M" -c "write -P 0x1$i 4M 1M" ||
		fail "node$i: golden read or own write (thin snapshot)"
done
grep -q "lvcreate --yes --snapshot --name igw-l0-iqn.2026-11.org.example_node1-[0-9a-f]* --setactivationskip n --activate y vg0/golden" \
	"$FAKE_LVM_DIR/commands.log" || { cat "$FAKE_LVM_DIR/commands.log"; fail "unexpected lvcreate command line"; }

stop_gw
start_gw map.json
for i in 1 2; do
	qio $INI$i 0 $TARGET -c "read -P 0x47 0 1M" -c "read -P 0x1$i 4M 1M" ||
		fail "node$i lost its data over a restart"
done
qio ${INI}1 0 $TARGET -c "read -P 0x12 4M 4k" 2>/dev/null && fail "node1 reads node2's data"
[ "$(sha256sum < "$gdev")" = "$golden_sum" ] || fail "the golden LV changed"
note "thin snapshots: own data kept across a restart, golden unchanged"

# Thick LVs: 64 MiB free, 24 MiB each: the third initiator's login is
# refused (out of resources), the first two work.
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$INI" <<'PY' || fail "VG full"
import sys
from iscsi_raw import Conn
port, ini = int(sys.argv[1]), sys.argv[2]
t = "iqn.2026-11.org.example:thick"
# Each login provisions (and zeroes) a thick LV first: on a loaded host
# that can take longer than the client's usual 10 s.
a = Conn("127.0.0.1", port, timeout=120); assert a.login(ini + "a", t)[0] == 0
b = Conn("127.0.0.1", port, timeout=120); assert b.login(ini + "b", t)[0] == 0
c = Conn("127.0.0.1", port, timeout=120)
status, _ = c.login(ini + "c", t)
assert status == 0x0302, hex(status)     # target error: out of resources
# a still works.
a.scsi(bytes(6)); r, _ = a.recv(); assert r[3] == 0, r[:4]
a.logout(); b.logout()
PY
grep -q "insufficient free space" "$GW_LOG" || fail "the refusal's log line does not give LVM's reason"
# Policy delete: the thick LVs go after logout and the space comes back.
for i in $(seq 1 30); do
	[ "$(cat "$FAKE_LVM_DIR/vg0/.free")" = $((64 << 20)) ] && break
	sleep 0.2
done
[ "$(cat "$FAKE_LVM_DIR/vg0/.free")" = $((64 << 20)) ] || { cat "$FAKE_LVM_DIR/commands.log" "$FAKE_LVM_DIR/vg0/.free" "$GW_LOG"; fail "policy delete: thick LVs were not removed"; }
grep -q "^lvremove --yes vg0/scratch-l0-" "$FAKE_LVM_DIR/commands.log" || fail "no lvremove"

"$ISCSI_GW" images list --config map.json --json > list.json || fail "images list"
python3 - "$INI" <<'PY' || fail "images list (lvm)"
import json, sys
rows = json.load(open("list.json"))
names = {r["initiator"] for r in rows if r["kind"] == "lvm"}
assert names == {sys.argv[1] + "1", sys.argv[1] + "2"}, names
for r in rows:
    assert r["image"].startswith("vg0/igw-l0-"), r
    assert r["device"].startswith("/dev/loop"), r
PY
"$ISCSI_GW" images delete --config map.json --target $TARGET --lun 0 --initiator ${INI}2 >/dev/null ||
	fail "images delete (lvm)"
grep -q "^lvremove --yes vg0/igw-l0-iqn.2026-11.org.example_node2-" "$FAKE_LVM_DIR/commands.log" ||
	fail "images delete did not lvremove"
stop_gw
note "ok"
