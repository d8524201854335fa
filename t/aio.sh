#!/bin/bash
# The async IO path: file LUNs with "direct": true read and write through
# Linux native AIO (libaio), submitted from the network loop, with no IO
# worker held while in flight.
#  - the log and status name the engine: "IO async" / "IO on workers"
#    ("aio": false), status counts the async commands;
#  - many commands in flight at once on one LUN with only 2 IO workers
#    (status: async_in_flight_peak above io_threads);
#  - durability: with write_cache false every async write is an iocb with
#    RWF_DSYNC (seen with strace), with write_cache true only FUA writes
#    are; every acknowledged write is in the file after kill -9;
#  - LOGICAL UNIT RESET with async writes in flight answers only once none
#    is left in flight;
#  - a read past the end of a file that shrank under the LUN (a short
#    read, then none) ends in MEDIUM ERROR, 11h/00h;
#  - a live reload removes a LUN with async writes in flight: they end,
#    and those acknowledged are in the file.
source "$(dirname "$0")/functions.sh"
requires python3 --version
grep -q '#define HAVE_LIBAIO 1' "$BUILDDIR/config.h" 2>/dev/null ||
	{ echo "SKIP: built without libaio"; exit 77; }
# O_DIRECT needs a file system that has it (tmpfs has not).
if ! direct_ok; then
	echo "SKIP: $TMP does not support O_DIRECT"; exit 77
fi

port=$(free_port)
sock=$TMP/ctl.sock
write_map "$TMP/map.json" $port '
  { "lun": 0, "block_size": 4096,
    "backend": { "type": "file", "path": "a.img", "size": "64M", "direct": true } },
  { "lun": 1, "block_size": 4096,
    "backend": { "type": "file", "path": "b.img", "size": "64M", "direct": true, "aio": false } },
  { "lun": 2, "block_size": 4096, "write_cache": true,
    "backend": { "type": "file", "path": "c.img", "size": "64M", "direct": true } }' \
  "\"io_threads\": 2, \"control_socket\": \"$sock\""
start_gw "$TMP/map.json"
grep -q "LUN 0: file, 16384 blocks of 4096 bytes, IO async" "$GW_LOG" ||
	{ cat "$GW_LOG"; fail "LUN 0 does not say IO async"; }
grep -q "LUN 1: file, 16384 blocks of 4096 bytes, IO on workers" "$GW_LOG" ||
	{ cat "$GW_LOG"; fail "LUN 1 (aio false) does not say IO on workers"; }

# Every io_submit the daemon makes, with its iocbs decoded.
strace_ok=0
if command -v strace >/dev/null; then
	strace -f -qq -e trace=io_submit -s 1 -p $GW_PID -o "$TMP/strace.out" &
	st_pid=$!
	cleanup_fn "kill $st_pid 2>/dev/null"
	sleep 1
	kill -0 $st_pid 2>/dev/null && strace_ok=1
fi

PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$sock" "$ISCSI_GW" \
	"$TMP/map.json" "$TMP/a.img" <<'PY' || fail "async IO"
import json, struct, subprocess, sys, os
from iscsi_raw import Conn
port, target, sock, gw, mapf, img = sys.argv[1:7]
c = Conn("127.0.0.1", int(port), timeout=60)
keys = (b"FirstBurstLength=262144\0MaxBurstLength=262144\0"
        b"MaxRecvDataSegmentLength=262144\0ImmediateData=Yes\0")
assert c.login("iqn.2026-11.org.example:aio", target, extra=keys)[0] == 0

def status():
    out = subprocess.run([gw, "status", "--config", mapf, "--json"],
                         check=True, capture_output=True).stdout
    t = [t for t in json.loads(out)["targets"] if t["name"] == target][0]
    return {l["lun"]: l for l in t["luns"]}

def wait(itts):
    """Statuses of the commands in itts, and the data read by each."""
    st, data = {}, {}
    while not all(i in st for i in itts):
        r, d = c.recv()
        op, itt = r[0] & 0x3f, struct.unpack_from(">I", r, 16)[0]
        if op == 0x25:                     # Data-In, maybe with status
            data[itt] = data.get(itt, b"") + d
            if r[1] & 0x01:
                st[itt] = (r[3], b"")
        elif op == 0x21:
            st[itt] = (r[3], d)
    return st, data

def w16(lba, nblk, fua=False):
    return struct.pack(">BBQIBB", 0x8a, 0x08 if fua else 0, lba, nblk, 0, 0)

def r16(lba, nblk):
    return struct.pack(">BBQIBB", 0x88, 0, lba, nblk, 0, 0)

for lun in (0, 1, 2):                      # the power-on unit attention
    for _ in range(3):
        c.scsi(bytes(6), lun=lun)
        if wait([c.itt])[0][c.itt][0] == 0:
            break

pat = lambda i, n: bytes([(i * 37 + 11) % 251 + 1]) * n

# 64 writes of 256 KiB at once on LUN 0 (write_cache false), and as many
# on LUN 1 (workers): the status counts tell the two apart.
for lun in (0, 1):
    itts = [c.scsi(w16(i * 64, 64), write=pat(i, 262144), lun=lun)
            for i in range(64)]
    st, _ = wait(itts)
    assert all(s == 0 for s, _ in st.values()), st
s = status()
assert s[0]["io_engine"] == "async" and s[1]["io_engine"] == "workers", s
assert s[0]["async_commands"] >= 64, s[0]
assert s[0]["async_in_flight_peak"] > 2, \
    "at most %d async writes at once with 2 IO workers" % s[0]["async_in_flight_peak"]
assert s[0]["async_in_flight"] == 0, s[0]
assert s[1]["async_commands"] == 0 and s[1]["async_in_flight_peak"] == 0, s[1]
print("ok: 64 async writes, up to %d in flight at once with 2 IO workers"
      % s[0]["async_in_flight_peak"])

# Read them back, 32 at once, async.
itts = {c.scsi(r16(i * 64, 64), read_len=262144, lun=0): i for i in range(0, 64, 2)}
st, data = wait(list(itts))
for itt, i in itts.items():
    assert st[itt][0] == 0 and data[itt] == pat(i, 262144), "read %d" % i
print("ok: 32 async reads of 256 KiB read back what was written")

# LUN 2, write_cache true: writes without FUA (128 KiB) and with (192 KiB).
itts = [c.scsi(w16(i * 64, 32), write=pat(i, 131072), lun=2) for i in range(16)]
itts += [c.scsi(w16(2048 + i * 64, 48, fua=True), write=pat(i, 196608), lun=2)
         for i in range(8)]
st, _ = wait(itts)
assert all(s == 0 for s, _ in st.values()), st

# LOGICAL UNIT RESET with async writes in flight: its response comes once
# the aborted writes have left the kernel.
itts = [c.scsi(w16(4096 + i * 64, 64), write=pat(i, 262144), lun=0)
        for i in range(32)]
bhs = bytearray(48)
bhs[0] = 0x42                              # immediate TMF request
bhs[1] = 0x80 | 5                          # LOGICAL UNIT RESET
rtt = c.next_itt()
struct.pack_into(">IIII", bhs, 16, rtt, 0xffffffff, c.cmdsn, c.exp_statsn)
c.send(bhs)
while True:
    r, d = c.recv()
    if r[0] & 0x3f == 0x22:
        assert r[2] == 0, "LUN RESET response %d" % r[2]
        break
s = status()
assert s[0]["async_in_flight"] == 0, \
    "LUN RESET answered with %d async writes in flight" % s[0]["async_in_flight"]
print("ok: LOGICAL UNIT RESET answered with no async IO in flight")
for _ in range(3):                        # the reset's unit attention
    c.scsi(bytes(6), lun=0)
    st, _ = wait([c.itt])
    if st[c.itt][0] == 0:
        break

# A file that shrank under the LUN: reads past its end, and across it.
os.truncate(img, 32 << 20)
for lba, n in ((8192 + 64, 16), (8192 - 8, 16)):
    itt = c.scsi(r16(lba, n), read_len=n * 4096, lun=0)
    st, _ = wait([itt])
    status_, sense = st[itt]
    assert status_ == 2, "read at %d: status %d" % (lba, status_)
    assert sense[2 + 2] & 0x0f == 3 and sense[2 + 12] == 0x11, sense.hex()
print("ok: short and empty async reads end in MEDIUM ERROR 11h/00h")
PY

# Live reload removes LUN 0 with async writes in flight: they complete,
# the LUN is closed once they have (its references drain), and the
# daemon goes on serving the others.
cp "$TMP/map.json" "$TMP/map-all.json"
python3 - "$TMP/map.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["targets"][0]["luns"] = [l for l in m["targets"][0]["luns"] if l["lun"] != 0]
json.dump(m, open(sys.argv[1], "w"))
PY
cp "$TMP/map.json" "$TMP/map-less.json"
cp "$TMP/map-all.json" "$TMP/map.json"
PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" "$ISCSI_GW" "$TMP" <<'PY' || fail "reload with async IO in flight"
import json, shutil, struct, subprocess, sys
from iscsi_raw import Conn
port, target, gw, tmp = sys.argv[1:5]
c = Conn("127.0.0.1", int(port), timeout=60)
keys = (b"FirstBurstLength=262144\0MaxBurstLength=262144\0"
        b"MaxRecvDataSegmentLength=262144\0ImmediateData=Yes\0")
assert c.login("iqn.2026-11.org.example:aio2", target, extra=keys)[0] == 0
for _ in range(3):
    c.scsi(bytes(6), lun=0)
    r, _ = c.recv()
    if r[3] == 0:
        break
pat = lambda i: bytes([(i * 41 + 7) % 251 + 1]) * 262144
itts = {c.scsi(struct.pack(">BBQIBB", 0x8a, 0, 6144 + i * 64, 64, 0, 0),
               write=pat(i), lun=0): i for i in range(32)}
shutil.copy(tmp + "/map-less.json", tmp + "/map.json")
subprocess.run([gw, "reload", "--config", tmp + "/map.json"], check=True,
               capture_output=True)
acked = []
while itts:
    r, d = c.recv()
    itt = struct.unpack_from(">I", r, 16)[0]
    if r[0] & 0x3f == 0x21 and itt in itts:
        if r[3] == 0:
            acked.append(itts[itt])
        itts.pop(itt)
open(tmp + "/acked", "w").write(" ".join(map(str, acked)))
out = subprocess.run([gw, "status", "--config", tmp + "/map.json", "--json"],
                     check=True, capture_output=True).stdout
luns = [l["lun"] for t in json.loads(out)["targets"] if t["name"] == target
        for l in t["luns"]]
assert luns == [1, 2], luns
print("ok: LUN 0 removed with writes in flight, %d of 32 acknowledged" % len(acked))
PY

if [ $strace_ok = 1 ]; then
	sleep 0.5
	kill $st_pid; wait $st_pid 2>/dev/null
	python3 - "$TMP/strace.out" <<'PY' || fail "RWF_DSYNC"
import re, sys
n = {}
for line in open(sys.argv[1]):
    if "IOCB_CMD_PWRITE" not in line:
        continue
    size = int(re.search(r"aio_nbytes=(\d+)", line).group(1))
    dsync = "RWF_DSYNC" in line
    n[(size, dsync)] = n.get((size, dsync), 0) + 1
# LUN 0 (write_cache false): 64 + 32 writes of 256 KiB, all RWF_DSYNC
# (the LUN RESET may have aborted some of the 32 before submission).
assert n.get((262144, False), 0) == 0, n
assert n.get((262144, True), 0) >= 64, n
# LUN 2 (write_cache true): 128 KiB plain, 192 KiB with FUA.
assert n.get((131072, False), 0) == 16 and n.get((131072, True), 0) == 0, n
assert n.get((196608, True), 0) == 8 and n.get((196608, False), 0) == 0, n
print("ok: io_submit: every write is RWF_DSYNC with write_cache false, "
      "only FUA ones with write_cache true")
PY
else
	note "strace unusable: RWF_DSYNC not checked"
fi

# Acknowledged writes are in the file, whatever happens to the daemon.
kill -9 $GW_PID; wait $GW_PID 2>/dev/null
python3 - "$TMP/a.img" "$TMP/acked" <<'PY' || fail "acknowledged writes lost"
import sys
a = open(sys.argv[1], "rb").read()
pat = lambda i, n: bytes([(i * 37 + 11) % 251 + 1]) * n
lost = [i for i in range(64) if a[i * 262144:(i + 1) * 262144] != pat(i, 262144)]
assert not lost, lost
print("ok: after kill -9 all 64 acknowledged writes are in the file")
pat2 = lambda i: bytes([(i * 41 + 7) % 251 + 1]) * 262144
acked = [int(x) for x in open(sys.argv[2]).read().split()]
lost = [i for i in acked
        if a[(6144 + i * 64) * 4096:(6144 + i * 64) * 4096 + 262144] != pat2(i)]
assert not lost, lost
print("ok: and the %d acknowledged before the LUN was removed" % len(acked))
PY
note "ok"
