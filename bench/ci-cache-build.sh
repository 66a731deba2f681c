#!/usr/bin/env bash
# One build of bench/ci-cache.sh (ci-bench.sh's BENCH_CI_BUILD): pallet builds FILE in CTX with
# the registry cache CACHE (import and export, mode=max) and pushes REF; appends the bytes it
# downloaded (the registry's access log: GET /blobs/ answered 200 to pallet) and uploaded (the
# push's and the cache export's own reports) to $PALLET_CI_BYTES.
# With PALLET_CI_MOUNTS=1 the export adds mounts=true (cache-mount contents travel too), and
# the uploaded bytes include the mount chunks the export reports.
# Usage: ci-cache-build.sh FILE CTX REF CACHE
set -uo pipefail
file=$1 ctx=$2 ref=$3 cache=$4
reglog=/var/tmp/peers/logs/registry.log
start=$(stat -c %s "$reglog")
out=$(mktemp)
t0=$(date +%s.%N)
"$PALLET_BIN" --root "$PALLET_ROOT" build --progress plain -f "$file" -t "$ref" --push \
  --cache-from "type=registry,ref=$cache" \
  --cache-to "type=registry,ref=$cache,mode=max${PALLET_CI_MOUNTS:+,mounts=true}" "$ctx" 2>&1 \
  | tee "$out"
status=${PIPESTATUS[0]}
t1=$(date +%s.%N)
sleep 0.2 # the registry writes its access log line after the answer
down=$(tail -c +"$((start + 1))" "$reglog" | grep '"pallet/' \
  | awk '$6 == "\"GET" && $7 ~ /\/blobs\// && $9 == 200 { s += $10 } END { print s + 0 }')
# "N bytes uploaded" (push, cache layers) and "(N bytes) uploaded" (a cache mount's chunks).
up=$(grep -oE '[0-9]+ bytes\)? uploaded' "$out" | awk '{ s += $1 } END { print s + 0 }')
printf 'build\t%.2f\t%s\t%s\n' "$(echo "$t1 - $t0" | bc)" "$down" "$up" >> "$PALLET_CI_BYTES"
rm -f "$out"
exit "$status"
