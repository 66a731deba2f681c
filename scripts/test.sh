#!/usr/bin/env bash
# The test command (README): installs what is missing, then runs every test of the workspace
# and ends with one summary line ("N passed, N failed"). Everything the tests read is in the
# repository (testdata/, with the project's own Dockerfile corpus in testdata/corpus); the
# tutorial corpus in ../shared is checked too when it is there (PALLET_SHARED to point
# elsewhere), so a plain clone passes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "pallet tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
