#!/usr/bin/env bash
# Issue 17's mounts=true target: "requirements edited with mounts=true: at most 1.3x pallet's
# own warm-local requirements edit", on ../shared/peers' ML-style workload (Dockerfile.cache,
# whose install step is `RUN --mount=type=cache,target=/root/.cache fakepip install ...`).
#
# 1. Fresh runner: ../shared/peers/ci-bench.sh with pallet alone, twice in one run: label
#    pallet-mounts with PALLET_CI_MOUNTS=1 (`--cache-to type=registry,ref=CACHE,mode=max,
#    mounts=true`), then pallet-plain without (the same builds as bench/ci-cache.sh's pallet),
#    each with its own registry repositories, builds through bench/ci-cache-build.sh: seed,
#    then on a wiped store no change, one source file, requirements edited. Bytes per build
#    in $PEERS/results/pallet-mounts-ci-bytes-STAMP.tsv.
# 2. Warm local: the same workload and edit on one kept store (no registry cache): seed build +
#    push, then the requirements edit (as ci-bench makes it), build + push, timed.
#
# Usage: bash bench/ci-cache-mounts.sh [REPS]   (root; default 1 rep; starts the registry)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PALLET_SHARED:-$here/../shared}/peers
reps=${1:-1}
[ "$(id -u)" = 0 ] || { echo "bench/ci-cache-mounts.sh needs root" >&2; exit 1; }
bash "$peers/start-registry.sh" >/dev/null
curl -fsS http://127.0.0.1:5000/v2/base/debian/manifests/bookworm -o /dev/null \
  || bash "$peers/make-base.sh"
cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2
stamp=$(date +%Y%m%d-%H%M%S)
export PALLET_BIN=$here/target/release/pallet
export PALLET_ROOT=/var/tmp/peers/work/pallet-mounts-ci-root
export PALLET_CI_BYTES=/var/tmp/peers/results/pallet-mounts-ci-bytes-$stamp.tsv
mkdir -p /var/tmp/peers/results
printf 'case\tseconds_wall\tbytes_downloaded\tbytes_uploaded\n' > "$PALLET_CI_BYTES"
export BENCH_CI_BUILD="bash $here/bench/ci-cache-build.sh {file} {ctx} {ref} {cache}"
export BENCH_WIPE='rm -rf "$PALLET_ROOT"'
bash "$peers/ci-bench.sh" -r "$reps" -f Dockerfile.cache \
  pallet-mounts=cmd,PALLET_CI_MOUNTS=1 pallet-plain=cmd
echo "pallet's bytes per build (pallet-mounts' reps, then pallet-plain's; each seed, no change,"
echo "1 source file, requirements):"
awk -F'\t' 'NR > 1 { split("seed noop src req", c, " "); $1 = c[(NR - 2) % 4 + 1] } 1' OFS='\t' \
  "$PALLET_CI_BYTES"

# Warm local: one store kept between the seed and the edit.
w=/var/tmp/peers/work/pallet-mounts-warm
root=/var/tmp/peers/work/pallet-mounts-warm-root
ref=127.0.0.1:5000/ci/pallet-mounts-warm:latest
log=/var/tmp/peers/results/pallet-mounts-warm-$stamp.txt
echo "warm local requirements edit (build + push), log $log:"
for rep in $(seq "$reps"); do
  "$peers/gen-workload.sh" "$w" 2>>"$log"
  rm -rf "$root"
  "$PALLET_BIN" --root "$root" build --progress plain -f "$w/Dockerfile.cache" -t "$ref" --push \
    "$w" >>"$log" 2>&1
  sed -i "s/^tqdm==.*/tqdm==4.66.$(date +%N)/" "$w/requirements.txt"
  sync
  t0=$(date +%s.%N)
  "$PALLET_BIN" --root "$root" build --progress plain -f "$w/Dockerfile.cache" -t "$ref" --push \
    "$w" >>"$log" 2>&1
  t1=$(date +%s.%N)
  printf 'warm-local-req\trep %s\t%.2f s\n' "$rep" "$(echo "$t1 - $t0" | bc)"
done
rm -rf "$root"
