#!/bin/bash
# The full iscsi-test-cu run (ALL, with --dataloss and --sanitize and a
# second URL for the multipath tests) against four LUN flavours of one
# gateway, merged with cu-union: a thick 512-byte file LUN (O_DIRECT and
# libaio where the file system has O_DIRECT), a thin file
# LUN with write_cache, a thin 4096-byte memory LUN and a read_only LUN
# with removable media, an install image as an admin would present it
# (its --dataloss run is limited to the suites that read, PreventAllow,
# StartStopUnit and NoMedia: see below).
# Asserts 0 failed in the merged result and in each flavour, and no skip
# in the merged result but the ten the README names; the counts
# go to the log (t/run-tests.sh keeps it in test-logs/cu-all.log).
source "$(dirname "$0")/functions.sh"
requires iscsi-test-cu --list
requires python3 --version

port=$(free_port)
truncate -s 32M "$TMP/golden.img"
printf 'golden' | dd of="$TMP/golden.img" conv=notrunc status=none
# The thick LUN is O_DIRECT where the file system has it: its aligned
# reads and writes then go the async way (libaio), the others bounce.
direct=false
direct_ok && direct=true
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "thick.img", "size": "128M",
                           "direct": '$direct' } },
  { "lun": 1, "backend": { "type": "file", "path": "thin.img", "size": "128M" },
    "thin": true, "write_cache": true },
  { "lun": 2, "backend": { "type": "memory", "size": "128M" },
    "block_size": 4096, "thin": true },
  { "lun": 3, "backend": { "type": "file", "path": "golden.img" }, "read_only": true,
    "removable": true }'
start_gw "$TMP/map.json"
logs=()
bad=0
for lun in 0 1 2 3; do
	url=iscsi://127.0.0.1:$port/$TARGET/$lun
	if [ $lun = 3 ]; then
		# On the read-only LUN the suites that write would only
		# measure that writes are refused (the ReadOnly suite checks
		# exactly that): it runs the suites that read, and those of
		# its removable medium (PreventAllow, NoMedia, StartStopUnit).
		: >"$TMP/cu$lun.log"
		for s in ReadOnly Inquiry ReadCapacity10 ReadCapacity16 Read6 \
			 Read10 Read12 Read16 TestUnitReady ModeSense6 \
			 ReportSupportedOpcodes Verify10 Verify12 Verify16 \
			 Prefetch10 Prefetch16 PrinReadKeys PrinServiceactionRange \
			 PrinReportCapabilities StartStopUnit GetLBAStatus \
			 ReadDefectData10 ReadDefectData12 PreventAllow NoMedia; do
			timeout 300 iscsi-test-cu -d -v -t "ALL.$s" "$url" "$url" >>"$TMP/cu$lun.log" 2>&1
		done
	else
		timeout 900 iscsi-test-cu -d -S -v -t ALL "$url" "$url" >"$TMP/cu$lun.log" 2>&1
	fi
	echo "LUN $lun: $(python3 "$CU_SCORE" "$TMP/cu$lun.log" | head -1)"
	f=$(python3 "$CU_SCORE" "$TMP/cu$lun.log" --list failed)
	[ -z "$f" ] || { echo "LUN $lun failed: $f"; bad=1; }
	logs+=("$TMP/cu$lun.log")
done
union=$(python3 "$CU_UNION" "${logs[@]}")
echo "merged: $union"
mf=$(echo "$union" | sed -n 's/^failed: //p')
[ -z "$mf" ] || fail "merged run has failures: $mf"
# What may stay skipped, each for the reason the README's Conformance
# section gives; a test that starts to skip fails the run.
expected_skips="CompareAndWrite.InvalidDataOutSize Sanitize.CryptoErase
Sanitize.Overwrite Sanitize.Readonly Sanitize.Reservations Sanitize.Reset
WriteSame10.InvalidDataOutSize WriteSame10.UnmapUnaligned
WriteSame16.InvalidDataOutSize WriteSame16.UnmapUnaligned"
ms=$(echo "$union" | sed -n 's/^skipped: //p' | tr ' ' '\n' | grep -v '^$' | sort)
extra=$(comm -23 <(echo "$ms") <(echo $expected_skips | tr ' ' '\n' | sort))
[ -z "$extra" ] || fail "merged run skips what it should not: $extra"
[ $bad = 0 ] || fail "a flavour has failures"
# The read-only LUN's backing file is untouched.
[ "$(head -c 6 "$TMP/golden.img")" = golden ] || fail "read_only LUN was written"
stop_gw
