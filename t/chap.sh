#!/bin/bash
# CHAP (RFC 7143 §12.1.3) against libiscsi: one-way CHAP on a target,
# mutual CHAP (libiscsi checks the target's answer), discovery CHAP, the
# refusals for a wrong secret, a wrong name and no credentials, and the
# warning for a secret file readable by others.  A raw initiator then
# checks SHA-256 and SHA3-256 (CHAP_A 7 and 8), a reflected challenge and
# a replayed one.  The secret never appears in the log.
source "$(dirname "$0")/functions.sh"
requires iscsi-inq --help
requires python3 --version

printf 'alice-secret-0123\n' > "$TMP/alice"; chmod 600 "$TMP/alice"
printf 'gw-secret-456789\n' > "$TMP/gw"; chmod 644 "$TMP/gw"
printf 'disc-secret-9876\n' > "$TMP/disc"; chmod 600 "$TMP/disc"
port=$(free_port)
cat > "$TMP/map.json" <<EOM
{ "portals": ["127.0.0.1:$port"],
  "discovery_chap": { "user": "disc", "secret_file": "disc" },
  "targets": [
    { "name": "$TARGET",
      "chap": { "user": "alice", "secret_file": "alice" },
      "luns": [ { "lun": 0, "backend": { "type": "memory", "size": "1M" } } ] },
    { "name": "iqn.2026-11.org.example:mutual",
      "chap": { "user": "alice", "secret_file": "alice" },
      "mutual_chap": { "user": "gw", "secret_file": "gw" },
      "luns": [ { "lun": 0, "backend": { "type": "memory", "size": "1M" } } ] } ] }
EOM
start_gw "$TMP/map.json" -D iscsi.login=1
grep -q "gw: CHAP secret file is readable by group or others" "$GW_LOG" || fail "no warning for a world-readable secret"
h=127.0.0.1:$port
iscsi-inq "iscsi://alice%alice-secret-0123@$h/$TARGET/0" >/dev/null || fail "one-way CHAP login"
iscsi-inq "iscsi://alice%wrong-secret-000@$h/$TARGET/0" >/dev/null 2>&1 && fail "wrong secret accepted"
iscsi-inq "iscsi://mallory%alice-secret-0123@$h/$TARGET/0" >/dev/null 2>&1 && fail "wrong name accepted"
iscsi-inq "iscsi://$h/$TARGET/0" >/dev/null 2>&1 && fail "no credentials accepted"
grep -q "login refused (status 0x0201" "$GW_LOG" || fail "no authentication failure in the log"
m="iscsi://alice%alice-secret-0123@$h/iqn.2026-11.org.example:mutual/0"
iscsi-inq "$m?target_user=gw&target_password=gw-secret-456789" >/dev/null || fail "mutual CHAP"
iscsi-inq "$m?target_user=gw&target_password=not-the-secret" >/dev/null 2>&1 && fail "initiator accepted a target with the wrong secret"
# Discovery needs CHAP too.
iscsi-ls "iscsi://$h/" >/dev/null 2>&1 && fail "discovery without CHAP accepted"
iscsi-ls "iscsi://disc%disc-secret-9876@$h/" | grep -q "$TARGET" || fail "discovery with CHAP"

PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "raw CHAP checks"
import sys, struct, hashlib, os
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]
mutual = "iqn.2026-11.org.example:mutual"
H = {5: hashlib.md5, 7: hashlib.sha256, 8: hashlib.sha3_256}

def keys(data):
    return dict(kv.split("=", 1) for kv in data.decode().split("\0") if kv)

def req(c, flags, text, isid=b"\x80\0\0\0\0\x21"):
    bhs = bytearray(48)
    bhs[0] = 0x43; bhs[1] = flags; bhs[8:14] = isid
    struct.pack_into(">I", bhs, 16, c.itt)
    struct.pack_into(">I", bhs, 24, c.cmdsn)
    c.send(bhs, text)
    r, d = c.recv()
    return (r[36] << 8) | r[37], keys(d) if d else {}

def chap_login(tgt, alg, secret=b"alice-secret-0123", my_chal=None):
    c = Conn("127.0.0.1", port)
    st, k = req(c, 0x01, b"InitiatorName=iqn.2026-11.org.example:raw\0TargetName=" +
                tgt.encode() + b"\0SessionType=Normal\0AuthMethod=CHAP,None\0")
    assert st == 0 and k["AuthMethod"] == "CHAP", (st, k)
    st, k = req(c, 0x01, b"CHAP_A=%d\0" % alg)
    assert st == 0 and k["CHAP_A"] == str(alg), (st, k)
    cid, chal = int(k["CHAP_I"]), bytes.fromhex(k["CHAP_C"][2:])
    resp = H[alg](bytes([cid]) + secret + chal).hexdigest()
    text = b"CHAP_N=alice\0CHAP_R=0x" + resp.encode() + b"\0"
    if my_chal is not None:
        mc = chal if my_chal == "reflect" else my_chal
        text += b"CHAP_I=7\0CHAP_C=0x" + mc.hex().encode() + b"\0"
    st, k = req(c, 0x80 | 0x01, text)     # T, CSG 0 -> NSG 1
    return st, k

for alg in (5, 7, 8):
    st, k = chap_login(target, alg)
    assert st == 0, "CHAP_A=%d refused: %x" % (alg, st)
    st, k = chap_login(target, alg, secret=b"bad")
    assert st == 0x0201, "bad response accepted with CHAP_A=%d" % alg
print("ok: MD5, SHA-256, SHA3-256")
mc = os.urandom(32)
st, k = chap_login(mutual, 7, my_chal=mc)
assert st == 0, hex(st)
assert k["CHAP_N"] == "gw"
want = hashlib.sha256(bytes([7]) + b"gw-secret-456789" + mc).hexdigest()
assert k["CHAP_R"] == "0x" + want, "target's mutual answer is wrong"
print("ok: mutual answer verified")
st, k = chap_login(mutual, 7, my_chal=mc)
assert st == 0x0201, "replayed initiator challenge accepted"
st, k = chap_login(mutual, 7, my_chal="reflect")
assert st == 0x0201, "reflected challenge accepted"
print("ok: replayed and reflected challenges refused")
PY
for s in alice-secret-0123 gw-secret-456789 disc-secret-9876; do
	grep -q "$s" "$GW_LOG" && fail "a secret appears in the log"
done
stop_gw
