#!/usr/bin/env bash
# Cache-mount transport (issue 17's mounts=true) on a synthetic ~1 GB pip cache: pack and
# unpack times (gzip and zstd), re-pack of an unchanged mount, and what a re-export uploads
# after adding, removing and rewriting one wheel. Results go in bench/RESULTS.md ("Cache
# mount transport").
#
# Usage: bash bench/mount-pack.sh [BYTES]   (default 1073741824; scratch in $MOUNT_PACK_DIR,
# default /var/tmp, needs about 3x BYTES free)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export MOUNT_PACK_BYTES=${1:-1073741824}
export MOUNT_PACK_DIR=${MOUNT_PACK_DIR:-/var/tmp}
cd "$here"
cargo bench --locked -p pallet-bench --bench mount_pack
