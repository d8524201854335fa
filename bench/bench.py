#!/usr/bin/env python3
"""bench.py: helpers for bench/run.sh (the iscsi-gw / tgt / istgt
comparison).  Small measurements run.sh cannot make in shell, and the
report: it turns the run's records (one JSON object a line) into
RESULTS.md.  Standard library only.

  bench.py free-port                     a free TCP port on 127.0.0.1
  bench.py loopback BYTES                loopback TCP bandwidth in MiB/s (one stream)
  bench.py fileread FILE BS              read FILE once with dd, print MiB/s
  bench.py report WORKDIR OUT            write the Markdown report from
                                         WORKDIR/info.tsv and records.jsonl

Nothing here guesses a number: the report prints what the records hold,
and says "n/a" where a figure is missing.
"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

# ---------------------------------------------------------------------------
# Small measurements


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def loopback(nbytes):
    """One TCP stream over 127.0.0.1, 1 MiB sends, the receiver in a child
    process.  Returns MiB/s as the receiver saw it (first byte to last)."""
    chunk = 1 << 20
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # receiver
        os.close(rfd)
        conn, _ = lsock.accept()
        buf = bytearray(chunk)
        view = memoryview(buf)
        got = 0
        t0 = None
        while got < nbytes:
            n = conn.recv_into(view)
            if n == 0:
                break
            if t0 is None:
                t0 = time.monotonic()
            got += n
        t1 = time.monotonic()
        os.write(wfd, json.dumps({"bytes": got, "secs": t1 - t0}).encode())
        os._exit(0)
    os.close(wfd)
    lsock.close()
    s = socket.create_connection(("127.0.0.1", port))
    data = b"\xa5" * chunk
    sent = 0
    while sent < nbytes:
        s.sendall(data)
        sent += chunk
    s.shutdown(socket.SHUT_WR)
    res = json.loads(os.read(rfd, 4096).decode())
    os.waitpid(pid, 0)
    s.close()
    return res["bytes"] / res["secs"] / (1 << 20)


def fileread(path, bs):
    out = subprocess.run(["dd", "if=" + path, "of=/dev/null", "bs=" + bs],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         text=True, check=True, env={"LC_ALL": "C"}).stderr
    m = re.search(r"^(\d+) bytes .* copied, ([0-9.e+-]+) s", out, re.M)
    if not m:
        raise SystemExit("fileread: cannot parse dd output: " + out)
    return int(m.group(1)) / float(m.group(2)) / (1 << 20)


# ---------------------------------------------------------------------------
# The report

TARGETS = ["igw", "tgt", "istgt"]
NAMES = {"igw": "iscsi-gw", "tgt": "tgt", "istgt": "istgt"}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fr(x):
    return "n/a" if x is None else f"{x:.2f}x"


class Cell:
    """The medians of one workload on one target."""

    def __init__(self, runs):
        self.runs = runs
        ok = [r for r in runs if r.get("r")]
        self.n = len(ok)
        self.failed = sum(1 for r in runs
                          if r["rc"] != 0 or not r.get("r")
                          or r["r"].get("errors") or
                          r["r"].get("verify_failures"))

        def get(f):
            return [f(r) for r in ok]

        iops = get(lambda r: r["r"]["iops"])
        self.iops = med(iops)
        self.iops_min = min(iops) if iops else None
        self.iops_max = max(iops) if iops else None
        self.mib = med(get(lambda r: r["r"]["mib_s"]))
        self.p50 = med(get(lambda r: r["r"]["lat_us"]["p50"]))
        self.p99 = med(get(lambda r: r["r"]["lat_us"]["p99"]))
        self.p999 = med(get(lambda r: r["r"]["lat_us"]["p99_9"]))
        self.cpu = med(get(lambda r: (r["r"].get("target_cpu") or {})
                           .get("us_per_io")))
        self.hit = med(get(lambda r: r.get("hit_pct")))
        self.res = med(get(lambda r: r.get("resident_pct")))


def read_info(wdir):
    """info.tsv: one fact a line, KEY<TAB>FIELD<TAB>FIELD..., written by
    run.sh as it goes."""
    meta = {"targets_run": [], "workloads": [], "groups": {},
            "ceilings": [], "machine": [], "command": "", "reps": 0,
            "run_notes": [], "setup": [], "notes": [],
            "session_setup": {}}
    with open(os.path.join(wdir, "info.tsv")) as f:
        for line in f:
            k, *v = line.rstrip("\n").split("\t")
            if k == "targets_run":
                meta["targets_run"] = v
            elif k == "workload":
                meta["workloads"].append(
                    {"id": v[0], "group": v[1], "title": v[2],
                     "args": v[3] if len(v) > 3 else ""})
            elif k == "group":
                meta["groups"][v[0]] = (v[1], v[2] if len(v) > 2 else "")
            elif k == "ceiling":
                vals = [float(x) for x in v[2:]]
                meta["ceilings"].append((v[0], v[1], vals))
            elif k == "session_setup":
                meta["session_setup"][v[0]] = [float(x) for x in v[1:]]
            elif k == "command":
                meta["command"] = v[0]
            elif k == "reps":
                meta["reps"] = int(v[0])
            elif k in ("machine", "run_note", "setup", "note"):
                key = {"run_note": "run_notes", "note": "notes"}.get(k, k)
                meta[key].append(v[0])
    return meta


def load(records):
    runs, verifies = {}, {}
    with open(records) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            r = rec.get("r")
            rb = rec.get("io_read_bytes")
            if r and rb is not None and r["read"]["bytes"] > 0:
                miss = min(1.0, rb / r["read"]["bytes"])
                rec["hit_pct"] = 100.0 * (1.0 - miss)
            key = (rec["wl"], rec["target"])
            (verifies if rec.get("verify") else runs).setdefault(
                key, []).append(rec)
    return runs, verifies


def bad_run(r):
    res = r.get("r")
    return (r["rc"] != 0 or not res or res.get("errors")
            or res.get("verify_failures"))


def report(wdir, out):
    meta = read_info(wdir)
    runs, verifies = load(os.path.join(wdir, "records.jsonl"))
    workloads = meta["workloads"]
    targets = [t for t in TARGETS if t in meta["targets_run"]]
    cells = {}
    for w in workloads:
        for t in targets:
            if (w["id"], t) in runs:
                cells[(w["id"], t)] = Cell(runs[(w["id"], t)])

    def cell(wid, t):
        return cells.get((wid, t))

    ceil = {k: (label, vals) for k, label, vals in meta["ceilings"]}
    lo = med(ceil["loopback"][1]) if "loopback" in ceil else None

    L = []
    p = L.append
    p("# iscsi-gw against tgt and istgt: benchmark results")
    p("")
    p("Made by `bench/run.sh`: every figure below comes from the run "
      "described here, as the median of %d repetitions unless said "
      "otherwise." % meta["reps"])
    p("This machine is shared with the test runs of other people, so the "
      "figures are noisy: compare the ratios, measured in the same run "
      "with the targets alternating, rather than absolute numbers across "
      "runs; the IOPS min-max of the repetitions hints at the noise.")
    p("")
    p("## Machine and software")
    p("")
    for line in meta["machine"]:
        p(f"- {line}")
    p("")
    p("## Command")
    p("")
    p("```")
    p(meta["command"])
    p("```")
    p("")
    for line in meta["run_notes"]:
        p(f"- {line}")
    p("")
    p("## Setup")
    p("")
    for line in meta["setup"]:
        p(f"- {line}")
    p("")

    # --- targets of issue 6 ---------------------------------------------
    p("## Targets of issue 6")
    p("")
    p("Medians of this run. \"Met\" compares iscsi-gw with tgt, the "
      "issue's reference; istgt is given for context.")
    p("")
    p("| goal | measured | met? |")
    p("| --- | --- | --- |")

    def yes(b):
        return "n/a" if b is None else ("**yes**" if b else "**no**")

    for wid, label in (("rand-read-4k-qd32", "4 KB random read QD32"),
                       ("rand-write-4k-qd32", "4 KB random write QD32")):
        g, t, i = cell(wid, "igw"), cell(wid, "tgt"), cell(wid, "istgt")
        if not g or not t:
            p(f"| {label}: IOPS >= 1.5x tgt | not measured | n/a |")
            p(f"| {label}: CPU/IO <= 0.6x tgt | not measured | n/a |")
            continue
        ri = ratio(g.iops, t.iops)
        rc = ratio(g.cpu, t.cpu)
        xi = xc = ""
        if i:
            xi = (f"; istgt {fmt(i.iops)} (iscsi-gw/istgt "
                  f"{fr(ratio(g.iops, i.iops))})")
            xc = (f"; istgt {fmt(i.cpu, 1)} (iscsi-gw/istgt "
                  f"{fr(ratio(g.cpu, i.cpu))})")
        p(f"| {label}: IOPS >= 1.5x tgt | iscsi-gw {fmt(g.iops)} IOPS, tgt "
          f"{fmt(t.iops)}: **{fr(ri)}**{xi} | "
          f"{yes(None if ri is None else ri >= 1.5)} |")
        p(f"| {label}: CPU/IO <= 0.6x tgt | iscsi-gw {fmt(g.cpu, 1)} us/IO, "
          f"tgt {fmt(t.cpu, 1)}: **{fr(rc)}**{xc} | "
          f"{yes(None if rc is None else rc <= 0.6)} |")
    g = cell("seq-read-256k", "igw")
    if g and lo:
        r = g.mib / lo
        others = ""
        for o in ("tgt", "istgt"):
            c = cell("seq-read-256k", o)
            if c:
                others += f"; {o} {fmt(c.mib)} MiB/s = {100 * c.mib / lo:.0f}%"
        p(f"| 256 KB sequential read from page cache >= 90% of loopback "
          f"TCP | iscsi-gw {fmt(g.mib)} MiB/s, loopback {fmt(lo)} MiB/s: "
          f"**{100 * r:.0f}%**{others} | {yes(r >= 0.9)} |")
    else:
        p("| 256 KB sequential read >= 90% of loopback TCP | not measured "
          "| n/a |")
    for wid, label in (("rand-read-4k-qd1", "QD1 4 KB random read"),
                       ("rand-write-4k-qd1", "QD1 4 KB random write"),
                       ("seq-read-4k-qd1", "QD1 4 KB sequential read"),
                       ("seq-write-4k-qd1", "QD1 4 KB sequential write")):
        g, t, i = cell(wid, "igw"), cell(wid, "tgt"), cell(wid, "istgt")
        if not g or not t:
            continue
        xi = f"; istgt {fmt(i.p50, 1)} us" if i else ""
        p(f"| {label}: p50 <= tgt | iscsi-gw {fmt(g.p50, 1)} us, tgt "
          f"{fmt(t.p50, 1)} us: **{fr(ratio(g.p50, t.p50))}**{xi} | "
          f"{yes(g.p50 <= t.p50)} |")
    nver = sum(len(v) for v in verifies.values())
    bad = [k for k, v in verifies.items() if any(bad_run(r) for r in v)]
    allw = {w["id"] for w in workloads}
    cover = []
    for t in targets:
        n = len({k[0] for k in verifies if k[1] == t} & allw)
        cover.append(f"{NAMES[t]} {n}")
    gw_all = {k[0] for k in verifies if k[1] == "igw"} >= allw
    p(f"| data verification on in at least one run of each workload | "
      f"{nver} verify runs; workloads verified (of {len(allw)}): "
      f"{', '.join(cover)}; failed runs: {len(bad)} | "
      f"{yes(gw_all and not bad)} |")
    p("")
    p("The test-suite criterion (no regression) is outside this "
      "benchmark.")
    p("")

    # --- ceilings ---------------------------------------------------------
    p("## Ceilings of this machine")
    p("")
    p("| measurement | MiB/s, median | the runs |")
    p("| --- | --- | --- |")
    for key, label, vals in meta["ceilings"]:
        p(f"| {label} | {fmt(med(vals))} | "
          f"{', '.join(fmt(v) for v in vals)} |")
    p("")

    if meta["session_setup"]:
        p("Session set-up and tear-down: the wall time of `igw-load --ios 1 "
          "--qd 1` (connect, login, READ CAPACITY(16), one 4 KB read, "
          "logout), not part of any measured run:")
        p("")
        p("| target | seconds, median | the runs |")
        p("| --- | --- | --- |")
        for t in targets:
            vals = meta["session_setup"].get(t)
            if vals:
                p(f"| {NAMES[t]} | {med(vals):.3f} | "
                  f"{', '.join(f'{v:.3f}' for v in vals)} |")
        p("")

    # --- per-group tables -------------------------------------------------
    for grp, (gtitle, gnote) in meta["groups"].items():
        ws = [w for w in workloads if w["group"] == grp]
        if not ws:
            continue
        p(f"## {gtitle}")
        p("")
        if gnote:
            p(gnote)
            p("")
        p("igw-load options: " + "; ".join(
            f"{w['title']}: `{w['args']}`" for w in ws) + ".")
        p("")
        others = [o for o in ("tgt", "istgt") if o in targets]
        if "igw" in targets and others:
            hdr, sep = "| workload", "| ---"
            for o in others:
                hdr += (f" | IOPS gw/{o} | MiB/s gw/{o} | CPU/IO gw/{o}"
                        f" | p50 gw/{o}")
                sep += " | --- | --- | --- | ---"
            p(hdr + " |")
            p(sep + " |")
            for w in ws:
                g = cell(w["id"], "igw")
                row = f"| {w['title']}"
                for o in others:
                    c = cell(w["id"], o)
                    if not g or not c:
                        row += " | n/a | n/a | n/a | n/a"
                        continue
                    row += (f" | {fr(ratio(g.iops, c.iops))}"
                            f" | {fr(ratio(g.mib, c.mib))}"
                            f" | {fr(ratio(g.cpu, c.cpu))}"
                            f" | {fr(ratio(g.p50, c.p50))}")
                p(row + " |")
            p("")
        netsrv = grp == "netserver"
        hdr = ("| workload | target | IOPS | IOPS min-max | MiB/s | p50 us | "
               "p99 us | p99.9 us | CPU us/IO")
        sep = "| --- | --- | --- | --- | --- | --- | --- | --- | ---"
        if netsrv:
            hdr += " | resident before | page-cache hit"
            sep += " | --- | ---"
        p(hdr + " |")
        p(sep + " |")
        for w in ws:
            for t in targets:
                c = cell(w["id"], t)
                if not c:
                    continue
                fail = f" ({c.failed} of {len(c.runs)} runs failed)" \
                    if c.failed else ""
                row = (f"| {w['title']} | {NAMES[t]}{fail} | {fmt(c.iops)} | "
                       f"{fmt(c.iops_min)}-{fmt(c.iops_max)} | "
                       f"{fmt(c.mib, 1)} | {fmt(c.p50, 1)} | "
                       f"{fmt(c.p99, 1)} | {fmt(c.p999, 1)} | "
                       f"{fmt(c.cpu, 1)}")
                if netsrv:
                    row += f" | {fmt(c.res, 1)}% | {fmt(c.hit, 1)}%"
                p(row + " |")
        p("")

    # --- verification -----------------------------------------------------
    p("## Data verification")
    p("")
    p("One igw-load `--verify` run per workload and target (\"not run\": "
      "`--quick` verifies on iscsi-gw only), with the workload's options "
      "on a smaller range (see Command): reads are checked against a "
      "pattern written first (the prefill), writes are read back and "
      "checked afterwards. Not part of the medians.")
    p("")
    p("| workload | " + " | ".join(NAMES[t] for t in targets) + " |")
    p("| --- |" + " --- |" * len(targets))
    for w in workloads:
        row = f"| {w['title']} ({w['group']})"
        for t in targets:
            v = verifies.get((w["id"], t))
            if not v:
                row += " | not run"
                continue
            r = v[0]
            res = r.get("r")
            if not res:
                row += f" | **failed** (exit {r['rc']}, no report)"
            elif bad_run(r):
                row += (f" | **failed** (exit {r['rc']}, {res.get('errors')}"
                        f" errors, {res.get('verify_failures')} bad blocks)")
            else:
                row += (f" | ok: {res['ios']} IOs, {res['verified_units']}"
                        " units checked")
        p(row + " |")
    p("")

    if meta["notes"]:
        p("## Notes")
        p("")
        for line in meta["notes"]:
            p(f"- {line}")
        p("")
    with open(out, "w") as f:
        f.write("\n".join(L))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "free-port":
        print(free_port())
    elif cmd == "loopback":
        print(f"{loopback(int(argv[2])):.1f}")
    elif cmd == "fileread":
        print(f"{fileread(argv[2], argv[3]):.1f}")
    elif cmd == "report":
        report(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
