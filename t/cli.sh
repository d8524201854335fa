#!/bin/bash
# The command line: --version, --help, check on good and bad maps (exit
# status and the JSON pointer in the message), serve refusing a bad map.
# Does not check serving itself (other tests do).
source "$(dirname "$0")/functions.sh"

"$ISCSI_GW" --version | grep -E '^iscsi-gw [0-9]+\.[0-9]+' || fail "--version"
"$ISCSI_GW" --help | grep -q "iscsi-gw serve" || fail "--help"
"$ISCSI_GW" bogus >/dev/null 2>&1 && fail "unknown command accepted"
"$ISCSI_GW" check >/dev/null 2>&1 && fail "check without --config accepted"

write_map "$TMP/good.json" 3260 '{ "lun": 0, "backend": { "type": "memory", "size": "1M" } }'
"$ISCSI_GW" check --config "$TMP/good.json" | grep -q OK || fail "good map refused"
"$ISCSI_GW" check --config "$SRCDIR/etc/iscsi-gw.json" >/dev/null || fail "etc/iscsi-gw.json refused"
"$ISCSI_GW" check --config "$SRCDIR/etc/minimal.json" >/dev/null || fail "etc/minimal.json refused"
"$ISCSI_GW" check --config "$SRCDIR/etc/per-initiator.json" >/dev/null || fail "etc/per-initiator.json refused"

# bad_map POINTER JSON-LUNS [TOP]: check must fail naming POINTER.
bad_map() {
	local ptr=$1 luns=$2 top=${3:-}
	write_map "$TMP/bad.json" 3260 "$luns" "$top"
	out=$("$ISCSI_GW" check --config "$TMP/bad.json" 2>&1) && fail "accepted bad map for $ptr"
	echo "$out" | grep -qF -- "$ptr" || fail "message for $ptr does not name it: $out"
	echo "refused: $out"
}
bad_map /targets/0/luns/0/backend/size '{ "lun": 0, "backend": { "type": "memory", "size": "12Q" } }'
bad_map /targets/0/luns/0/lun '{ "lun": 16384, "backend": { "type": "memory", "size": "1M" } }'
bad_map /targets/0/luns/0/block_size '{ "lun": 0, "block_size": 1000, "backend": { "type": "memory", "size": "1M" } }'
bad_map /targets/0/luns/0/backend '{ "lun": 0, "backend": { "type": "floppy" } }'
bad_map /targets/0/luns/0/backend/colour '{ "lun": 0, "backend": { "type": "file", "path": "x", "colour": "red" } }'
bad_map /targets/0/luns/1/lun '{ "lun": 0, "backend": { "type": "memory", "size": "1M" } }, { "lun": 0, "backend": { "type": "memory", "size": "1M" } }'
bad_map /iscsi/queue_depth '{ "lun": 0, "backend": { "type": "memory", "size": "1M" } }' '"iscsi": { "queue_depth": 0 }'
echo '{ "portals": ["nope"], "targets": [] }' > "$TMP/bad2.json"
"$ISCSI_GW" check --config "$TMP/bad2.json" 2>&1 | grep -q "/portals/0" || fail "bad portal not named"
echo '{ "portals": ["127.0.0.1:3260"], "targets": [ { "name": "IQN.BAD", "luns": [] } ] }' > "$TMP/bad3.json"
"$ISCSI_GW" check --config "$TMP/bad3.json" 2>&1 | grep -q "/targets/0/name" || fail "bad name not named"
echo '{ "portals": [' > "$TMP/bad4.json"
"$ISCSI_GW" check --config "$TMP/bad4.json" 2>&1 | grep -qE "bad4.json:[0-9]+:[0-9]+" || fail "JSON syntax error without line:column"
"$ISCSI_GW" check --config "$TMP/missing.json" >/dev/null 2>&1 && fail "missing file accepted"

# serve refuses a bad map and does not listen.
port=$(free_port)
write_map "$TMP/bad5.json" $port '{ "lun": 0, "backend": { "type": "file", "path": "'$TMP'/nonexistent.img" } }'
timeout 10 "$ISCSI_GW" serve --config "$TMP/bad5.json" >"$TMP/serve.log" 2>&1 && fail "serve accepted a map whose file does not exist"
grep -q "does not exist" "$TMP/serve.log" || { cat "$TMP/serve.log"; fail "no clear message for the missing file"; }
exit 0
