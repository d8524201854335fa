#!/bin/bash
# Per-initiator images, the diskless-boot case: one golden image, three
# initiators logging in under their own names through QEMU's iSCSI
# driver.  Each reads the golden data, writes its own, finds it again
# after a gateway restart and never sees another's; the golden image is
# unchanged.  Then the policies (keep, reset, delete), the `images`
# command (list, reset, delete, commit, refusing an image in use), and a
# provisioning failure that refuses that login only.
source "$(dirname "$0")/functions.sh"
requires qemu-io --version
requires qemu-img --version
requires qemu-nbd --version
requires python3 --version

port=$(free_port)
cd "$TMP"
# Golden: 1 MiB of 'G' then zeros, 32 MiB.
python3 -c "
f = open('golden.img', 'wb'); f.write(b'G' * (1 << 20)); f.truncate(32 << 20)"
golden_sum=$(sha256sum golden.img | cut -d' ' -f1)
cat >map.json <<EOM
{ "portals": ["127.0.0.1:$port"],
  "state_dir": "state",
  "control_socket": "ctl.sock",
  "targets": [
    { "name": "$TARGET",
      "luns": [
        { "lun": 0, "per_initiator": { "kind": "overlay", "golden": "golden.img" } },
        { "lun": 1, "per_initiator": { "kind": "file", "size": "8M", "policy": "reset" } },
        { "lun": 2, "per_initiator": { "kind": "file", "size": "4M", "policy": "delete" } } ] },
    { "name": "iqn.2026-11.org.example:broken",
      "luns": [ { "lun": 0, "per_initiator": { "kind": "overlay", "golden": "missing.img" } } ] },
    { "name": "iqn.2026-11.org.example:plain",
      "luns": [ { "lun": 0, "backend": { "type": "file", "path": "plain.img", "size": "4M" } } ] } ] }
EOM
"$ISCSI_GW" check --config map.json || fail "map refused"
start_gw map.json

INI=iqn.2026-11.org.example:client
# qio INITIATOR LUN [TARGET] -c ...: qemu-io as that initiator; fails on
# any error or pattern mismatch.
qio() {
	local ini=$1 lun=$2 tgt=$3; shift 3
	local out
	out=$(qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$port,target=$tgt,lun=$lun,initiator-name=$ini" "$@" 2>&1)
	local rc=$?
	echo "$out"
	[ $rc -eq 0 ] && ! grep -qiE "fail|error|mismatch" <<<"$out" && return 0
	echo "qemu-io as $ini on LUN $lun of $tgt: $out" >&2
	return 1
}

for i in 1 2 3; do
	qio $INI$i 0 $TARGET -c "read -P 0x47 0 1M" -c "read -P 0 1M 1M" \
		-c "write -P 0x1$i 2M 1M" -c "write -P 0x2$i 31M 4k" \
		>/dev/null || fail "client$i: golden read or own write on LUN 0"
	qio $INI$i 1 $TARGET -c "write -P 0x3$i 0 64k" >/dev/null ||
		fail "client$i: write on LUN 1"
	qio $INI$i 2 $TARGET -c "write -P 0x4$i 0 64k" -c "read -P 0x4$i 0 64k" \
		>/dev/null || fail "client$i: write on LUN 2"
done
note "three initiators wrote their own data over the golden image"

check_own() {
	local i j
	for i in 1 2 3; do
		qio $INI$i 0 $TARGET -c "read -P 0x47 0 1M" -c "read -P 0x1$i 2M 1M" \
			-c "read -P 0x2$i 31M 4k" -c "read -P 0 3M 1M" >/dev/null ||
			fail "client$i does not read its own data ($1)"
		for j in 1 2 3; do
			[ $i = $j ] && continue
			if qio $INI$i 0 $TARGET -c "read -P 0x1$j 2M 4k" >/dev/null; then
				fail "client$i reads client$j's data ($1)"
			fi
		done
	done
}
check_own "same run"

# Policy reset: LUN 1 is fresh at every login.
qio ${INI}1 1 $TARGET -c "read -P 0 0 64k" >/dev/null ||
	fail "policy reset: LUN 1 kept the last session's data"
# Policy delete: LUN 2's image goes after the last logout.
sleep 2
left=$(find state/images -path '*lun2*' -name '*.img' | wc -l)
[ "$left" = 0 ] || fail "policy delete: $left LUN 2 images left after logout"
qio ${INI}1 2 $TARGET -c "read -P 0 0 64k" >/dev/null ||
	fail "policy delete: a new login found old data"

# Restart: the images persist and are found again by name.
stop_gw
start_gw map.json
check_own "after a restart"
note "each initiator found its own image after a restart"

# The name compares case-insensitively (RFC 7143): same image.
qio IQN.2026-11.ORG.EXAMPLE:CLIENT1 0 $TARGET -c "read -P 0x11 2M 1M" >/dev/null ||
	fail "the upper-case form of client1's name got another image"

# A hostile name stays inside state_dir.
qio "iqn.2026-11.org.example:x/../../../escape" 0 $TARGET -c "write -P 0x55 0 4k" >/dev/null ||
	note "(the hostile name was refused at login)"
[ -z "$(find "$TMP" -maxdepth 1 -name '*escape*')" ] || fail "an image escaped state_dir"
[ -z "$(find "$TMP/state/images" -maxdepth 3 -name '*escape*' -path '*/lun0/*' -prune -o -name '*escape*' -print | grep -v '/lun[0-9]*/')" ] ||
	fail "an image landed outside its LUN folder"

# The golden image is unchanged, and the overlays are qcow2 over it.
[ "$(sha256sum golden.img | cut -d' ' -f1)" = "$golden_sum" ] || fail "the golden image changed"
ov=$(find state/images -path '*lun0*' -name '*.qcow2' | head -1)
qemu-img info -U --output=json "$ov" | python3 -c "
import json, sys, os
i = json.load(sys.stdin)
assert i['format'] == 'qcow2', i
assert os.path.basename(i['backing-filename']) == 'golden.img', i
" || fail "overlay $ov is not a qcow2 over golden.img"

# images list (sessions close and release their images within a tick)
sleep 2
"$ISCSI_GW" images list --config map.json --json >list.json || fail "images list"
python3 - "$INI" <<'PY' || fail "images list --json"
import json, sys
rows = json.load(open("list.json"))
ini = sys.argv[1]
lun0 = {r["initiator"] for r in rows if r["lun"] == 0}
for i in "123":
    assert ini + i in lun0, (ini + i, lun0)
for r in rows:
    assert r["kind"] in ("overlay", "file"), r
    assert not r["in_use"], r
    assert "size" in r, r
PY
"$ISCSI_GW" images list --config map.json --initiator ${INI}2 | grep -q "${INI}2" ||
	fail "images list (text) lacks client2"

# images commit: client3's image becomes a new golden image.
"$ISCSI_GW" images commit --config map.json --target $TARGET --lun 0 \
	--initiator ${INI}3 --output golden2.img >commit.out 2>&1 || { cat commit.out; fail "images commit"; }
qemu-io -f raw golden2.img -c "read -P 0x47 0 1M" -c "read -P 0x13 2M 1M" -c "read -P 0x23 31M 4k" \
	| grep -qi fail && fail "the committed golden image lacks client3's data"
"$ISCSI_GW" images commit --config map.json --target $TARGET --lun 0 \
	--initiator ${INI}3 --output golden2.img >/dev/null 2>&1 &&
	fail "images commit overwrote an existing file"

# images reset and delete.
"$ISCSI_GW" images reset --config map.json --target $TARGET --lun 0 --initiator ${INI}1 ||
	fail "images reset"
qio ${INI}1 0 $TARGET -c "read -P 0x47 0 1M" -c "read -P 0 2M 1M" >/dev/null ||
	fail "after images reset, client1 still sees its old data"
"$ISCSI_GW" images delete --config map.json --target $TARGET --lun 0 --initiator ${INI}2 ||
	fail "images delete"
"$ISCSI_GW" images list --config map.json --json --lun 0 | grep -q "${INI}2\"" &&
	fail "client2's image is still listed after delete"
"$ISCSI_GW" images delete --config map.json --target $TARGET --lun 0 --initiator ${INI}9 2>err.txt &&
	fail "deleting a missing image succeeded"
grep -q "no image" err.txt || fail "unclear message for a missing image: $(cat err.txt)"

# An image in use is not changed: hold a session as client3.
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "${INI}3" "$ISCSI_GW" "$TMP/map.json" <<'PY' || fail "images reset of an image in use"
import subprocess, sys
from iscsi_raw import Conn
port, target, ini, gw, m = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
c = Conn("127.0.0.1", port, timeout=120)
assert c.login(ini, target)[0] == 0
r = subprocess.run([gw, "images", "reset", "--config", m, "--target", target,
                    "--lun", "0", "--initiator", ini], capture_output=True, text=True)
assert r.returncode == 1, r
assert "in use" in r.stderr, r.stderr
l = subprocess.run([gw, "images", "list", "--config", m, "--json",
                    "--initiator", ini], capture_output=True, text=True)
assert '"in_use": true' in l.stdout, l.stdout
# status lists the open image under its template LUN.
import json
st = json.loads(subprocess.run([gw, "status", "--config", m, "--json"],
                               capture_output=True, text=True, check=True).stdout)
t = [x for x in st["targets"] if x["name"] == target][0]
lun0 = [x for x in t["luns"] if x["lun"] == 0][0]
assert lun0["per_initiator"]["kind"] == "overlay", lun0
imgs = lun0["per_initiator"]["open_images"]
mine = [i for i in imgs if i["initiator"] == ini]
assert len(mine) == 1, imgs
assert mine[0]["backend"] == "qemu-nbd", imgs
assert any(s["initiator"] == ini and s["target"] == target for s in st["sessions"]), st["sessions"]
c.logout()
PY

# Provisioning failure (golden missing): that login is refused with a
# target-error status and a log line; other sessions go on.
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$INI" <<'PY' || fail "provisioning failure"
import sys
from iscsi_raw import Conn
port, target, ini = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ok = Conn("127.0.0.1", port, timeout=120)
assert ok.login(ini + "1", target)[0] == 0
bad = Conn("127.0.0.1", port, timeout=120)
status, _ = bad.login(ini + "1", "iqn.2026-11.org.example:broken")
assert status >> 8 == 3, hex(status)      # class 3: target error
assert bad.closed_within(5)
# The first session still works: TEST UNIT READY.
ok.scsi(bytes(6))
r, _ = ok.recv()
assert r[0] & 0x3f == 0x21 and r[3] == 0, r[:4]
ok.logout()
PY
grep -q "golden image .*missing.img" "$GW_LOG" || fail "no log line names the missing golden image"
qio ${INI}1 0 iqn.2026-11.org.example:plain -c "write -P 0x77 0 64k" >/dev/null ||
	fail "an ordinary target beside the per-initiator ones"

stop_gw
[ "$(sha256sum golden.img | cut -d' ' -f1)" = "$golden_sum" ] || fail "the golden image changed"
pgrep -f "qemu-nbd.*$TMP" >/dev/null && fail "a qemu-nbd outlived the gateway"
note "ok"
