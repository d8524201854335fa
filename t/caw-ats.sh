#!/bin/bash
# COMPARE AND WRITE as ESXi's ATS heartbeats use it, from several
# initiators at once: four raw initiators (t/iscsi_raw.py, one session
# each, each with its own initiator name as four hosts would have) take
# turns on one block with the read-compare-swap loop of a lock: read the
# block, COMPARE AND WRITE it from what was read to the next counter
# value; a MISCOMPARE (sense key MISCOMPARE, MISCOMPARE DURING VERIFY
# OPERATION, a byte offset inside the block) means another host won, and
# the loop reads again.  Meanwhile a fifth session keeps writing the
# blocks on either side of it (on the 512-byte O_DIRECT LUN they share
# the block's 4 KiB page, so those writes bounce) and a sixth keeps
# reading the block.  Checks: every counter value from 1 to the total was
# won exactly once (two wins from one value would be two hosts holding
# the lock), the block ends at that total, no read ever saw a torn block,
# and the neighbours hold the last data written to them.  On three LUNs:
# a 512-byte file LUN with O_DIRECT (async IO), a 4096-byte memory LUN
# and a thin file LUN with the write cache on.
source "$(dirname "$0")/functions.sh"
requires python3 --version

port=$(free_port)
direct=false
direct_ok && direct=true
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "d.img", "size": "16M",
                           "direct": '$direct' } },
  { "lun": 1, "backend": { "type": "memory", "size": "16M" }, "block_size": 4096 },
  { "lun": 2, "backend": { "type": "file", "path": "t.img", "size": "16M" },
    "thin": true, "write_cache": true }'
start_gw "$TMP/map.json"

PYTHONPATH="$SRCDIR/t" python3 - "$port" "$TARGET" <<'PY' || fail "COMPARE AND WRITE from several initiators"
import struct, sys, threading
from iscsi_raw import Conn
port, target = int(sys.argv[1]), sys.argv[2]
HOSTS, WINS, LBA = 4, 60, 16

def session(name):
    c = Conn("127.0.0.1", port, timeout=60)
    st, _ = c.login("iqn.1998-01.com.vmware:" + name, target)
    assert st == 0, ("login", name, st)
    return c

def rw16(op, lba, nb):
    return bytes([op, 0]) + struct.pack(">QIBB", lba, nb, 0, 0)

def block(bs, counter, owner):
    """A block whose every 16 bytes say (counter, owner): a torn block
    shows two different records."""
    return struct.pack(">QQ", counter, owner) * (bs // 16)

def records(b):
    return {b[i:i + 16] for i in range(0, len(b), 16)}

def run_lun(lun):
    errors = []
    c0 = session("setup")
    st, sn, d = c0.command(bytes([0x9e, 0x10]) + bytes(8) + struct.pack(">I", 32) + b"\0\0", 32, lun=lun)
    assert st == 0, (st, sn)
    bs = struct.unpack_from(">I", d, 8)[0]
    assert c0.command(rw16(0x8a, LBA, 1), write=block(bs, 0, 0), lun=lun)[0] == 0
    won = []            # counter values won, all hosts
    misses = [0]
    lock = threading.Lock()
    done = threading.Event()

    def host(i):
        try:
            c = session("esx-%d" % i)
            n = 0
            while n < WINS:
                st, sn, cur = c.command(rw16(0x88, LBA, 1), bs, lun=lun)
                assert st == 0, ("read", st, sn)
                assert len(records(cur)) == 1, "torn read by a host"
                counter = struct.unpack_from(">Q", cur)[0]
                cdb = bytes([0x89, 0]) + struct.pack(">Q", LBA) + bytes(3) + bytes([1, 0, 0])
                st, sn, _ = c.command(cdb, write=cur + block(bs, counter + 1, i + 1), lun=lun)
                if st == 0:
                    with lock:
                        won.append(counter + 1)
                    n += 1
                else:
                    assert st == 2 and sn == (0x0e, 0x1d, 0x00), ("CAW", st, sn)
                    with lock:
                        misses[0] += 1
            c.logout()
        except Exception as e:
            errors.append("host %d: %r" % (i, e))

    last = {}
    def writer():
        try:
            c = session("writer")
            k = 0
            while not done.is_set():
                for lba in (LBA - 1, LBA + 1):
                    k += 1
                    fua = 0x08 if k % 3 == 0 else 0
                    cdb = bytearray(rw16(0x8a, lba, 1)); cdb[1] = fua
                    st, sn, _ = c.command(bytes(cdb), write=block(bs, k, 99), lun=lun)
                    assert st == 0, ("write", st, sn)
                    last[lba] = k
            c.logout()
        except Exception as e:
            errors.append("writer: %r" % (e,))

    torn = [0]
    reads = [0]
    def reader():
        try:
            c = session("reader")
            while not done.is_set():
                st, sn, cur = c.command(rw16(0x88, LBA, 1), bs, lun=lun)
                assert st == 0, ("read", st, sn)
                reads[0] += 1
                if len(records(cur)) != 1:
                    torn[0] += 1
            c.logout()
        except Exception as e:
            errors.append("reader: %r" % (e,))

    hosts = [threading.Thread(target=host, args=(i,)) for i in range(HOSTS)]
    others = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in hosts + others:
        t.start()
    for t in hosts:
        t.join(300)
    done.set()
    for t in others:
        t.join(60)
    assert not errors, errors
    total = HOSTS * WINS
    assert sorted(won) == list(range(1, total + 1)), \
        "counter values won twice or skipped: %s" % sorted(won)[:20]
    st, sn, fin = c0.command(rw16(0x88, LBA, 1), bs, lun=lun)
    assert st == 0 and struct.unpack_from(">Q", fin)[0] == total, "final counter"
    assert torn[0] == 0, "%d torn reads" % torn[0]
    for lba, k in last.items():
        st, sn, d = c0.command(rw16(0x88, lba, 1), bs, lun=lun)
        assert st == 0 and d == block(bs, k, 99), "neighbour LBA %d lost its last write" % lba
    print("LUN %d (%d-byte blocks): %d wins, %d miscompares, %d reads, none torn"
          % (lun, bs, total, misses[0], reads[0]))

for lun in (0, 1, 2):
    run_lun(lun)
PY
stop_gw
