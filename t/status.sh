#!/bin/bash
# The control socket, `iscsi-gw status` and the Prometheus endpoint.  With
# two live sessions of two initiator names (a raw initiator, t/iscsi_raw.py)
# and some reads and writes: `status --json` lists both sessions with
# their target and counters, the text form names them, and every line of
# /metrics parses as text format 0.0.4, the LUN counters and latency
# histograms grew, buckets are cumulative, per-initiator totals outlive a
# logout.  Clients that never send or never read do not stall the daemon
# and are dropped; oversize and unknown requests get an error answer.  The
# socket is 0600, refused while another daemon answers on it, replaced
# when stale, removed at shutdown; status fails cleanly without a daemon
# and without control_socket; `check` names /metrics when it is bad.
# Not checked here: a privilege drop (t/privileges.sh runs as root only).
source "$(dirname "$0")/functions.sh"
requires python3 --version

port=$(free_port)
mport=$(free_port)
lun='{ "lun": 0, "backend": { "type": "memory", "size": "16M" } }'
write_map "$TMP/map.json" $port "$lun" \
	"\"control_socket\": \"ctl.sock\", \"metrics\": \"127.0.0.1:$mport\""
sock=$TMP/ctl.sock
start_gw "$TMP/map.json"
[ -S "$sock" ] || fail "no control socket at $sock"
mode=$(stat -c %a "$sock")
[ "$mode" = 600 ] || fail "control socket mode $mode, not 600"
grep -q "metrics on http://127.0.0.1:$mport/metrics" "$GW_LOG" ||
	fail "no log line for the metrics endpoint"

# A second daemon on the same control socket is refused while this one
# answers (its own portals are free).
port2=$(free_port)
mport2=$(free_port)
write_map "$TMP/map2.json" $port2 "$lun" \
	"\"control_socket\": \"ctl.sock\", \"metrics\": \"127.0.0.1:$mport2\""
rc=0
timeout 20 "$ISCSI_GW" serve --config "$TMP/map2.json" >"$TMP/second.log" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$TMP/second.log" >&2; fail "second daemon on one socket: exit $rc, not 1"; }
grep -q "another process is listening" "$TMP/second.log" ||
	{ cat "$TMP/second.log" >&2; fail "no clear refusal for a socket in use"; }
[ -S "$sock" ] || fail "the refused daemon removed the live socket"

PYTHONPATH="$SRCDIR/t" python3 - "$ISCSI_GW" "$TMP/map.json" "$port" "$mport" \
	"$TARGET" "$sock" <<'PY' || fail "status and metrics checks"
import json, math, re, socket, struct, subprocess, sys, time
import urllib.error, urllib.request
from iscsi_raw import Conn

gw, mapf, port, mport, target, sock = sys.argv[1:7]
port, mport = int(port), int(mport)
INI_A = "iqn.2026-11.org.example:status-a"
INI_B = "iqn.2026-11.org.example:status-b"


def status_json():
    r = subprocess.run([gw, "status", "--config", mapf, "--json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "status --json: exit %d: %s" % (
        r.returncode, r.stderr)
    return json.loads(r.stdout)


def status_text():
    r = subprocess.run([gw, "status", "--config", mapf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "status: exit %d: %s" % (r.returncode, r.stderr)
    return r.stdout


# ---- a parser for the Prometheus text format 0.0.4 ----
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    return float(s)


def parse_exposition(text):
    """Every line must parse.  Returns (types, samples): samples is a list
    of (name, labels dict, value) in order."""
    types, samples = {}, []
    assert text.endswith("\n"), "exposition does not end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                assert NAME.fullmatch(parts[2]), where
                if parts[1] == "TYPE":
                    assert len(parts) == 4 and parts[3] in (
                        "counter", "gauge", "histogram", "summary",
                        "untyped"), where
                    assert parts[2] not in types, "TYPE twice: " + where
                    types[parts[2]] = parts[3]
            continue
        m = NAME.match(line)
        assert m, where
        name, i, labels = m.group(0), m.end(), {}
        if i < len(line) and line[i] == "{":
            i += 1
            while True:
                while line[i] == " ":
                    i += 1
                if line[i] == "}":
                    i += 1
                    break
                lm = LABEL.match(line, i)
                assert lm, where
                i = lm.end()
                assert line[i] == "=" and line[i + 1] == '"', where
                i += 2
                val = ""
                while line[i] != '"':
                    if line[i] == "\\":
                        esc = line[i + 1]
                        assert esc in '\\"n', "bad escape: " + where
                        val += "\n" if esc == "n" else esc
                        i += 2
                    else:
                        val += line[i]
                        i += 1
                i += 1
                assert lm.group(0) not in labels, "label twice: " + where
                labels[lm.group(0)] = val
                if line[i] == ",":
                    i += 1
                else:
                    assert line[i] == "}", where
        rest = line[i:].split()
        assert line[i] == " " and 1 <= len(rest) <= 2, where
        value = parse_value(rest[0])
        if len(rest) == 2:
            int(rest[1])            # a timestamp
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and \
                    types.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        assert family in types, "sample before its TYPE: " + where
        samples.append((name, labels, value))
    return types, samples


def scrape(path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (mport, path),
                                timeout=10) as r:
        assert r.status == 200
        ct = r.headers["Content-Type"]
        assert ct.startswith("text/plain; version=0.0.4"), ct
        return parse_exposition(r.read().decode("utf-8"))


def get(samples, name, **labels):
    found = [v for n, l, v in samples
             if n == name and all(l.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, "%s %s: %d samples" % (name, labels, len(found))
    return found[0]


def histogram(samples, op):
    base = "iscsi_gw_lun_io_latency_seconds"
    lab = dict(target=target, lun="0", op=op)
    buckets = [(parse_value(l["le"]), v) for n, l, v in samples
               if n == base + "_bucket" and
               all(l.get(k) == w for k, w in lab.items())]
    assert len(buckets) >= 10, "too few buckets for %s" % op
    les = [b[0] for b in buckets]
    assert les == sorted(les) and len(set(les)) == len(les), les
    assert les[-1] == math.inf, "no +Inf bucket"
    assert abs(les[0] - 50e-6) < 1e-12 and les[-2] == 10, les
    counts = [b[1] for b in buckets]
    assert counts == sorted(counts), "buckets not cumulative: %s" % counts
    count = get(samples, base + "_count", **lab)
    assert counts[-1] == count, "+Inf bucket %s != _count %s" % (
        counts[-1], count)
    total = get(samples, base + "_sum", **lab)
    assert total >= 0
    return count, total


def command(c, cdb, read_len=0, write=b""):
    """One SCSI command; returns (status, data-in)."""
    itt = c.scsi(cdb, read_len=read_len, write=write)
    data = b""
    while True:
        r, d = c.recv()
        op = r[0] & 0x3f
        if struct.unpack_from(">I", r, 16)[0] != itt:
            continue
        if op == 0x25:
            data += d
            if r[1] & 0x01:
                return r[3], data
        elif op == 0x21:
            return r[3], data


types0, before = scrape()
assert types0["iscsi_gw_lun_io_latency_seconds"] == "histogram"
for fam in ("iscsi_gw_lun_reads_total", "iscsi_gw_lun_writes_total",
            "iscsi_gw_lun_read_bytes_total", "iscsi_gw_lun_write_bytes_total",
            "iscsi_gw_lun_errors_total", "iscsi_gw_initiator_commands_total",
            "iscsi_gw_initiator_read_bytes_total",
            "iscsi_gw_initiator_write_bytes_total"):
    assert types0.get(fam) == "counter", fam
assert types0["iscsi_gw_sessions"] == "gauge"
assert types0["iscsi_gw_connections"] == "gauge"
r0 = get(before, "iscsi_gw_lun_reads_total", target=target, lun="0")
w0 = get(before, "iscsi_gw_lun_writes_total", target=target, lun="0")
rb0 = get(before, "iscsi_gw_lun_read_bytes_total", target=target, lun="0")
wb0 = get(before, "iscsi_gw_lun_write_bytes_total", target=target, lun="0")
rc0, _ = histogram(before, "read")
wc0, _ = histogram(before, "write")
print("ok: /metrics parses before any IO")

# Two sessions of two initiators; some IO on each.
a = Conn("127.0.0.1", port)
st, _ = a.login(INI_A, target, isid=b"\x80\0\0\0\0\x0a")
assert st == 0, "login a: %04x" % st
b = Conn("127.0.0.1", port)
st, _ = b.login(INI_B, target, isid=b"\x80\0\0\0\0\x0b")
assert st == 0, "login b: %04x" % st
data = bytes(range(256)) * 16                                   # 4 KiB
st, _ = command(a, struct.pack(">BBIBHB", 0x2a, 0, 8, 0, 8, 0), write=data)
assert st == 0, "WRITE(10) status %x" % st
st, got = command(a, struct.pack(">BBIBHB", 0x28, 0, 8, 0, 8, 0), 4096)
assert st == 0 and got == data, "READ(10) back"
st, got = command(b, struct.pack(">BBIBHB", 0x28, 0, 0, 0, 16, 0), 8192)
assert st == 0 and len(got) == 8192, "READ(10) on b"
print("ok: two sessions, one write and two reads")

s = status_json()
for key in ("version", "pid", "uptime_seconds", "portals", "targets",
            "sessions"):
    assert key in s, "status lacks %s" % key
assert s["portals"] == ["127.0.0.1:%d" % port], s["portals"]
by_ini = {x["initiator"]: x for x in s["sessions"]}
assert INI_A in by_ini and INI_B in by_ini, "sessions: %s" % list(by_ini)
for ini, isid in ((INI_A, "80000000000a"), (INI_B, "80000000000b")):
    x = by_ini[ini]
    assert x["target"] == target, x
    assert x["type"] == "normal", x
    assert x["isid"] == isid, x
    assert isinstance(x["tsih"], int) and x["tsih"] > 0, x
    assert x["peer"].startswith("127.0.0.1:"), x
    assert x["header_digest"] == "None" and x["data_digest"] == "None", x
    for k in ("cid", "max_burst_length", "first_burst_length",
              "connected_seconds"):
        assert isinstance(x[k], int), (k, x)
assert by_ini[INI_A]["commands"] == 2, by_ini[INI_A]
assert by_ini[INI_A]["write_bytes"] == 4096, by_ini[INI_A]
assert by_ini[INI_A]["read_bytes"] == 4096, by_ini[INI_A]
assert by_ini[INI_B]["commands"] == 1 and by_ini[INI_B]["read_bytes"] == 8192
t = [x for x in s["targets"] if x["name"] == target]
assert len(t) == 1, s["targets"]
l0 = t[0]["luns"][0]
assert l0["lun"] == 0 and l0["backend"] == "memory", l0
assert l0["blocks"] == 32768 and l0["block_size"] == 512, l0
assert l0["reads"] >= 2 and l0["writes"] >= 1, l0
assert l0["read_bytes"] >= 12288 and l0["write_bytes"] >= 4096, l0
for k in ("read_only", "thin", "write_cache", "errors"):
    assert k in l0, k
print("ok: status --json lists both sessions and the LUN counters")

text = status_text()
for word in (INI_A, INI_B, target, "memory"):
    assert word in text, "text status lacks %s:\n%s" % (word, text)
print("ok: status text names both initiators")

types, after = scrape()
assert get(after, "iscsi_gw_lun_reads_total", target=target, lun="0") >= r0 + 2
assert get(after, "iscsi_gw_lun_writes_total", target=target, lun="0") >= w0 + 1
assert get(after, "iscsi_gw_lun_read_bytes_total", target=target,
           lun="0") >= rb0 + 12288
assert get(after, "iscsi_gw_lun_write_bytes_total", target=target,
           lun="0") >= wb0 + 4096
rc1, rsum = histogram(after, "read")
wc1, wsum = histogram(after, "write")
assert rc1 >= rc0 + 2 and wc1 >= wc0 + 1, (rc0, rc1, wc0, wc1)
assert rsum > 0 and wsum > 0, (rsum, wsum)
assert get(after, "iscsi_gw_sessions") == 2
assert get(after, "iscsi_gw_connections") == 2
assert get(after, "iscsi_gw_initiator_commands_total", initiator=INI_A) == 2
assert get(after, "iscsi_gw_initiator_write_bytes_total",
           initiator=INI_A) == 4096
assert get(after, "iscsi_gw_initiator_read_bytes_total",
           initiator=INI_B) == 8192
print("ok: /metrics counters and histograms grew, buckets cumulative")

# Totals per initiator name outlive the session.
r, _ = a.logout()
assert r[0] & 0x3f == 0x26 and r[2] == 0, "logout"
assert a.closed_within(5)
time.sleep(1.5)                         # the session is reaped on the tick
_, later = scrape()
assert get(later, "iscsi_gw_sessions") == 1
assert get(later, "iscsi_gw_initiator_commands_total", initiator=INI_A) == 2
assert get(later, "iscsi_gw_initiator_read_bytes_total",
           initiator=INI_A) == 4096
s = status_json()
assert [x["initiator"] for x in s["sessions"]] == [INI_B], s["sessions"]
print("ok: initiator totals kept after logout")

# HTTP: HEAD, other paths, other methods, an oversize head.
req = urllib.request.Request("http://127.0.0.1:%d/metrics" % mport,
                             method="HEAD")
with urllib.request.urlopen(req, timeout=10) as r:
    assert r.status == 200 and r.read() == b""
for path, method, code in (("/", "GET", 404), ("/metricsx", "GET", 404),
                           ("/metrics", "POST", 405)):
    try:
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:%d%s" % (mport, path), method=method,
            data=b"x" if method == "POST" else None), timeout=10)
        raise AssertionError("%s %s answered 200" % (method, path))
    except urllib.error.HTTPError as e:
        assert e.code == code, (method, path, e.code)
h = socket.create_connection(("127.0.0.1", mport), timeout=10)
h.sendall(b"GET /metrics HTTP/1.0\r\nX-Long: " + b"a" * 20000)
reply = b""
try:
    while True:
        c = h.recv(65536)
        if not c:
            break
        reply += c
except (ConnectionResetError, BrokenPipeError):
    pass
assert reply.startswith(b"HTTP/1.0 431"), reply[:80]
h.close()
print("ok: HTTP HEAD, 404, 405, 431")


def control(req):
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(10)
    u.connect(sock)
    u.sendall(req)
    out = b""
    while True:
        c = u.recv(65536)
        if not c:
            break
        out += c
    u.close()
    return out


e = json.loads(control(b"version please\n"))
assert "error" in e and "unknown request" in e["error"], e
e = json.loads(control(b"s" * 1000))
assert "error" in e and "longer" in e["error"], e
assert control(b"metrics\n").startswith(b"# HELP"), "metrics on the socket"
print("ok: unknown and oversize control requests get an error object")

# Clients that never send, and one that never reads: the daemon goes on
# answering, then drops them.
silent_u = socket.socket(socket.AF_UNIX)
silent_u.connect(sock)
silent_h = socket.create_connection(("127.0.0.1", mport))
lazy = socket.socket(socket.AF_UNIX)
lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
lazy.connect(sock)
lazy.sendall(b"status\n")
t0 = time.time()
status_json()
scrape()
assert time.time() - t0 < 4, "answers took %.1fs" % (time.time() - t0)
for q in (silent_u, silent_h):
    q.settimeout(10)
    t0 = time.time()
    try:
        assert q.recv(100) == b"", "a silent client got an answer"
    except ConnectionResetError:
        pass
    assert time.time() - t0 < 9, "silent client kept for %.1fs" % (
        time.time() - t0)
print("ok: silent and lazy clients do not stall the daemon and are dropped")
lazy.close()
r, _ = b.logout()
assert r[2] == 0
PY

stop_gw
[ -e "$sock" ] && fail "control socket left behind at shutdown"

# No daemon: status fails cleanly.
rc=0
"$ISCSI_GW" status --config "$TMP/map.json" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ $rc = 1 ] || fail "status without a daemon: exit $rc"
grep -q "iscsi-gw: cannot reach the daemon at $sock: No such file or directory" "$TMP/err" ||
	{ cat "$TMP/err" >&2; fail "status without a daemon: message"; }
# A stale socket (nothing listens): "Connection refused", then a new
# daemon replaces it.
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$sock"
rc=0
"$ISCSI_GW" status --config "$TMP/map.json" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ $rc = 1 ] || fail "status on a stale socket: exit $rc"
grep -q "iscsi-gw: cannot reach the daemon at $sock: Connection refused" "$TMP/err" ||
	{ cat "$TMP/err" >&2; fail "status on a stale socket: message"; }
start_gw "$TMP/map.json"
grep -q "replaced a stale socket" "$GW_LOG" || fail "stale socket not replaced"
"$ISCSI_GW" status --config "$TMP/map.json" --json >"$TMP/out" ||
	fail "status after replacing a stale socket"
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); assert s["sessions"] == []' "$TMP/out" ||
	fail "status JSON after restart"
stop_gw

# A map without control_socket.
write_map "$TMP/plain.json" $port "$lun"
rc=0
"$ISCSI_GW" status --config "$TMP/plain.json" 2>"$TMP/err" || rc=$?
[ $rc = 1 ] && grep -q "has no control_socket" "$TMP/err" ||
	{ cat "$TMP/err" >&2; fail "status with no control_socket: exit $rc"; }
# A bad metrics key is refused by check, naming it.
write_map "$TMP/bad.json" $port "$lun" '"metrics": "nonsense"'
rc=0
"$ISCSI_GW" check --config "$TMP/bad.json" 2>"$TMP/err" || rc=$?
[ $rc != 0 ] && grep -q "/metrics" "$TMP/err" ||
	{ cat "$TMP/err" >&2; fail "check accepted metrics: nonsense"; }
echo "$0: ok"
