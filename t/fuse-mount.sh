#!/bin/bash
# `iscsi-gw mount DIR`: a running daemon whose map has no fuse_mount
# mounts its FUSE view on request (through the control socket); a second
# request is refused while the view is mounted; the view shows the LUN's
# bytes; shutdown unmounts it.
source "$(dirname "$0")/functions.sh"
requires_fuse_view

port=$(free_port)
cd "$TMP"
head -c 1048576 /dev/urandom > lun0.img
write_map "$TMP/map.json" $port \
  '{ "lun": 0, "backend": { "type": "file", "path": "lun0.img" } }' '"control_socket": "ctl.sock"'
cleanup_fn "grep -qF ' $TMP/later ' /proc/mounts && umount -l '$TMP/later'"
start_gw "$TMP/map.json"
out=$("$ISCSI_GW" mount --config map.json later 2>&1) || fail "mount: $out"
grep -q "FUSE view mounted on $TMP/later" <<<"$out" || fail "mount says: $out"
grep -qF " $TMP/later fuse" /proc/mounts || fail "nothing mounted"
cmp "$TMP/later/$TARGET/lun0" lun0.img || fail "the view's lun0 differs from the backing file"
"$ISCSI_GW" mount --config map.json elsewhere 2>err.txt && fail "a second mount was accepted"
grep -q "already mounted on $TMP/later" err.txt || fail "unclear: $(cat err.txt)"
"$ISCSI_GW" mount --config map.json 2>/dev/null; [ $? = 2 ] || fail "mount without a folder: not a usage error"
stop_gw
grep -qF " $TMP/later " /proc/mounts && fail "the view outlived the daemon"
note "ok"
