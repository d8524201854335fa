#!/bin/bash
# Address filters per target ("networks"): a target open to 127.0.0.1/32
# only, one open to 127.0.0.0/8, one to 10.0.0.0/8.  A connection from
# 127.0.0.2 (a loopback source address) logs in to the second but not the
# first or third (class 2, authorization failure 0x0202), from 127.0.0.1
# to the first two; SendTargets lists exactly the targets the connection
# may log in to; libiscsi's iscsi-ls (from 127.0.0.1) sees the first two.
# A reload that narrows a target's networks closes the sessions that no
# longer qualify.
source "$(dirname "$0")/functions.sh"
requires python3 --version
requires iscsi-ls --help

port=$(free_port)
cat >"$TMP/map.json" <<EOM
{ "portals": ["127.0.0.1:$port"], "control_socket": "ctl.sock",
  "targets": [
    { "name": "iqn.2026-11.org.example:only1", "networks": ["127.0.0.1/32"],
      "luns": [ { "lun": 0, "backend": { "type": "memory", "size": "1M" } } ] },
    { "name": "iqn.2026-11.org.example:loop", "networks": ["127.0.0.0/8", "::1"],
      "luns": [ { "lun": 0, "backend": { "type": "memory", "size": "1M" } } ] },
    { "name": "iqn.2026-11.org.example:ten", "networks": ["10.0.0.0/8"],
      "luns": [ { "lun": 0, "backend": { "type": "memory", "size": "1M" } } ] } ] }
EOM
"$ISCSI_GW" check --config "$TMP/map.json" >/dev/null || fail "map refused"
start_gw "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" <<'PY' || fail "address filters"
import socket, struct, sys
import iscsi_raw
from iscsi_raw import Conn
port = int(sys.argv[1])
T = "iqn.2026-11.org.example:"

def conn_from(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    # Reuse Conn's state set-up with this socket.
    c2 = Conn("127.0.0.1", port)
    c2.s.close()
    c2.s = s
    return c2

def login(src, target):
    c = conn_from(src)
    return c, c.login(T + "client", target)[0]

def send_targets(src):
    c = conn_from(src)
    keys = b"InitiatorName=" + (T + "client").encode() + b"\0SessionType=Discovery\0"
    bhs = bytearray(48)
    bhs[0] = 0x43; bhs[1] = 0x80 | (1 << 2) | 3
    bhs[8:14] = b"\x80\0\0\0\0\x09"
    struct.pack_into(">II", bhs, 16, 1, 0)
    c.send(bhs, keys)
    r, _ = c.recv()
    assert (r[36], r[37]) == (0, 0), r[36:38]
    exp = struct.unpack_from(">I", r, 24)[0] + 1
    cmdsn = struct.unpack_from(">I", r, 28)[0]      # ExpCmdSN
    bhs = bytearray(48)
    bhs[0] = 0x04; bhs[1] = 0x80
    struct.pack_into(">IIII", bhs, 16, 2, 0xffffffff, cmdsn, exp)
    c.send(bhs, b"SendTargets=All\0")
    r, d = c.recv()
    return sorted(x.split("=", 1)[1] for x in d.decode().split("\0") if x.startswith("TargetName="))

for src, target, want in [("127.0.0.1", "only1", 0), ("127.0.0.2", "only1", 0x0202),
                          ("127.0.0.2", "loop", 0), ("127.0.0.1", "loop", 0),
                          ("127.0.0.1", "ten", 0x0202), ("127.0.0.2", "ten", 0x0202)]:
    c, st = login(src, T + target)
    assert st == want, (src, target, hex(st))
    if st:
        assert c.closed_within(5)
print("ok: logins")
assert send_targets("127.0.0.1") == [T + "loop", T + "only1"], send_targets("127.0.0.1")
assert send_targets("127.0.0.2") == [T + "loop"], send_targets("127.0.0.2")
print("ok: SendTargets")
PY
out=$(iscsi-ls iscsi://127.0.0.1:$port/ 2>&1) || fail "iscsi-ls: $out"
grep -q "example:only1" <<<"$out" && grep -q "example:loop" <<<"$out" || fail "iscsi-ls lists: $out"
grep -q "example:ten" <<<"$out" && fail "iscsi-ls lists a target closed to this address: $out"
grep -q "address not in the target's networks" "$GW_LOG" || fail "no log line for the refusal"

# A reload narrows "loop" to 127.0.0.2: a session from 127.0.0.1 on it is closed.
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$ISCSI_GW" "$TMP/map.json" <<'PY' || fail "reload narrowing networks"
import re, subprocess, sys
from iscsi_raw import Conn
port, gw, m = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Conn("127.0.0.1", port)
assert c.login("iqn.2026-11.org.example:client", "iqn.2026-11.org.example:loop")[0] == 0
text = open(m).read().replace('"127.0.0.0/8", "::1"', '"127.0.0.2/32"')
open(m, "w").write(text)
r = subprocess.run([gw, "reload", "--config", m], capture_output=True, text=True)
assert r.returncode == 0, r
assert c.closed_within(5), "the session outside the new networks stayed"
print("ok: reload closed the session")
PY
stop_gw
note "ok"
