#!/bin/bash
# bench/run.sh: iscsi-gw against tgt and istgt on this machine, issue 6's
# benchmark in one command.  Not part of the test suite.
#
#   bench/run.sh [--quick] [--build DIR] [--rev REV] [--out FILE]
#                [--dir DIR] [--size SIZE] [--reps N] [--targets LIST]
#                [--only REGEX] [--no-install] [--keep]
#
# What it does, in order:
#   1. installs tgt, istgt and libiscsi-bin (apt-get, as root, only what is
#      missing); uses the iscsi-gw and bench/igw-load of --build DIR, or
#      builds them from a clean clone of this repository at --rev (HEAD);
#   2. writes one backing file (--size, default 1G, real data from
#      /dev/urandom so that a page-cache miss reads the disk) in a fresh
#      folder under --dir (default /var/tmp), and serves that same file
#      from three daemons it starts itself, each on its own free loopback
#      port: iscsi-gw (file backend, write_cache true), tgtd (foreground,
#      its own control port, backing-store LUN 1) and istgt (a generated
#      istgt.conf, LUN 0).  All three run for the whole benchmark, but only
#      one is under load at any time;
#   3. measures the ceilings (loopback TCP, the backing file read with dd);
#   4. runs every workload with igw-load against each target in turn,
#      --reps times (the order of the targets rotates each repetition),
#      then once more per target with --verify on a smaller range; the
#      target's CPU time per IO comes from /proc/PID/stat (igw-load
#      --target-pid), its disk reads from /proc/PID/io;
#   5. writes the report (--out, default bench/RESULTS.md) with bench.py.
#
# Everything it starts it stops, and its folder is removed, on exit, on
# error and on Ctrl-C (--keep leaves the folder, with the raw records and
# the daemons' logs).  It never signals a process it did not start and
# talks to tgtd only on the control port it chose.
#
# Exit status: 0 when the report was written, 1 otherwise.
set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
prog=bench/run.sh
cmdline="$prog${*:+ $(printf '%q ' "$@")}"
cmdline=${cmdline% }

usage() {
	sed -n '5,7p' "$0" | sed 's/^#  *//; 1s/^/usage: /; 2,$s/^/                    /'
	cat <<'EOF'
  --quick          4k and 32k only, 5,000 IOs a run at QD1 and 10,000 at
                   QD32, 2 s throughput runs, verify runs on iscsi-gw only
                   (under 10 minutes); default: 2k-32k, 50,000 IOs, 10 s,
                   verify runs on every target
  --build DIR      take iscsi-gw and bench/igw-load from this build folder;
                   if it has none, build there (default: a folder named
                   after the revision under /var/tmp, kept and reused)
  --rev REV        the revision to build when building (default HEAD)
  --out FILE       the report (default bench/RESULTS.md in this tree)
  --dir DIR        where the backing file goes (default /var/tmp)
  --size SIZE      size of the backing file, dd-style (default 1G)
  --reps N         repetitions of each measured run (default 3)
  --targets LIST   comma-separated, from igw,tgt,istgt (default all three)
  --only REGEX     only the workloads whose id matches (grep -E), e.g.
                   'rand-.*-4k-qd32|seq-read-256k'; ids are in the report
  --no-install     never run apt-get
  --keep           keep the work folder (records, logs, configs)
EOF
}

quick=false build='' rev=HEAD out=$here/RESULTS.md parent=/var/tmp size=1G
reps=3 targets=igw,tgt,istgt install=true keep=false only=''
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=true ;;
	--build) build=${2:?}; shift ;;
	--rev) rev=${2:?}; shift ;;
	--out) out=${2:?}; shift ;;
	--dir) parent=${2:?}; shift ;;
	--size) size=${2:?}; shift ;;
	--reps) reps=${2:?}; shift ;;
	--targets) targets=${2:?}; shift ;;
	--only) only=${2:?}; shift ;;
	--no-install) install=false ;;
	--keep) keep=true ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 1 ;;
	esac
	shift
done
case $out in /*) ;; *) out=$PWD/$out ;; esac

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

t_start=$(date +%s)
build_secs=0

# ---------------------------------------------------------------------------
# 1. Packages and binaries

if $install && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	missing=()
	for p in tgt istgt libiscsi-bin python3; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || missing+=("$p")
	done
	if [ -z "$build" ] || [ ! -x "$build/iscsi-gw" ]; then
		for p in build-essential autoconf automake libtool pkg-config git \
			 libjansson-dev libaio-dev libssl-dev libnbd-dev \
			 libfuse3-dev libiscsi-dev perl; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
				grep -q "ok installed" || missing+=("$p")
		done
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" \
			>/dev/null
	fi
fi
for c in python3 dd fincore findmnt numfmt; do
	command -v $c >/dev/null || die "$c is needed"
done
py() { python3 "$here/bench.py" "$@"; }

if [ -z "$build" ]; then
	r=$(git -C "$top" rev-parse --short "$rev") ||
		die "--rev $rev: not a revision of $top"
	build=/var/tmp/igw-bench-build-$r
fi
build=$(mkdir -p "$build" && cd "$build" && pwd)
if [ -f "$build/Makefile" ] &&
   { [ ! -x "$build/iscsi-gw" ] || [ ! -x "$build/bench/igw-load" ]; }; then
	# A configured build folder of yours: build what it is set up for.
	log "make in $build"
	make -C "$build" -j"$(nproc)" >"$build/bench-make.log" 2>&1 ||
		die "make in $build failed (see $build/bench-make.log)"
elif [ ! -x "$build/iscsi-gw" ] || [ ! -x "$build/bench/igw-load" ]; then
	# A clean clone: other people's half-done edits in the working tree
	# must not end up in the measured binary.
	log "building $rev of $top in $build (log: $build/build.log)"
	b_start=$(date +%s)
	rm -rf "$build/src"
	{
		git clone -q "$top" "$build/src" &&
		git -C "$build/src" checkout -q "$rev" &&
		(cd "$build/src" && autoreconf -fi) &&
		(cd "$build" && "$build/src/configure" -q) &&
		make -C "$build" -j"$(nproc)"
	} >"$build/build.log" 2>&1 || {
		tail -20 "$build/build.log" >&2
		die "the build of $rev failed (see $build/build.log); give a working build with --build DIR or a revision with --rev"
	}
	build_secs=$(($(date +%s) - b_start))
fi
GW=$build/iscsi-gw
LOAD=$build/bench/igw-load
if [ ! -x "$GW" ] || [ ! -x "$LOAD" ]; then
	die "$build has no iscsi-gw or bench/igw-load (was libiscsi-dev missing at configure time?)"
fi

# The revision the binaries were built from, from the build's source tree.
srcdir=$(sed -n "s/^srcdir='\(.*\)'$/\1/p" "$build/config.status" 2>/dev/null | head -1)
gw_rev=unknown
if [ -n "$srcdir" ] && git -C "$srcdir" rev-parse HEAD >/dev/null 2>&1; then
	gw_rev="$(git -C "$srcdir" log -1 --format='%h (%ad)' --date=short)"
	[ -z "$(git -C "$srcdir" status --porcelain --untracked-files=no)" ] ||
		gw_rev="$gw_rev with uncommitted changes"
fi

# ---------------------------------------------------------------------------
# Work folder and cleanup

mkdir -p "$parent"
W=$(mktemp -d "$parent/igw-bench.XXXXXX")
INFO=$W/info.tsv
REC=$W/records.jsonl
: >"$INFO"; : >"$REC"
GW_PID='' TGT_PID='' ISTGT_PID='' EVICTOR_PID='' TGT_CTL=''

# stop_pid PID SECONDS: SIGTERM, wait, then SIGKILL; only our children.
stop_pid() {
	local pid=$1 secs=$2 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_tgt() {
	[ -n "$TGT_PID" ] || return 0
	if kill -0 "$TGT_PID" 2>/dev/null; then
		# tgtd leaves on SIGTERM only once it serves nothing.
		tgtadm -C "$TGT_CTL" --op update --mode sys --name State \
			-v offline >/dev/null 2>&1 || true
		tgtadm -C "$TGT_CTL" --lld iscsi --op delete --mode target \
			--tid 1 --force >/dev/null 2>&1 || true
		tgtadm -C "$TGT_CTL" --op delete --mode system \
			>/dev/null 2>&1 || true
	fi
	stop_pid "$TGT_PID" 5
	TGT_PID=
	rm -f "/var/run/tgtd/socket.$TGT_CTL" "/var/run/tgtd/socket.$TGT_CTL.lock"
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	[ -n "$EVICTOR_PID" ] && { kill "$EVICTOR_PID" 2>/dev/null; wait "$EVICTOR_PID" 2>/dev/null; }
	stop_pid "$GW_PID" 15
	stop_tgt
	stop_pid "$ISTGT_PID" 15
	if $keep; then
		log "kept $W"
	else
		rm -rf "$W"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

info() { local IFS=$'\t'; printf '%s\n' "$*" >>"$INFO"; }

# ---------------------------------------------------------------------------
# 2. Backing file and targets

size_bytes=$(numfmt --from=iec "${size%B}")
size_mib=$((size_bytes >> 20))
[ $((size_mib << 20)) = "$size_bytes" ] || die "--size must be a whole number of MiB"
avail=$(df -B1 --output=avail "$W" | tail -1)
[ "$avail" -gt $((size_bytes + (1 << 30))) ] ||
	die "not enough space in $parent for a $size backing file"
DISK=$W/disk.img
log "writing the $size backing file $DISK"
dd if=/dev/urandom of="$DISK" bs=1M count="$size_mib" conv=fsync status=none

IQN=iqn.2026-11.org.example
wait_ready() {	# URL NAME PID: until the LUN answers READ CAPACITY(16)
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$3" 2>/dev/null || return 1
		iscsi-readcapacity16 "$1" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

declare -A URL PID
started=()
istgt_reason=
for t in ${targets//,/ }; do
	port=$(py free-port)
	case $t in
	igw)
		cat >"$W/map.json" <<EOF
{ "portals": ["127.0.0.1:$port"],
  "targets": [ { "name": "$IQN:igw",
                 "luns": [ { "lun": 0, "write_cache": true,
                             "backend": { "type": "file", "path": "$DISK" } } ] } ] }
EOF
		"$GW" serve --config "$W/map.json" >"$W/iscsi-gw.log" 2>&1 &
		GW_PID=$!
		PID[igw]=$GW_PID URL[igw]=iscsi://127.0.0.1:$port/$IQN:igw/0
		;;
	tgt)
		command -v tgtd >/dev/null || die "tgtd is missing (apt-get install tgt)"
		TGT_CTL=
		for ((i = 0; i < 50; i++)); do
			c=$((10000 + RANDOM % 22000))	# tgtd takes 0-32767
			[ -e "/var/run/tgtd/socket.$c" ] || { TGT_CTL=$c; break; }
		done
		[ -n "$TGT_CTL" ] || die "no free tgtd control port"
		tgtd -f -C "$TGT_CTL" --iscsi "portal=127.0.0.1:$port" \
			>"$W/tgtd.log" 2>&1 &
		TGT_PID=$!
		T="tgtadm -C $TGT_CTL --lld iscsi"
		for ((i = 0; i < 50; i++)); do
			$T --op show --mode target >/dev/null 2>&1 && break
			kill -0 $TGT_PID 2>/dev/null || break
			sleep 0.1
		done
		if ! { $T --op new --mode target --tid 1 -T "$IQN:tgt" &&
		       $T --op new --mode logicalunit --tid 1 --lun 1 -b "$DISK" &&
		       $T --op bind --mode target --tid 1 -I ALL; }; then
			cat "$W/tgtd.log" >&2
			die "tgtadm could not set up the target"
		fi
		# The iSCSI offers iscsi-gw makes by default (tgt's own defaults
		# are smaller: MaxRecvDataSegmentLength 8192, FirstBurstLength
		# 65536, MaxBurstLength 262144).
		for kv in MaxRecvDataSegmentLength=262144 \
			  MaxXmitDataSegmentLength=262144 \
			  MaxBurstLength=1048576 FirstBurstLength=262144 \
			  InitialR2T=No ImmediateData=Yes MaxOutstandingR2T=16 \
			  MaxQueueCmd=128; do
			$T --op update --mode target --tid 1 -n "${kv%%=*}" \
				-v "${kv#*=}" || die "tgtadm: cannot set $kv"
		done
		PID[tgt]=$TGT_PID URL[tgt]=iscsi://127.0.0.1:$port/$IQN:tgt/1
		;;
	istgt)
		if ! command -v istgt >/dev/null; then
			istgt_reason="istgt is not installed"
			continue
		fi
		printf '[AuthGroup1]\n  Comment "unused: no CHAP"\n' >"$W/istgt-auth.conf"
		cat >"$W/istgt.conf" <<EOF
# Generated by bench/run.sh; format of Debian's istgt 0.4
# (/usr/share/doc/istgt/examples/istgt.large.conf).
[Global]
  NodeBase "$IQN"
  PidFile $W/istgt.pid
  AuthFile $W/istgt-auth.conf
  MediaDirectory $W
  LogFacility "local7"
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 32
  MaxConnections 4
  MaxR2T 32
  MaxOutstandingR2T 16
  DefaultTime2Wait 2
  DefaultTime2Retain 60
  FirstBurstLength 262144
  MaxBurstLength 1048576
  MaxRecvDataSegmentLength 262144
  InitialR2T Yes
  ImmediateData Yes
  DataPDUInOrder Yes
  DataSequenceInOrder Yes
  ErrorRecoveryLevel 0
[UnitControl]
  AuthMethod None
[PortalGroup1]
  Portal DA1 127.0.0.1:$port
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.1
[LogicalUnit1]
  TargetName istgt
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest Auto
  UnitType Disk
  QueueDepth 128
  LUN0 Storage $DISK Auto
EOF
		istgt -D -c "$W/istgt.conf" -p "$W/istgt.pid" >"$W/istgt.log" 2>&1 &
		ISTGT_PID=$!
		PID[istgt]=$ISTGT_PID URL[istgt]=iscsi://127.0.0.1:$port/$IQN:istgt/0
		;;
	*) die "unknown target $t (igw, tgt, istgt)" ;;
	esac
	if wait_ready "${URL[$t]}" "$t" "${PID[$t]}"; then
		started+=("$t")
		log "$t: ${URL[$t]} (pid ${PID[$t]})"
	elif [ "$t" = istgt ]; then
		istgt_reason="istgt did not answer READ CAPACITY(16) on ${URL[$t]}; its log: $(tr '\n' ' ' <"$W/istgt.log" | cut -c1-400)"
		log "$istgt_reason"
		stop_pid "$ISTGT_PID" 15; ISTGT_PID=
	else
		cat "$W"/*.log >&2
		die "$t did not start"
	fi
done
[ ${#started[@]} -gt 0 ] || die "no target started"
info targets_run "${started[@]}"
[ -z "$istgt_reason" ] || info note "istgt was not measured: $istgt_reason"

# Wall-clock helpers without a process per call (python3 can take a
# second to start on a loaded machine).
now_us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }
secs_since() {	# START_US DIGITS
	local d=$(($(now_us) - $1))
	if [ "$2" = 3 ]; then
		printf '%d.%03d' $((d / 1000000)) $((d % 1000000 / 1000))
	else
		printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
	fi
}

# How long a session takes to set up and tear down on each target:
# igw-load with one read (connect, login, READ CAPACITY(16), READ, logout).
for t in "${started[@]}"; do
	vals=()
	for _ in 1 2 3; do
		t0=$(now_us)
		"$LOAD" --ios 1 --qd 1 "${URL[$t]}" >/dev/null 2>&1 || die "igw-load cannot use $t"
		vals+=("$(secs_since "$t0" 3)")
	done
	info session_setup "$t" "${vals[@]}"
done

# The page cache and the backing file, with small C tools only: GNU dd's
# nocache flag with count=0 drops the whole file's clean pages
# (posix_fadvise DONTNEED); sync -d writes the dirty ones back first.
drop_file_cache() { sync -d "$DISK"; dd if="$DISK" iflag=nocache count=0 status=none; }
resident_bytes() { fincore --bytes --noheadings --output RES "$DISK" 2>/dev/null || echo 0; }
warm_file_cache() {	# read the file unless all of it is cached already
	[ "$(resident_bytes)" -ge "$size_bytes" ] || cat "$DISK" >/dev/null
}
resident_pct() {
	local res
	res=$(fincore --bytes --noheadings --output RES "$DISK" 2>/dev/null) || { echo null; return; }
	echo $((res * 1000 / size_bytes)) | sed 's/\(.\)$/.\1/; s/^\./0./'
}

# ---------------------------------------------------------------------------
# 3. Ceilings

ceiling() {	# KEY LABEL CMD...: three runs, MiB/s each
	local key=$1 label=$2 v vals=()
	shift 2
	for _ in 1 2 3; do
		v=$("$@")
		vals+=("$v")
	done
	info ceiling "$key" "$label" "${vals[@]}"
	log "ceiling $key: ${vals[*]} MiB/s"
}
cold_read() { drop_file_cache; py fileread "$DISK" 1M; }
iperf() {
	local port spid
	port=$(py free-port)
	iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	spid=$!
	sleep 0.5
	iperf3 -c 127.0.0.1 -p "$port" -t "$iperf_secs" -l 1M -J |
		sed -n '/"sum_received"/,/}/s/^[[:space:]]*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' |
		head -1 | awk '{ printf "%.1f\n", $1 / 8 / 1048576 }'
	wait "$spid" || true
}
if $quick; then loop_bytes=$((2 << 30)) iperf_secs=1; else loop_bytes=$((8 << 30)) iperf_secs=5; fi
log "measuring the ceilings"
ceiling loopback "loopback TCP, one stream of $((loop_bytes >> 30)) GiB in 1 MiB sends (python, receiver in a second process)" \
	py loopback $loop_bytes
if command -v iperf3 >/dev/null; then
	ceiling loopback_iperf3 "loopback TCP, iperf3 -t $iperf_secs -l 1M (for comparison)" iperf
fi
warm_file_cache
ceiling file_warm_256k "backing file read with dd bs=256k from the page cache" \
	py fileread "$DISK" 256k
ceiling file_warm_1m "backing file read with dd bs=1M from the page cache" \
	py fileread "$DISK" 1M
ceiling file_cold "backing file read with dd bs=1M after dropping its pages (disk)" \
	cold_read
warm_file_cache

# ---------------------------------------------------------------------------
# 4. Workloads

if $quick; then
	sizes="4k 32k" ios1=5000 ios32=10000 secs=2 vios=1000 vsecs=1
else
	sizes="2k 4k 8k 16k 32k" ios1=50000 ios32=50000 secs=10 vios=10000 vsecs=3
fi
cap=120		# --seconds bound on an --ios run, in case a target stalls

# wl ID GROUP TITLE PREP LIMIT VRANGE ARGS...: PREP warm (read the file
# into the page cache before each run), cold (drop its pages before each
# run and every 0.1 s during it) or none; LIMIT the igw-load options
# that end a measured run; VRANGE the --range of the verify run.
WL=()
wl() {
	local id=$1 grp=$2 title=$3 pr=$4 lim=$5 vr=$6
	shift 6
	[ -z "$only" ] || grep -qE "$only" <<<"$id" || return 0
	WL+=("$id|$pr|$lim|$vr|$*")
	info workload "$id" "$grp" "$title" "$* $lim"
}
group() { info group "$@"; }

for p in rand seq; do
	for rw in read write; do
		pn=$([ $p = rand ] && echo random || echo sequential)
		group "micro-$p-$rw" "Micro-benchmark: $pn ${rw}s" \
			"The paper's micro-benchmark: $pn ${rw}s over the whole LUN, one session; $ios1 IOs a run at QD1, $ios32 at QD32."
		for bs in $sizes; do
			for qd in 1 32; do
				n=$([ $qd = 1 ] && echo $ios1 || echo $ios32)
				wl "$p-$rw-$bs-qd$qd" "micro-$p-$rw" "$bs QD$qd" \
					none "--ios $n" 32M \
					--pattern $p --rw $rw --bs "$bs" --qd $qd
			done
		done
	done
done
group throughput "Sequential read throughput" \
	"Sequential reads from the page cache (the file is read before each run), QD32, one session, $secs s a run."
wl seq-read-128k throughput "128k seq read QD32" warm "--seconds $secs" 64M \
	--pattern seq --rw read --bs 128k --qd 32
wl seq-read-256k throughput "256k seq read QD32" warm "--seconds $secs" 64M \
	--pattern seq --rw read --bs 256k --qd 32
group mixed "Mixed load and many sessions" \
	"A 70/30 random 4 KB read/write mix at QD32 on one session, and 4 KB random reads over 16 sessions with 2 in flight each (32 in all, as in the QD32 micro-benchmark); $ios32 IOs a run."
wl mix-4k-qd32 mixed "4k 70/30 mix QD32" none "--ios $ios32" 32M \
	--pattern rand --rw mix --read-pct 70 --bs 4k --qd 32
wl sessions16-4k mixed "4k rand read, 16 sessions x QD2" none "--ios $ios32" 32M \
	--pattern rand --rw read --bs 4k --sessions 16 --qd 2
group netserver "Network-server benchmark (2 MB extents)" \
	"2 MB reads of random extents of the $size file, 4 sessions x 8 in flight, $secs s a run. *fits*: the file is read into the page cache before each run. *does not fit*: its pages are dropped before the run and every 0.1 s during it (sync -d, then dd iflag=nocache count=0, which is posix_fadvise DONTNEED on the backing file only: the machine-wide /proc/sys/vm/drop_caches would disturb the other users of this shared machine), which emulates a cache much smaller than the working set. *resident before*: the share of the file in the page cache before the run (fincore). *page-cache hit*: 1 - (bytes the target process read from the disk, /proc/PID/io read_bytes, which includes readahead) / (bytes of the measured reads); the commands still in flight at the end are left out of the denominator, so it is a lower bound."
wl netsrv-fit netserver "2M rand read, fits in cache" warm "--seconds $secs" 128M \
	--pattern rand --rw read --bs 2M --sessions 4 --qd 8
wl netsrv-nofit netserver "2M rand read, does not fit" cold "--seconds $secs" 128M \
	--pattern rand --rw read --bs 2M --sessions 4 --qd 8

io_read_bytes() {
	local v
	v=$(sed -n 's/^read_bytes: //p' "/proc/$1/io" 2>/dev/null)
	echo "${v:-null}"
}

# json_num JSON KEY: the first number under KEY in igw-load's report
# (KEY is a regular expression).
json_num() {
	local re="\"$2\":([0-9.]+)"
	if [[ $1 =~ $re ]]; then echo "${BASH_REMATCH[1]}"; else echo "?"; fi
}

# run_one TARGET ID REP VERIFY PREP ARGS...: one igw-load run, one record.
run_one() {
	local t=$1 id=$2 rep=$3 verify=$4 pr=$5 rc=0 rb0 rb1 res=null js wall t0
	shift 5
	local pid=${PID[$t]}
	kill -0 "$pid" 2>/dev/null || die "$t (pid $pid) is gone; see its log in $W"
	case $pr in
	warm) warm_file_cache ;;
	cold) drop_file_cache ;;
	esac
	[ "$pr" = none ] || res=$(resident_pct)
	if [ "$pr" = cold ]; then
		(
			trap 'exit 0' TERM
			while :; do
				dd if="$DISK" iflag=nocache count=0 status=none
				sleep 0.1
			done
		) &
		EVICTOR_PID=$!
	fi
	rb0=$(io_read_bytes "$pid")
	t0=$(now_us)
	"$LOAD" --json --target-pid "$pid" "$@" "${URL[$t]}" \
		>"$W/out.json" 2>"$W/err.txt" || rc=$?
	wall=$(secs_since "$t0" 2)
	rb1=$(io_read_bytes "$pid")
	if [ -n "$EVICTOR_PID" ]; then
		kill "$EVICTOR_PID" 2>/dev/null || true
		wait "$EVICTOR_PID" 2>/dev/null || true
		EVICTOR_PID=
	fi
	js=$(cat "$W/out.json")
	[ -n "$js" ] || js=null
	if [ $rc -ne 0 ]; then
		log "$t $id rep $rep: igw-load exited $rc: $(head -c 600 "$W/err.txt")"
		cat "$W/err.txt" >>"$W/igw-load-errors.txt"
	fi
	local d=null
	[ "$rb0" != null ] && [ "$rb1" != null ] && d=$((rb1 - rb0))
	printf '{"wl":"%s","target":"%s","rep":%d,"verify":%s,"rc":%d,"wall_s":%s,"io_read_bytes":%s,"resident_pct":%s,"r":%s}\n' \
		"$id" "$t" "$rep" "$verify" "$rc" "$wall" "$d" "$res" "$js" >>"$REC"
	local what="rep $rep"
	$verify && what="verify: $(json_num "$js" verify_failures) failures, $(json_num "$js" verified_units) units"
	printf '  %-6s %s (%s s): %s IOPS, %s MiB/s, p50 %s us, target %s us/IO\n' \
		"$t" "$what" "$wall" "$(json_num "$js" iops)" "$(json_num "$js" mib_s)" \
		"$(json_num "$js" p50)" "$(json_num "$js" 'target_cpu":\{[^}]*"us_per_io')" >&2
}

nt=${#started[@]}
total=${#WL[@]}
# The verify runs: on every target, or with --quick on iscsi-gw only
# (istgt's second per login makes them slow).
vtargets=("${started[@]}")
if $quick && [[ " ${started[*]} " == *" igw "* ]]; then vtargets=(igw); fi
n=0
for w in "${WL[@]}"; do
	IFS='|' read -r id pr lim vr args <<<"$w"
	n=$((n + 1))
	log "workload $n/$total: $id: $args $lim"
	[[ $lim == --ios* ]] && lim="$lim --seconds $cap"
	for ((rep = 1; rep <= reps; rep++)); do
		for ((k = 0; k < nt; k++)); do
			t=${started[$(((k + rep - 1) % nt))]}
			# shellcheck disable=SC2086
			run_one "$t" "$id" "$rep" false "$pr" $lim $args
		done
	done
	if [[ $lim == --ios* ]]; then vlim="--ios $vios --seconds $cap"; else vlim="--seconds $vsecs"; fi
	for t in "${vtargets[@]}"; do
		# shellcheck disable=SC2086
		run_one "$t" "$id" 0 true none $vlim --verify --range $vr $args
	done
done

# ---------------------------------------------------------------------------
# 5. Report

stop_pid "$GW_PID" 15; GW_PID=
stop_tgt
stop_pid "$ISTGT_PID" 15; ISTGT_PID=

t_end=$(date +%s)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
info machine "processors (nproc): $(nproc); CPU: ${cpu_model:-unknown}"
# shellcheck disable=SC1091
info machine "kernel: $(uname -srm); OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
info machine "memory: $mem"
info machine "backing file system: $(findmnt -n -o FSTYPE,SOURCE -T "$W" | tr -s ' ')"
info machine "iscsi-gw: $("$GW" --version 2>&1 | head -1), git $gw_rev, built in $build"
info machine "tgt (Debian): $(ver tgt); istgt (Debian): $(ver istgt); libiscsi (Debian libiscsi7): $(ver libiscsi7)"
info command "$cmdline"
info reps "$reps"
info run_note "Started $(date -u -d @"$t_start" '+%Y-%m-%d %H:%M:%S UTC'), took $(((t_end - t_start) / 60)) min $(((t_end - t_start) % 60)) s$([ "$build_secs" -gt 0 ] && echo ", of which $build_secs s building iscsi-gw" || echo " (no build: the binaries were there)")."
info run_note "Mode: $($quick && echo quick || echo full): IO sizes $sizes; $ios1 IOs a run at QD1, $ios32 at QD32 (micro-benchmark, 70/30 mix, 16 sessions); $secs s a throughput and 2 MB run; $reps repetitions of each, the order of the targets rotating each repetition; the tables give medians."
info run_note "Then one run per workload on $( [ ${#vtargets[@]} = 1 ] && echo "iscsi-gw (--quick; a full run verifies every target)" || echo "each target") with igw-load --verify on the first 32 MiB of the LUN (64 MiB for 128k/256k, 128 MiB for 2 MB extents), $vios IOs or $vsecs s: not in the medians."
info setup "Backing file: $size of /dev/urandom data (dd, conv=fsync), written before the run, so that a page-cache miss reads the disk; the same file for all targets, each running the whole time on its own loopback port, only one under load at a time."
logline() { [ -f "$W/$1" ] && grep -m1 -o "$2" "$W/$1" || echo "not in its log"; }
info setup "iscsi-gw: 'iscsi-gw serve' with a map of one LUN, file backend, write_cache true (its log: '$(logline iscsi-gw.log 'LUN 0: .*')'); tgt and istgt also acknowledge writes from the page cache by default: tgt's default caching mode page (sbc.c) has WCE set and its rdwr backing store syncs only on FUA or with WCE off; istgt's log: '$(logline istgt.log 'LUN0 read cache.*')'. Other iscsi-gw settings are the defaults (io_threads 16, queue_depth 128)."
info setup "tgt: 'tgtd -f -C PORT --iscsi portal=127.0.0.1:PORT', a target with the file as backing-store LUN 1 (rdwr; its log: '$(logline tgtd.log 'bs_thread_open.*')' IO threads), bound to ALL, with the iSCSI offers set to iscsi-gw's defaults: MaxRecvDataSegmentLength and MaxXmitDataSegmentLength 262144, MaxBurstLength 1048576, FirstBurstLength 262144, InitialR2T No, ImmediateData Yes, MaxOutstandingR2T 16, MaxQueueCmd 128."
info setup "istgt: 'istgt -D -c istgt.conf' with a generated istgt.conf (LUN0 Storage FILE Auto, QueueDepth 128, MaxRecvDataSegmentLength 262144, FirstBurstLength 262144, MaxBurstLength 1048576; InitialR2T Yes: istgt's example configuration marks InitialR2T 'not supported'); its log: '$(logline istgt.log 'LUN0 command queuing.*')'."
info setup "Load: bench/igw-load (libiscsi $(ver libiscsi7) async API, one thread) on the same $(nproc)-processor machine, so the load generator and the target compete for the CPUs. CPU us/IO: the target process's utime+stime (all its threads) from /proc/PID/stat over the measured part of the run, divided by the IOs completed in it (igw-load --target-pid; the kernel counts it in ticks of 1/$(getconf CLK_TCK) s)."
$quick && info note "A --quick run: runs of a fraction of a second to 2 s, so its figures are rougher than a full run's (bench/run.sh without --quick)."
info note "Latencies are igw-load's: from handing the command to libiscsi to its completion callback, so they include the initiator's own queueing and CPU time."

if py report "$W" "$out"; then
	log "wrote $out ($(((t_end - t_start) / 60)) min $(((t_end - t_start) % 60)) s)"
else
	keep=true
	die "the report failed; the records are in $W"
fi
