#!/bin/bash
# iscsi-test-cu, the suites the foundation must pass on a 512-byte file
# LUN: Inquiry, ReadCapacity10/16, Read6/10/12/16, Write10/12/16,
# TestUnitReady, Mandatory, iSCSIcmdsn, iSCSIdatasn, iSCSIResiduals and
# iSCSITMF.  Asserts no test failed (cu-score counts a test whose verdict is
# missing, a crash or a hang, as failed) and that some passed.
source "$(dirname "$0")/functions.sh"
requires iscsi-test-cu --list
requires python3 --version

port=$(free_port)
write_map "$TMP/map.json" $port '{ "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "64M" } }'
start_gw "$TMP/map.json"
url=iscsi://127.0.0.1:$port/$TARGET/0
: > "$TMP/cu.log"
for s in SCSI.Inquiry SCSI.ReadCapacity10 SCSI.ReadCapacity16 SCSI.Read6 \
	 SCSI.Read10 SCSI.Read12 SCSI.Read16 SCSI.Write10 SCSI.Write12 \
	 SCSI.Write16 SCSI.TestUnitReady SCSI.Mandatory iSCSI.iSCSIcmdsn \
	 iSCSI.iSCSIdatasn iSCSI.iSCSIResiduals iSCSI.iSCSITMF; do
	timeout 300 iscsi-test-cu -d -v -t "$s" "$url" >>"$TMP/cu.log" 2>&1
done
summary=$(python3 "$CU_SCORE" "$TMP/cu.log")
echo "$summary"
python3 "$CU_SCORE" "$TMP/cu.log" --list failed
python3 "$CU_SCORE" "$TMP/cu.log" --list skipped | sed 's/^/skipped: /'
failed=$(echo "$summary" | sed -nE 's/.*failed ([0-9]+).*/\1/p')
passed=$(echo "$summary" | sed -nE 's/.*passed ([0-9]+).*/\1/p')
[ "$failed" = 0 ] || fail "$failed iscsi-test-cu tests failed"
[ "${passed:-0}" -ge 60 ] || fail "only ${passed:-0} tests passed"
stop_gw
