#!/bin/bash
# libiscsi's command line tools against the real daemon: discovery and LUN
# listing (iscsi-ls), INQUIRY and VPD pages (iscsi-inq), capacity
# (iscsi-readcapacity16) on a 512-byte file LUN and a thin 4096-byte memory
# LUN, and the acl (an unlisted initiator is refused).
source "$(dirname "$0")/functions.sh"
requires iscsi-ls --help
requires iscsi-inq --help

port=$(free_port)
cat > "$TMP/map.json" <<EOM
{ "portals": ["127.0.0.1:$port"],
  "targets": [
    { "name": "$TARGET", "alias": "test disk",
      "luns": [ { "lun": 0, "backend": { "type": "file", "path": "lun0.img", "size": "64M" } },
                { "lun": 3, "backend": { "type": "memory", "size": "32M" },
                  "block_size": 4096, "thin": true, "write_cache": true, "serial": "SER123" } ] },
    { "name": "iqn.2026-11.org.example:private",
      "acl": [ "iqn.2026-11.org.example:allowed" ],
      "luns": [ { "lun": 0, "backend": { "type": "memory", "size": "1M" } } ] } ] }
EOM
start_gw "$TMP/map.json"
[ -f "$TMP/lun0.img" ] || fail "relative path not created next to the map"
[ "$(stat -c %s "$TMP/lun0.img")" = 67108864 ] || fail "file size"
[ "$(stat -c %b "$TMP/lun0.img")" -lt 100 ] || fail "file is not sparse"

url=iscsi://127.0.0.1:$port
out=$(iscsi-ls -s $url/) || fail "iscsi-ls"
echo "$out"
echo "$out" | grep -q "Target:$TARGET Portal:127.0.0.1:$port,1" || fail "target not listed"
echo "$out" | grep -q "Lun:0 .*Size:64M\|Lun:0.*67108864\|Lun:0" || fail "LUN 0 not listed"
echo "$out" | grep -q "Lun:3" || fail "LUN 3 not listed"
# The private target is shown only to its initiator.
echo "$out" | grep -q "example:private" && fail "acl target shown to an unlisted initiator"
iscsi-ls -i iqn.2026-11.org.example:allowed $url/ | grep -q "example:private" || fail "acl target hidden from its initiator"

inq=$(iscsi-inq $url/$TARGET/0) || fail "iscsi-inq"
echo "$inq" | grep -q "DIRECT_ACCESS" || fail "device type"
echo "$inq" | grep -q "ISCSI-GW" || fail "vendor"
iscsi-inq -e 1 -c 128 $url/$TARGET/3 | grep -q SER123 || fail "serial VPD"
iscsi-inq -e 1 -c 131 $url/$TARGET/0 | tee "$TMP/vpd83" | grep -q "NAA" || fail "VPD 83 NAA"
iscsi-inq -e 1 -c 131 $url/$TARGET/0 | cmp -s - "$TMP/vpd83" || fail "VPD 83 not stable"
iscsi-inq -e 1 -c 178 $url/$TARGET/3 | grep -q "lbpu:1" || fail "VPD B2 on thin LUN"

rc=$(iscsi-readcapacity16 $url/$TARGET/0) || fail "readcapacity16"
echo "$rc" | grep -q "LOGICAL BLOCK LENGTH IN BYTES:512" || fail "block size 512"
echo "$rc" | grep -q "RETURNED LOGICAL BLOCK ADDRESS:131071" || fail "last LBA"
echo "$rc" | grep -q "LBPME:0" || fail "thick LUN has LBPME"
echo "$rc" | grep -q "PHYSICAL BLOCK EXPONENT:0" || fail "a file LUN through the page cache reports a physical block"
rc=$(iscsi-readcapacity16 $url/$TARGET/3) || fail "readcapacity16 lun 3"
echo "$rc" | grep -q "LOGICAL BLOCK LENGTH IN BYTES:4096" || fail "block size 4096"
echo "$rc" | grep -q "LBPME:1" || fail "thin LUN lacks LBPME"

# A LUN that does not exist, a target that does not exist, the acl.
iscsi-inq $url/$TARGET/7 >/dev/null 2>&1 && fail "LUN 7 answered INQUIRY as if it existed"
iscsi-inq $url/iqn.2026-11.org.example:nosuch/0 >/dev/null 2>&1 && fail "unknown target accepted"
iscsi-inq $url/iqn.2026-11.org.example:private/0 >/dev/null 2>&1 && fail "acl let an unlisted initiator in"
iscsi-inq -i iqn.2026-11.org.example:allowed $url/iqn.2026-11.org.example:private/0 >/dev/null || fail "acl refused its initiator"
grep -q "login refused (status 0x0202" "$GW_LOG" || fail "no log line for the acl refusal"
grep -q "login refused (status 0x0203" "$GW_LOG" || fail "no log line for the unknown target"
stop_gw
