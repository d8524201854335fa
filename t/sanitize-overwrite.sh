#!/bin/bash
# SANITIZE OVERWRITE on the wire: libiscsi's Sanitize suites that need it
# (Overwrite, OverwriteReserved) with ExitFailureMode and
# InvalidServiceAction, on memory LUNs with "lock" (the only LUNs that
# offer OVERWRITE: their data is never in swap), one with 512-byte and a
# thin one with 4096-byte blocks (BlockErase and BlockEraseReserved run
# there too).  None may fail or skip.  Sanitize.Reset is left out: it
# wants an OVERWRITE still running four seconds after it started, and
# 64 MiB of RAM is overwritten in milliseconds (README, Conformance).
# Locking the two (128 MiB) needs CAP_IPC_LOCK or a memlock limit that
# large.
source "$(dirname "$0")/functions.sh"
requires iscsi-test-cu --list
requires python3 --version
[ "$(id -u)" = 0 ] || [ "$(ulimit -l)" = unlimited ] || [ "$(ulimit -l)" -ge 131072 ] ||
	{ echo "SKIP: locking 128 MiB needs root or ulimit -l 131072"; exit 77; }

port=$(free_port)
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "memory", "size": "64M", "lock": true } },
  { "lun": 1, "backend": { "type": "memory", "size": "64M", "lock": true },
    "block_size": 4096, "thin": true }'
start_gw "$TMP/map.json"
for lun in 0 1; do
	url=iscsi://127.0.0.1:$port/$TARGET/$lun
	: >"$TMP/cu$lun.log"
	tests="Overwrite OverwriteReserved ExitFailureMode InvalidServiceAction"
	[ $lun = 1 ] && tests="$tests BlockErase BlockEraseReserved"
	for t in $tests; do
		timeout 300 iscsi-test-cu -d -S -v -t "ALL.Sanitize.$t" "$url" "$url" \
			>>"$TMP/cu$lun.log" 2>&1
	done
	score=$(python3 "$CU_SCORE" "$TMP/cu$lun.log" | head -1)
	echo "LUN $lun: $score"
	n=$(echo $tests | wc -w)
	[ "$score" = "tests $n: passed $n, skipped 0, failed 0" ] ||
		{ cat "$TMP/cu$lun.log"; fail "LUN $lun: $score"; }
done
# The overwrites were done, and took as long as the log says.
grep -q "SANITIZE OVERWRITE done: every block overwritten" "$GW_LOG" ||
	fail "no OVERWRITE completed"
grep "SANITIZE OVERWRITE" "$GW_LOG" | tail -2
stop_gw
