#!/bin/bash
# Live reload of the map: SIGHUP and `iscsi-gw reload --config MAP`.
# Three targets of file and memory LUNs and a control socket.  While
# qemu-img copies 64 MiB of random data through iSCSI to LUN 0 of target a
# (rate-limited, so it is still running), the map is rewritten: LUN 1 added
# to a, b's LUN 0 removed, b's LUN 1 changed (serial), target c removed,
# io_threads changed; then SIGHUP.  Checks: a log line per change, the
# restart warning and the summary; raw sessions (t/iscsi_raw.py) logged in
# before the reload: on a, the next command gets REPORTED LUNS DATA HAS
# CHANGED (06h/3Fh/0Eh), then REPORT LUNS lists 0 and 1; on b, the removed
# LUN gets LOGICAL UNIT NOT SUPPORTED (05h/25h/00h) and the changed one the
# UA, then its new serial; c's session is closed and c refuses logins.
# Refused maps (a bad key; a new LUN whose file cannot be opened) make
# `iscsi-gw reload` exit 1 naming the JSON pointer, and the daemon keeps
# the map (REPORT LUNS unchanged, no new UA).  The copy ends well and the
# backing file is byte-identical; iscsi-inq and qemu-img info see the new
# LUN; a reload of the same map changes nothing; retired LUNs are closed
# once unused; stop_gw exits 0 with no sanitizer report.  With FUSE (root,
# /dev/fuse), a view file of a removed LUN held open keeps working and
# keeps the LUN open until it is closed.  Per-initiator templates: a
# session keeps its image of a changed or removed template until logout,
# a new login gets the new template, the old ones are closed after; a
# session the new acl leaves out is closed.  A reload that flips a LUN's
# "removable" replaces the LUN: RMB, PREVENT ALLOW MEDIUM REMOVAL and
# ejecting follow at once, and an ejected medium comes back loaded.  The
# built-in map refuses reload.
# Not checked here: blockdev LUNs across a reload (a changed one cannot be
# reopened while the old one holds O_EXCL), a reload while the daemon runs
# as "user", CHAP changes.
source "$(dirname "$0")/functions.sh"
requires python3 --version
requires qemu-img --version
requires iscsi-inq --help
qemu-img --help | grep -q "Supported formats:.*iscsi" ||
	{ echo "$0: SKIP: qemu-img lacks the iscsi driver (qemu-block-extra)"; exit 77; }

# The FUSE part only where a view can be mounted.
fuse=0
if [ -c /dev/fuse ] && [ "$(id -u)" = 0 ] &&
   "$ISCSI_GW" check --config /dev/stdin >/dev/null 2>&1 <<'EOM'
{ "portals": ["127.0.0.1:1"], "fuse_mount": "v", "targets": [] }
EOM
then
	fuse=1
fi
mnt=$TMP/view
fuse_key=
if [ $fuse = 1 ]; then
	fuse_key='"fuse_mount": "view",'
	cleanup_fn "grep -qF ' $mnt ' /proc/mounts && umount -l '$mnt'"
fi

port=$(free_port)
A=iqn.2026-11.org.example:a
B=iqn.2026-11.org.example:b
C=iqn.2026-11.org.example:c
# map_json IO_THREADS A_LUNS B_LUNS [C_LUNS]: no C_LUNS, no target c.
map_json() {
	local c=
	[ -n "${4:-}" ] && c=", { \"name\": \"$C\", \"luns\": [ $4 ] }"
	cat <<EOM
{ "portals": ["127.0.0.1:$port"], "control_socket": "ctl.sock",
  "io_threads": $1, $fuse_key
  "iscsi": { "nop_interval": 0 },
  "targets": [
    { "name": "$A", "luns": [ $2 ] },
    { "name": "$B", "luns": [ $3 ] }$c
  ] }
EOM
}
A0='{ "lun": 0, "backend": { "type": "file", "path": "a0.img", "size": "64M" } }'
A1='{ "lun": 1, "backend": { "type": "file", "path": "a1.img", "size": "16M" } }'
A1BAD='{ "lun": 1, "backend": { "type": "file", "path": "a1.img", "sise": "16M" } }'
B0='{ "lun": 0, "backend": { "type": "file", "path": "b0.img", "size": "16M" }, "fuse_writable": true }'
B1OLD='{ "lun": 1, "backend": { "type": "memory", "size": "8M" }, "serial": "b1-old" }'
B1NEW='{ "lun": 1, "backend": { "type": "memory", "size": "8M" }, "serial": "b1-new" }'
C0='{ "lun": 0, "backend": { "type": "memory", "size": "8M" } }'
map=$TMP/map.json
map_json 4 "$A0" "$B0, $B1OLD" "$C0" > "$map"
"$ISCSI_GW" check --config "$map" || fail "the first map does not check"
map_json 8 "$A0, $A1" "$B1NEW" > "$TMP/new.json"
"$ISCSI_GW" check --config "$TMP/new.json" || fail "the new map does not check"
# Refused: a key the file backend does not know ...
map_json 8 "$A0, $A1BAD" "$B1NEW" > "$TMP/badkey.json"
# ... and a valid map whose new LUN cannot be opened (no file, no size),
# which also drops a's LUN 1: nothing of it may happen.
map_json 8 "$A0, "'{ "lun": 2, "backend": { "type": "file", "path": "missing.img" } }' "$B1NEW" > "$TMP/badopen.json"
"$ISCSI_GW" check --config "$TMP/badopen.json" >/dev/null ||
	fail "the map with a missing file should pass check (it fails at open)"

start_gw "$map"
head -c 67108864 /dev/urandom > "$TMP/src.img"

PYTHONPATH="$SRCDIR/t" python3 - "$ISCSI_GW" "$GW_PID" "$GW_LOG" "$port" "$TMP" \
	"$A" "$B" "$C" "$fuse" <<'PY' || fail "reload checks"
import json, os, signal, struct, subprocess, sys, time
from iscsi_raw import Conn

gw, gwpid, log, port, tmp, A, B, C, fuse = sys.argv[1:10]
gwpid, port, fuse = int(gwpid), int(port), fuse == "1"
mapf = os.path.join(tmp, "map.json")


def logtext():
    return open(log, errors="replace").read()


def wait_log(text, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if text in logtext():
            return True
        time.sleep(0.1)
    return False


def command(c, cdb, lun=0, read_len=0):
    """Status, sense key, ASC, ASCQ and data of one command."""
    itt = c.scsi(cdb, read_len=read_len, lun=lun)
    data = b""
    while True:
        r, d = c.recv()
        op = r[0] & 0x3f
        if struct.unpack_from(">I", r, 16)[0] != itt:
            continue
        if op == 0x25:
            data += d
            if r[1] & 0x01:
                return r[3], None, None, None, data
        elif op == 0x21:
            if len(d) >= 2 + 14:
                s = d[2:]
                return r[3], s[2] & 0x0f, s[12], s[13], data
            return r[3], None, None, None, data


TUR = b"\x00" * 6


def report_luns(c):
    st, _, _, _, d = command(c, struct.pack(">BBBBBBIBB", 0xa0, 0, 0, 0, 0, 0,
                                            4096, 0, 0), read_len=4096)
    assert st == 0, "REPORT LUNS status %x" % st
    n = struct.unpack_from(">I", d, 0)[0] // 8
    return sorted(((d[8 + 8 * i] & 0x3f) << 8) | d[9 + 8 * i] for i in range(n))


def serial(c, lun):
    st, _, _, _, d = command(c, bytes([0x12, 1, 0x80, 0, 255, 0]), lun=lun,
                             read_len=255)
    assert st == 0, "INQUIRY VPD 80h status %x" % st
    return d[4:4 + d[3]].decode().strip()


def expect(c, lun, want, what):
    got = command(c, TUR, lun=lun)[:4]
    assert got == want, "%s: got %r, want %r" % (what, got, want)
    print("ok:", what)


GOOD = (0, None, None, None)
UA_LUNS = (2, 6, 0x3f, 0x0e)
NO_LUN = (2, 5, 0x25, 0x00)


def reload_cmd(path):
    return subprocess.run([gw, "reload", "--config", path],
                          capture_output=True, text=True, timeout=60)


# Sessions before the reload, each with a first command done.
a = Conn("127.0.0.1", port)
assert a.login("iqn.2026-11.org.example:raw-a", A)[0] == 0
b = Conn("127.0.0.1", port)
assert b.login("iqn.2026-11.org.example:raw-b", B)[0] == 0
c = Conn("127.0.0.1", port)
assert c.login("iqn.2026-11.org.example:raw-c", C)[0] == 0
for conn in (a, b, c):
    expect(conn, 0, GOOD, "TUR before the reload")
assert report_luns(a) == [0], report_luns(a)
assert serial(b, 1) == "b1-old"

# A FUSE view file of b's LUN 0, held open across the reload.
view = None
if fuse:
    vdir = os.path.join(tmp, "view", B)
    assert sorted(os.listdir(vdir)) == ["lun0", "lun0.stats", "lun1", "lun1.stats"], os.listdir(vdir)
    view = open(os.path.join(vdir, "lun0"), "rb")
    assert len(view.read(4096)) == 4096

# The copy: 64 MiB at 8 MiB/s, so about 8 s, well past the reload.
copy = subprocess.Popen(["qemu-img", "convert", "-n", "-r", "8M", "-f", "raw",
                         "-O", "raw", os.path.join(tmp, "src.img"),
                         "iscsi://127.0.0.1:%d/%s/0" % (port, A)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
time.sleep(1.5)
assert copy.poll() is None, "the copy ended before the reload: %r" % (copy.communicate(),)

os.replace(os.path.join(tmp, "new.json"), mapf)
os.kill(gwpid, signal.SIGHUP)
assert wait_log("reload (SIGHUP): %s applied" % os.path.realpath(mapf)), "no summary line"
assert copy.poll() is None, "the copy ended during the reload"
print("ok: SIGHUP reload applied while the copy runs")

# a: the UA once, on the LUN in use and on the new one, then LUN 1 works.
expect(a, 0, UA_LUNS, "a LUN 0: REPORTED LUNS DATA HAS CHANGED")
expect(a, 0, GOOD, "a LUN 0: the UA is reported once")
assert report_luns(a) == [0, 1], report_luns(a)
print("ok: REPORT LUNS shows the new LUN 1")
expect(a, 1, UA_LUNS, "a LUN 1: the UA on the new LUN too")
st, _, _, _, d = command(a, bytes([0x25] + [0] * 9), lun=1, read_len=8)
assert st == 0 and struct.unpack(">II", d) == (32767, 512), d
print("ok: READ CAPACITY of the new LUN")
# b: the removed LUN is gone, the changed one is new.
expect(b, 0, NO_LUN, "b LUN 0 (removed): LOGICAL UNIT NOT SUPPORTED")
expect(b, 1, UA_LUNS, "b LUN 1 (changed): REPORTED LUNS DATA HAS CHANGED")
assert serial(b, 1) == "b1-new", serial(b, 1)
assert report_luns(b) == [1], report_luns(b)
print("ok: b's changed LUN has its new serial")
# c: closed, and gone from the map.
assert c.closed_within(5), "the removed target's session is still open"
c2 = Conn("127.0.0.1", port)
st, _ = c2.login("iqn.2026-11.org.example:raw-c", C)
assert st == 0x0203, "login to the removed target: %04x" % st
print("ok: removed target: session closed, login refused")

# FUSE: the open file still reads; the table no longer has lun0; the LUN
# stays open (not closed) until the file is closed.
if fuse:
    assert len(view.read(4096)) == 4096, "the open view file of a removed LUN"
    assert sorted(os.listdir(vdir)) == ["lun1", "lun1.stats"], os.listdir(vdir)
    time.sleep(2.5)
    assert "LUN 0 of %s, dropped by a reload" % B not in logtext(), \
        "a LUN with an open view file was closed"
    view.close()
    assert wait_log("LUN 0 of %s, dropped by a reload" % B), \
        "the removed LUN was not closed after its view file was"
    print("ok: FUSE: an open file keeps a removed LUN until closed")
else:
    assert wait_log("LUN 0 of %s, dropped by a reload" % B), \
        "the removed LUN was not closed"
assert wait_log("LUN 1 of %s, dropped by a reload" % B), "the replaced LUN was not closed"
assert wait_log("LUN 0 of %s, dropped by a reload" % C), "c's LUN was not closed"
print("ok: retired LUNs closed once unused")

# Refused maps: the pointer is named, nothing changes.
for bad, pointer in (("badkey.json", "/targets/0/luns/1/backend/sise"),
                     ("badopen.json", "/targets/0/luns/1")):
    os.replace(os.path.join(tmp, bad), mapf + ".tmp")
    os.replace(mapf, os.path.join(tmp, "good.json"))
    os.replace(mapf + ".tmp", mapf)
    nrefused = logtext().count("the running map is unchanged")
    r = reload_cmd(mapf)
    assert r.returncode == 1, "bad map %s: exit %d: %s %s" % (bad, r.returncode, r.stdout, r.stderr)
    assert pointer in r.stdout and pointer in r.stderr, (r.stdout, r.stderr)
    ans = json.loads(r.stdout)
    assert ans["ok"] is False and pointer in ans["error"], ans
    assert logtext().count("the running map is unchanged") == nrefused + 1, \
        "no refusal in the log"
    assert report_luns(a) == [0, 1], report_luns(a)
    expect(a, 0, GOOD, "refused map (%s): no UA" % bad)
    os.replace(os.path.join(tmp, "good.json"), mapf)
    print("ok: refused map %s names %s; the map is unchanged" % (bad, pointer))
lines = [l for l in logtext().splitlines() if "missing.img" in l or "/targets/0/luns/2" in l]
assert lines, "the LUN that could not be opened is not named in the log"
assert not os.path.exists(os.path.join(tmp, "missing.img"))

# The copy ends well, every byte in place.
out, _ = copy.communicate(timeout=300)
assert copy.returncode == 0, "the copy failed: %s" % out
with open(os.path.join(tmp, "src.img"), "rb") as f1, \
     open(os.path.join(tmp, "a0.img"), "rb") as f2:
    assert f1.read() == f2.read(), "the copied LUN differs from the source"
print("ok: the copy across the reload is intact")

# The same map again: nothing changes, through the reload command.
r = reload_cmd(mapf)
assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
ans = json.loads(r.stdout)
assert ans["ok"] is True and not ans["added"] and not ans["removed"] \
    and not ans["changed"] and ans["unchanged"] == 3, ans
assert ans["restart_needed"] == ["io_threads"], ans
expect(a, 0, GOOD, "an unchanged reload: no UA")
print("ok: reload of an unchanged map: %s" % r.stdout.strip())
for conn in (a, b):
    r, _ = conn.logout()
    assert r[0] & 0x3f == 0x26 and r[2] == 0
PY
note "the daemon's reload lines:"
grep -E "reload|dropped by a reload|target was removed" "$GW_LOG"

# One log line per change, the warning and the summary.
grep -q "reload (SIGHUP): $A LUN 1 added: /targets/0/luns/1 (file" "$GW_LOG" || fail "no log line for the added LUN"
grep -q "reload (SIGHUP): $B LUN 0 removed: /targets/1/luns/0 (file" "$GW_LOG" || fail "no log line for the removed LUN"
grep -q "reload (SIGHUP): $B LUN 1 changed: /targets/1/luns/0 (memory" "$GW_LOG" || fail "no log line for the changed LUN"
grep -q "reload (SIGHUP): target $C removed" "$GW_LOG" || fail "no log line for the removed target"
grep -q "connection closed (its target was removed from the map): target $C" "$GW_LOG" ||
	fail "no log line for the closed session"
grep -q 'reload (SIGHUP): top-level "io_threads" changed: not applied while running; a restart applies it' "$GW_LOG" ||
	fail "no restart warning for io_threads"
grep -q "applied: 1 LUN added, 2 removed, 1 changed, 1 unchanged; 0 targets added, 1 removed" "$GW_LOG" ||
	fail "no summary line"
grep -q "reload (control socket): $TMP/map.json: /targets/0/luns/1/backend/sise: .*the running map is unchanged" "$GW_LOG" ||
	grep -q "reload (control socket): .*/targets/0/luns/1/backend/sise" "$GW_LOG" ||
	fail "no error line naming the bad key"

# The new LUN through libiscsi's tools and QEMU.
iscsi-inq "iscsi://127.0.0.1:$port/$A/1" >/dev/null || fail "iscsi-inq on the new LUN"
qemu-img info "iscsi://127.0.0.1:$port/$A/1" | grep -q "virtual size: 16 MiB" ||
	fail "qemu-img info on the new LUN"
stop_gw

# Per-initiator templates across a reload: a session keeps the image it
# has of a changed or removed template until it logs out; a new login
# gets the new template's image; the old templates are closed after.
P=iqn.2026-11.org.example:p
pmap() {
	cat <<EOM
{ "portals": ["127.0.0.1:$port"], "state_dir": "state",
  "control_socket": "ctl.sock", "iscsi": { "nop_interval": 0 },
  "targets": [ { "name": "$P", "luns": [ $1 ] } ] }
EOM
}
pmap '{ "lun": 0, "per_initiator": { "kind": "file", "size": "4M" } },
      { "lun": 1, "per_initiator": { "kind": "file", "size": "4M", "policy": "delete" } }' > "$map"
pmap '{ "lun": 0, "per_initiator": { "kind": "file", "size": "8M" } }' > "$TMP/pnew.json"
start_gw "$map"
PYTHONPATH="$SRCDIR/t" python3 - "$ISCSI_GW" "$GW_LOG" "$port" "$TMP" "$P" <<'PY' || fail "per-initiator reload checks"
import json, os, struct, subprocess, sys, time
from iscsi_raw import Conn

gw, log, port, tmp, P = sys.argv[1:6]
port = int(port)
mapf = os.path.join(tmp, "map.json")


def logtext():
    return open(log, errors="replace").read()


def command(c, cdb, lun=0, read_len=0, write=b""):
    itt = c.scsi(cdb, read_len=read_len, write=write, lun=lun)
    data = b""
    while True:
        r, d = c.recv()
        op = r[0] & 0x3f
        if struct.unpack_from(">I", r, 16)[0] != itt:
            continue
        if op == 0x25:
            data += d
            if r[1] & 0x01:
                return (r[3], None, None, None), data
        elif op == 0x21:
            if len(d) >= 16:
                s = d[2:]
                return (r[3], s[2] & 0x0f, s[12], s[13]), data
            return (r[3], None, None, None), data


def capacity(c, lun):
    st, d = command(c, bytes([0x25] + [0] * 9), lun=lun, read_len=8)
    assert st[0] == 0, st
    return (struct.unpack(">I", d[:4])[0] + 1) * 512


x = Conn("127.0.0.1", port)
assert x.login("iqn.2026-11.org.example:x", P)[0] == 0
pattern = b"reload!!" * 64
st, _ = command(x, struct.pack(">BBIBHB", 0x2a, 0, 0, 0, 1, 0), write=pattern)
assert st[0] == 0, st
assert capacity(x, 0) == 4 << 20 and capacity(x, 1) == 4 << 20

os.replace(os.path.join(tmp, "pnew.json"), mapf)
r = subprocess.run([gw, "reload", "--config", mapf], capture_output=True,
                   text=True, timeout=60)
assert r.returncode == 0, (r.stdout, r.stderr)
print("reload:", r.stdout.strip())
# x keeps its image of the old LUN 0 (4 MiB, its data) after the UA; LUN 1
# is gone.
st, _ = command(x, b"\0" * 6, lun=0)
assert st == (2, 6, 0x3f, 0x0e), st
st, d = command(x, struct.pack(">BBIBHB", 0x28, 0, 0, 0, 1, 0), read_len=512)
assert st[0] == 0 and d == pattern, st
assert capacity(x, 0) == 4 << 20
st, _ = command(x, b"\0" * 6, lun=1)
assert st == (2, 5, 0x25, 0), st
print("ok: a session keeps its image of a changed template; the removed one is gone")
# A new initiator gets the new template: 8 MiB.
y = Conn("127.0.0.1", port)
assert y.login("iqn.2026-11.org.example:y", P)[0] == 0
assert capacity(y, 0) == 8 << 20
print("ok: a new login gets the new template's image")
time.sleep(2)
assert "dropped by a reload, is no longer in use" not in logtext(), \
    "a template was closed while a session had its image"
# An acl that leaves x out: x's session is closed, y's goes on (no UA:
# no LUN changed).
m = json.load(open(mapf))
m["targets"][0]["acl"] = ["iqn.2026-11.org.example:y"]
json.dump(m, open(mapf, "w"))
r = subprocess.run([gw, "reload", "--config", mapf], capture_output=True,
                   text=True, timeout=60)
assert r.returncode == 0 and json.loads(r.stdout)["unchanged"] == 1, r.stdout
assert x.closed_within(5), "x is not in the acl any more but still logged in"
st, _ = command(y, b"\0" * 6, lun=0)
assert st == (0, None, None, None), st
print("ok: a session the new acl leaves out is closed")
r, _ = y.logout()
assert r[0] & 0x3f == 0x26 and r[2] == 0
end = time.time() + 10
while time.time() < end and logtext().count("dropped by a reload, is no longer in use") < 2:
    time.sleep(0.1)
assert logtext().count("dropped by a reload, is no longer in use") == 2, \
    "the old templates were not closed after the logout"
print("ok: old templates closed once their images are released")
PY
grep -q "policy delete: removed the image of iqn.2026-11.org.example:x" "$GW_LOG" ||
	fail "the removed template's image was not released under its policy"
grep -q "connection closed (the initiator is no longer in the target's acl or networks): target $P" "$GW_LOG" ||
	fail "no log line for the session the acl left out"
grep -q "reload (control socket): target $P: alias, acl, networks or CHAP changed" "$GW_LOG" ||
	fail "no log line for the acl change"
stop_gw

# "removable" changed by a reload: the LUN is a changed LUN (a new one),
# so RMB, PREVENT ALLOW MEDIUM REMOVAL and ejecting follow the new value
# at once, and a medium ejected before comes back loaded.
R=iqn.2026-11.org.example:r
rmap() {
	cat <<EOM
{ "portals": ["127.0.0.1:$port"], "control_socket": "ctl.sock",
  "iscsi": { "nop_interval": 0 },
  "targets": [ { "name": "$R", "luns": [
    { "lun": 0, "backend": { "type": "memory", "size": "4M" }$1 } ] } ] }
EOM
}
rmap '' > "$map"
start_gw "$map"
PYTHONPATH="$SRCDIR/t" python3 - "$ISCSI_GW" "$map" "$port" "$R" <<'PY' || fail "removable reload checks"
import json, subprocess, sys
from iscsi_raw import Conn

gw, mapf, port, R = sys.argv[1:5]
c = Conn("127.0.0.1", int(port))
st, _ = c.login("iqn.2026-11.org.example:r1", R)
assert st == 0, "login to %s failed: %04x" % (R, st)
TUR, INQ = b"\0" * 6, bytes([0x12, 0, 0, 0, 36, 0])
EJECT, LOAD = bytes([0x1b, 0, 0, 0, 2, 0]), bytes([0x1b, 0, 0, 0, 3, 0])
PREVENT = bytes([0x1e, 0, 0, 0, 1, 0])
NO_MEDIUM = (2, 0x3a, 0)


def rmb():
    st, sense, data = c.command(INQ, read_len=36)
    assert st == 0, (st, sense)
    return data[1] >> 7


def reload_to(removable):
    m = json.load(open(mapf))
    m["targets"][0]["luns"][0]["removable"] = removable
    json.dump(m, open(mapf, "w"))
    r = subprocess.run([gw, "reload", "--config", mapf], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    ans = json.loads(r.stdout)
    assert len(ans["changed"]) == 1 and ans["unchanged"] == 0, ans
    # The first command after the switch hears of it (command() would
    # retry the unit attention).
    c.scsi(TUR)
    while True:
        h, d = c.recv()
        if h[0] & 0x3f == 0x21:
            s = d[2:]
            assert h[3] == 2 and (s[2] & 0x0f, s[12], s[13]) == (6, 0x3f, 0x0e), \
                "no REPORTED LUNS DATA HAS CHANGED after the reload"
            break


# Not removable: RMB 0, no PREVENT ALLOW, an eject leaves the LUN ready.
assert rmb() == 0
st, sense, _ = c.command(PREVENT)
assert (st, sense) == (2, (5, 0x20, 0)), (st, sense)
assert c.command(EJECT)[0] == 0 and c.command(TUR)[0] == 0
reload_to(True)
assert rmb() == 1, "RMB is not set after the reload made the LUN removable"
assert c.command(PREVENT)[0] == 0
assert c.command(EJECT)[1] == (5, 0x53, 2), "eject not refused while prevented"
assert c.command(PREVENT[:4] + b"\0\0")[0] == 0
assert c.command(EJECT)[0] == 0
assert c.command(TUR)[1] == NO_MEDIUM
print("ok: a reload made the LUN removable: RMB, PREVENT, eject")
# Back: a new, non-removable LUN, loaded and ready.
reload_to(False)
assert rmb() == 0
assert c.command(TUR)[0] == 0, "the LUN is not ready after the reload"
st, sense, _ = c.command(PREVENT)
assert (st, sense) == (2, (5, 0x20, 0)), (st, sense)
print("ok: a reload made it fixed again: RMB 0, ready, no PREVENT ALLOW")
r, _ = c.logout()
assert r[0] & 0x3f == 0x26 and r[2] == 0
PY
grep -q "reload (control socket): $R LUN 0 changed: /targets/0/luns/0 (memory" "$GW_LOG" ||
	fail "no log line for the LUN whose removable key changed"
stop_gw

# The built-in map cannot be reloaded: said, and the daemon goes on.
port2=$(free_port)
ISCSI_GW_DEFAULT_DIR=$TMP/default "$ISCSI_GW" serve --port "$port2" >"$TMP/builtin.log" 2>&1 &
pid2=$!
cleanup_fn "stop_gw_quiet $pid2"
for i in $(seq 100); do grep -q "listening on" "$TMP/builtin.log" && break; sleep 0.1; done
kill -HUP $pid2
for i in $(seq 50); do grep -q "cannot be reloaded" "$TMP/builtin.log" && break; sleep 0.1; done
grep -q "the built-in map cannot be reloaded" "$TMP/builtin.log" || { cat "$TMP/builtin.log"; fail "no message for SIGHUP on the built-in map"; }
kill -0 $pid2 || fail "SIGHUP on the built-in map ended the daemon"
GW_PID=$pid2 GW_LOG=$TMP/builtin.log stop_gw
