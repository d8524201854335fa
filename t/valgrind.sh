#!/bin/bash
# Memory checks under valgrind (memcheck, full leak check): every unit
# test, then the daemon itself serving a short real workload (discovery,
# INQUIRY, a qemu-img round trip, a few iscsi-test-cu suites) and stopping
# on SIGTERM.  Any error or definite leak fails the test.
source "$(dirname "$0")/functions.sh"
requires valgrind --version

VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9"
for u in "$BUILDDIR"/t/unit/test-*; do
	[ -x "$u" ] || continue
	$VG "$u" >"$TMP/unit.log" 2>&1 || { tail -30 "$TMP/unit.log"; fail "valgrind: $(basename "$u")"; }
	echo "ok: $(basename "$u") clean"
done

port=$(free_port)
# LUN 2 reads and writes the async way (O_DIRECT and libaio), where the
# file system has O_DIRECT.
direct=
luns=1
if direct_ok; then
	direct=',
  { "lun": 2, "backend": { "type": "file", "path": "lun2.img", "size": "16M", "direct": true } }'
	luns="1 2"
fi
write_map "$TMP/map.json" $port '
  { "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "16M" } },
  { "lun": 1, "backend": { "type": "memory", "size": "16M" }, "block_size": 4096, "thin": true }'"$direct"
GW_LOG=$TMP/vg.log
$VG --log-file="$TMP/vg-report.log" "$ISCSI_GW" serve --config "$TMP/map.json" >"$GW_LOG" 2>&1 &
GW_PID=$!
cleanup_fn "stop_gw_quiet $GW_PID"
for i in $(seq 200); do grep -q "listening on" "$GW_LOG" && break; sleep 0.1; done
grep -q "listening on" "$GW_LOG" || { cat "$GW_LOG"; fail "daemon under valgrind did not start"; }
url=iscsi://127.0.0.1:$port
if command -v iscsi-ls >/dev/null; then
	iscsi-ls -s $url/ >/dev/null || fail "iscsi-ls"
	iscsi-inq $url/$TARGET/0 >/dev/null || fail "iscsi-inq"
fi
if command -v qemu-img >/dev/null && qemu-img --help | grep -q "Supported formats:.*iscsi"; then
	head -c 4194304 /dev/urandom > "$TMP/in.raw"
	for lun in $luns; do
		qemu-img convert -n -f raw -O raw "$TMP/in.raw" $url/$TARGET/$lun || fail "qemu-img in ($lun)"
		qemu-img convert -f raw -O raw $url/$TARGET/$lun "$TMP/out.raw" || fail "qemu-img out ($lun)"
		head -c 4194304 "$TMP/out.raw" | cmp - "$TMP/in.raw" || fail "data differs ($lun)"
	done
fi
if command -v iscsi-test-cu >/dev/null; then
	for s in SCSI.Read10 SCSI.Write10 SCSI.WriteSame16 SCSI.Unmap iSCSI.iSCSITMF iSCSI.iSCSIResiduals; do
		iscsi-test-cu -d -t $s $url/$TARGET/1 >>"$TMP/cu.log" 2>&1
	done
	if [ -n "$direct" ]; then
		for s in SCSI.Read10 SCSI.Write10 iSCSI.iSCSITMF; do
			iscsi-test-cu -d -t $s $url/$TARGET/2 >>"$TMP/cu.log" 2>&1
		done
	fi
fi
kill -TERM $GW_PID
for i in $(seq 300); do kill -0 $GW_PID 2>/dev/null || break; sleep 0.1; done
wait $GW_PID; rc=$?
if [ -s "$TMP/vg-report.log" ]; then
	cat "$TMP/vg-report.log"
	fail "valgrind reported errors in the daemon"
fi
[ $rc = 0 ] || { tail "$GW_LOG"; fail "daemon exit status $rc"; }
echo "ok: daemon clean under valgrind"
