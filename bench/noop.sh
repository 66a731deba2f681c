#!/usr/bin/env bash
# The no-op rebuild of the peers workload, pallet beside BuildKit, timed without the harness's
# overhead: ../shared/peers/bench.sh times each build between two `date` processes around a
# `bash -c` and rounds to 10 ms, which for a 10 ms build is most of the number. Here each
# build is one process timed from Python (perf_counter around spawn and exit), 21 runs per
# round, two rounds, medians. Same context copy and same filesystem for both.
#
# Usage: bash bench/noop.sh   (root; starts dockerd with ../shared/peers/start-dockerd.sh if
# it is not up, and the registry with start-registry.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PALLET_SHARED:-$here/../shared}/peers
[ "$(id -u)" = 0 ] || { echo "bench/noop.sh needs root" >&2; exit 1; }
bash "$peers/start-registry.sh" >/dev/null
bash "$peers/start-dockerd.sh" >/dev/null
[ -d /var/tmp/peers/workload ] || bash "$peers/gen-workload.sh" >/dev/null
cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2
work=$(mktemp -d /var/tmp/pallet-noop.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a /var/tmp/peers/workload "$work/ctx"
export DOCKER_BUILDKIT=1
cd "$work/ctx"
/usr/bin/docker build --network=none --progress=plain -f Dockerfile -t pallet-noop-bench . >/dev/null 2>&1
"$here/target/release/pallet" --root "$work/root" build --progress plain -f Dockerfile \
  -t pallet-noop-bench . >/dev/null 2>&1
python3 - "$here/target/release/pallet" "$work/root" <<'PY'
import os, subprocess, sys, time
pallet, root = sys.argv[1], sys.argv[2]
cmds = {
    "pallet": [pallet, "--root", root, "build", "--progress", "plain", "-f", "Dockerfile",
               "-t", "pallet-noop-bench", "."],
    "buildkit": ["/usr/bin/docker", "build", "--network=none", "--progress=plain", "-f",
                 "Dockerfile", "-t", "pallet-noop-bench", "."],
}
medians = {name: [] for name in cmds}
for _ in range(2):
    for name, cmd in cmds.items():
        subprocess.run(cmd, capture_output=True, check=True)
        times = []
        for _ in range(21):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        times.sort()
        medians[name].append(times[10])
        print(f"{name}\tmedian {times[10] * 1000:.1f} ms\tmin {times[0] * 1000:.1f}\tmax {times[-1] * 1000:.1f}")
p, b = min(medians["pallet"]), min(medians["buildkit"])
print(f"pallet/buildkit no-op: {p * 1000:.1f} ms / {b * 1000:.1f} ms = {p / b:.3f}x")
PY
/usr/bin/docker rmi pallet-noop-bench >/dev/null 2>&1 || true
