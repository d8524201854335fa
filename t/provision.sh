#!/bin/bash
# LUNs of backend type "lvm" and `iscsi-gw provision`: the gateway
# creates a missing volume at start, `provision resize` grows it and the
# running daemon (told through the control socket) serves the new
# capacity with a CAPACITY DATA HAS CHANGED unit attention; shrinking is
# refused, `remove` refuses a volume in use.
#
# This machine has no device-mapper, so LVM itself cannot run: the LVM
# commands found first in PATH are t/fake-lvm/lvm-fake, a stand-in that
# speaks LVM's JSON report format and keeps each volume as a sparse file
# behind a loop device.  The block devices, the daemon and the initiator
# are real.
source "$(dirname "$0")/functions.sh"
requires qemu-io --version
fake_lvm $((256 << 20))
losetup -f >/dev/null 2>&1 || { echo "SKIP: no loop device available"; exit 77; }

port=$(free_port)
cd "$TMP"
cat >map.json <<EOM
{ "portals": ["127.0.0.1:$port"], "control_socket": "ctl.sock",
  "targets": [ { "name": "$TARGET",
    "luns": [ { "lun": 0, "backend": { "type": "lvm", "vg": "vg0", "lv": "data0", "size": "16M" } } ] } ] }
EOM
"$ISCSI_GW" check --config map.json >/dev/null || fail "map refused"
# Bad keys are named.
sed 's/"data0"/"bad name!"/' map.json > bad.json
"$ISCSI_GW" check --config bad.json 2>err.txt && fail "a bad LV name was accepted"
grep -q "/targets/0/luns/0/backend/lv: must be an LVM name" err.txt || fail "unclear: $(cat err.txt)"
sed 's/"size": "16M"/"size": "16M", "colour": "red"/' map.json > bad.json
"$ISCSI_GW" check --config bad.json 2>err.txt && fail "an unknown key was accepted"
grep -q "/targets/0/luns/0/backend: unknown key 'colour'" err.txt || fail "unclear: $(cat err.txt)"

start_gw map.json
grep -q "created logical volume" "$GW_LOG" || fail "the missing volume was not created"
url=iscsi://127.0.0.1:$port/$TARGET/0
out=$(qemu-io -f raw -c "write -P 0x5a 0 1M" "$url" 2>&1) || fail "write: $out"

"$ISCSI_GW" provision list --config map.json --json > list.json || fail "provision list"
python3 -c "
import json
r = json.load(open('list.json'))
assert len(r) == 1 and r[0]['exists'] and r[0]['size'] == 16 << 20, r
assert r[0]['device'].startswith('/dev/loop'), r" || fail "provision list: $(cat list.json)"

PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$ISCSI_GW" <<'PY' || fail "resize seen by a logged-in initiator"
import struct, subprocess, sys
from iscsi_raw import Conn
port, target, gw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Conn("127.0.0.1", port, timeout=120)
assert c.login("iqn.2026-11.org.example:watcher", target)[0] == 0

def cmd(cdb, n=0):
    c.scsi(cdb, read_len=n)
    data = b""
    while True:
        r, d = c.recv()
        if r[0] & 0x3f == 0x25:          # Data-In
            data += d
            if r[1] & 0x01:               # S bit: status in it
                return r[3], data, b""
            continue
        assert r[0] & 0x3f == 0x21, r[:4]
        return r[3], data, d

# Clear the login's unit attentions first.
for _ in range(4):
    st, _, _ = cmd(bytes(6))
    if st == 0:
        break
st, d, _ = cmd(bytes([0x25]) + bytes(9), 8)
assert st == 0 and struct.unpack(">I", d[:4])[0] == (16 << 20) // 512 - 1, d
r = subprocess.run([gw, "provision", "resize", "--config", "map.json", "--target",
                    target, "--lun", "0", "--size", "32M"], capture_output=True, text=True)
assert r.returncode == 0, r
import json
ans = json.loads(r.stdout.split("daemon: ", 1)[1])
assert ans["ok"] and ans["changed"] and ans["blocks"] == (32 << 20) // 512, ans
st, _, sense = cmd(bytes(6))
assert st == 2, st
key, asc, ascq = sense[4] & 0xf, sense[14], sense[15]
assert (key, asc, ascq) == (6, 0x2a, 0x09), (key, hex(asc), hex(ascq))
st, d, _ = cmd(bytes([0x25]) + bytes(9), 8)
assert st == 0 and struct.unpack(">I", d[:4])[0] == (32 << 20) // 512 - 1, d
c.logout()
PY
grep -q "capacity changed from 32768 to 65536 blocks" "$GW_LOG" || fail "no log line for the new capacity"
out=$(qemu-io -f raw -c "read -P 0x5a 0 1M" -c "write -P 0x6b 24M 1M" -c "read -P 0x6b 24M 1M" "$url" 2>&1)
grep -qi fail <<<"$out" && fail "data across the resize: $out"

"$ISCSI_GW" provision resize --config map.json --target $TARGET --lun 0 --size 8M 2>err.txt &&
	fail "shrinking was accepted"
grep -q "only growing" err.txt || fail "unclear: $(cat err.txt)"
"$ISCSI_GW" provision remove --config map.json --target $TARGET --lun 0 2>err.txt &&
	fail "a served volume was removed"
grep -q "in use" err.txt || fail "unclear: $(cat err.txt)"
stop_gw

# Without a daemon, resize says so; remove works.
"$ISCSI_GW" provision resize --config map.json --target $TARGET --lun 0 --size 48M >out.txt ||
	fail "resize without a daemon"
grep -q "no daemon answered" out.txt || fail "unclear: $(cat out.txt)"
"$ISCSI_GW" provision remove --config map.json --target $TARGET --lun 0 >/dev/null || fail "provision remove"
"$ISCSI_GW" provision list --config map.json | grep -q missing || fail "the volume is still listed"
grep -q "^lvremove --yes vg0/data0" "$FAKE_LVM_DIR/commands.log" || fail "no lvremove"
# A missing volume without a size cannot be served: serve says why.
sed 's/, "size": "16M"//' map.json > nosize.json
"$ISCSI_GW" serve --config nosize.json > nosize.log 2>&1 && fail "served a missing volume"
grep -q "does not exist and the map gives no 'size'" nosize.log || fail "unclear: $(cat nosize.log)"
note "ok"
