#!/usr/bin/env bash
# The test command (README): installs what is missing, then runs every test of the workspace.
# Golden data for the parser is in testdata/; the tutorial corpus is read from ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh
cargo test --workspace --locked "$@"
