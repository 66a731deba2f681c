#!/usr/bin/env bash
# Writes a busybox-static root file tree as a tar (for `pallet import`): /bin/busybox, one
# symlink per applet, /etc/passwd and /etc/group with root and an `app` user, /tmp.
# Usage: make-busybox-rootfs.sh OUT.tar
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUT.tar}
[ -x /bin/busybox ] || { echo "/bin/busybox missing: apt-get install busybox-static" >&2; exit 1; }
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{bin,etc,root,home/app,tmp}
chmod 1777 "$tree/tmp"
cp /bin/busybox "$tree/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$tree/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$tree/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' > "$tree/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$tree" -cf "$out" .
