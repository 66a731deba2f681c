#!/usr/bin/env bash
# Makes the build context of pallet's CI image (ci/image/Dockerfile) in DEST:
#   rootfs/usr/local/bin/pallet      the binary given (default: target/release/pallet)
#   rootfs/usr/local/bin/runc        runc from PATH, when there is one
#   rootfs/lib..., rootfs/usr/lib... the shared libraries both link, as ldd lists them
#   rootfs/etc/ssl/certs/ca-certificates.crt
# Usage: ci/image/context.sh DEST [PALLET_BINARY]
set -euo pipefail
dest=${1:?usage: context.sh DEST [PALLET_BINARY]}
bin=${2:-target/release/pallet}
root="$dest/rootfs"
rm -rf "$dest"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs"
install -m 755 "$bin" "$root/usr/local/bin/pallet"
bins=("$bin")
if runc=$(command -v runc); then
  install -m 755 "$runc" "$root/usr/local/bin/runc"
  bins+=("$runc")
fi
for b in "${bins[@]}"; do
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  ldd "$b" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
