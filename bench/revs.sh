#!/usr/bin/env bash
# Two pallet binaries side by side on the peers workload (../shared/peers): the cold build
# (a fresh store each rep, the Debian base pulled from the harness's local registry) and the
# no-op rebuild (each build one process, timed from Python around spawn and exit), the two
# binaries alternating so that a machine that slows down slows both. For guard rails such as
# "a refactor keeps behaviour and speed": compare the binary before it with the one after.
#
# Usage: bash bench/revs.sh [-r REPS] [-n NOOP_RUNS] NAME=BINARY NAME=BINARY
#   e.g. bash bench/revs.sh before=/work/old/target/release/pallet after=target/release/pallet
# Needs root. Starts the harness's registry, makes the base (debootstrap, once) and the
# workload (once) with the harness's own scripts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PALLET_PEERS:-$here/../shared/peers}
reps=3
noop_runs=21
while getopts r:n: o; do
  case $o in
    r) reps=$OPTARG ;;
    n) noop_runs=$OPTARG ;;
    *) sed -n 2,11p "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { sed -n 2,11p "$0"; exit 2; }
[ -d "$peers" ] || { echo "no peers harness at $peers (set PALLET_PEERS)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench/revs.sh needs root (runc, overlay mounts)" >&2; exit 1; }
bash "$peers/start-registry.sh" >&2
[ -d /var/tmp/peers/workload ] || bash "$peers/gen-workload.sh" >&2
if ! curl -fsS http://127.0.0.1:5000/v2/base/debian/tags/list >/dev/null 2>&1; then
  bash "$peers/make-base.sh" >&2
fi
work=$(mktemp -d /var/tmp/pallet-revs.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a /var/tmp/peers/workload "$work/ctx"
python3 - "$work" "$reps" "$noop_runs" "$@" <<'PY'
import os, shutil, statistics, subprocess, sys, time
work, reps, noop_runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bins = dict(arg.split("=", 1) for arg in sys.argv[4:])
ctx = os.path.join(work, "ctx")

def build(binary, root):
    cmd = [binary, "--root", root, "build", "--progress", "plain",
           "-f", "Dockerfile", "-t", "revs-bench", "."]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ctx, capture_output=True, check=True)
    return time.perf_counter() - started

cold = {name: [] for name in bins}
noop = {name: [] for name in bins}
for rep in range(reps):
    for name, binary in bins.items():
        root = os.path.join(work, f"root-{name}")
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["sync"], check=True)
        cold[name].append(build(binary, root))
for name, binary in bins.items():
    root = os.path.join(work, f"root-{name}")
    build(binary, root)  # warm
for _ in range(noop_runs):
    for name, binary in bins.items():
        noop[name].append(build(binary, os.path.join(work, f"root-{name}")))
print(f"{'':<10} {'cold (median of %d)' % reps:>22} {'no-op (median of %d)' % noop_runs:>22}")
for name in bins:
    print(f"{name:<10} {statistics.median(cold[name]):>20.3f} s {statistics.median(noop[name]) * 1000:>19.1f} ms")
    print(f"{'':<10} cold reps: {' '.join('%.3f' % t for t in cold[name])}")
PY
