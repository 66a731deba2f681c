#!/usr/bin/env bash
# The fresh-CI-runner benchmark of issue 17: ../shared/peers/ci-bench.sh with pallet plugged in
# through its `cmd` adapter, beside BuildKit (inline cache) and buildah -j2 (--cache-to/from),
# in one run. Per rep and builder: a seed build (cold, exports the cache, pushes), then on a
# wiped store each case, build + push with the cache from the registry: no change, one source
# file edited, requirements edited (Dockerfile.cache).
#
# pallet's builds go through bench/ci-cache-build.sh, which also records the bytes each one
# downloaded (GET /blobs/ answered to pallet, from the registry's access log) and uploaded (what
# pallet's push and cache export report) in $PEERS/results/pallet-ci-bytes-STAMP.tsv.
#
# Usage: bash bench/ci-cache.sh [REPS]   (root; default 1 rep; starts the registry and dockerd)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PALLET_SHARED:-$here/../shared}/peers
reps=${1:-1}
[ "$(id -u)" = 0 ] || { echo "bench/ci-cache.sh needs root" >&2; exit 1; }
bash "$peers/start-registry.sh" >/dev/null
bash "$peers/start-dockerd.sh" >/dev/null
curl -fsS http://127.0.0.1:5000/v2/base/debian/manifests/bookworm -o /dev/null \
  || bash "$peers/make-base.sh"
cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2
stamp=$(date +%Y%m%d-%H%M%S)
export PALLET_BIN=$here/target/release/pallet
export PALLET_ROOT=/var/tmp/peers/work/pallet-ci-root
export PALLET_CI_BYTES=/var/tmp/peers/results/pallet-ci-bytes-$stamp.tsv
mkdir -p /var/tmp/peers/results
printf 'case\tseconds_wall\tbytes_downloaded\tbytes_uploaded\n' > "$PALLET_CI_BYTES"
export BENCH_CI_BUILD="bash $here/bench/ci-cache-build.sh {file} {ctx} {ref} {cache}"
export BENCH_WIPE='rm -rf "$PALLET_ROOT"'
bash "$peers/ci-bench.sh" -r "$reps" -f Dockerfile.cache \
  pallet=cmd buildkit buildah-j2=buildah,BUILDAH_JOBS=2
echo "pallet's bytes per build (cases in ci-bench's order: seed, no change, 1 source file, requirements):"
awk -F'\t' 'NR > 1 { split("seed noop src req", c, " "); $1 = c[(NR - 2) % 4 + 1] } 1' OFS='\t' \
  "$PALLET_CI_BYTES"
