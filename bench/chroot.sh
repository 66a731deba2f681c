#!/usr/bin/env bash
# Chroot isolation beside root mode, in one run on this machine (issue 14's targets: chroot's
# cold build at most 2x root's, its no-op at most 0.05 s). Both as real root here, chroot
# forced with --isolation chroot (the same code an unprivileged container runs; a container's
# overlay rootfs as the store would add its own cost). Scenarios: cold build, no-op rebuild,
# one source file edited, requirements edited; a fresh store per repetition; the modes
# alternate so load from other processes falls on both.
#
# Workload: the shared ML-style workload (../shared/peers: a Debian bookworm base from the
# peers registry on 127.0.0.1:5000) when it is there, else testdata/examples/ml-busybox.
# With -t, the chroot builds also log the tree snapshotter's phases (PALLET_TREE_TIMING=1:
# each tree copied or kept, each diff, each view) and the totals are printed.
#
# The stores live on a fresh, journaled ext4 (a loop file, as bench/fresh-fs.sh explains: on
# this machine kind's journal-less root filesystem, file creation slows down for hours after
# many deletions, and the chroot mode creates a file per file of each stage's base).
# -R: on the root filesystem instead.
#
# Usage: bash bench/chroot.sh [-r REPS] [-w busybox|peers] [-t] [-R]   (root; release build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
reps=3
workload=auto
phases=0
fresh=1
while getopts r:w:tR o; do
  case $o in
    r) reps=$OPTARG ;;
    w) workload=$OPTARG ;;
    t) phases=1 ;;
    R) fresh=0 ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/chroot.sh needs root" >&2; exit 1; }
cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2
pallet=$here/target/release/pallet
peers=/var/tmp/peers/workload
if [ "$workload" = auto ]; then
  if [ -f "$peers/Dockerfile" ] && curl -sf -m 2 http://127.0.0.1:5000/v2/ >/dev/null; then
    workload=peers
  else
    workload=busybox
  fi
fi
work=$(mktemp -d /var/tmp/pallet-chroot-bench.XXXXXX)
img=$work.img
cleanup() {
  umount "$work" 2>/dev/null || true
  rm -rf "$work" "$img"
}
trap cleanup EXIT
if [ "$fresh" = 1 ]; then
  truncate -s "${BENCH_FS_SIZE:-8G}" "$img"
  mkfs.ext4 -q -F "$img"
  mount -o loop "$img" "$work"
fi
if [ "$workload" = busybox ]; then
  src=$here/testdata/examples/ml-busybox
  bash "$here/scripts/make-busybox-rootfs.sh" "$work/busybox.tar" >/dev/null
  edit=src/serve.sh
else
  src=$peers
  edit=$(cd "$src" && find src -type f | sort | sed -n 1p)
fi

timed() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >>"$work/log" 2>&1 || { echo "failed: $*" >&2; tail -20 "$work/log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

results=$work/results
: >"$results"
for i in $(seq "$reps"); do
  for mode in root chroot; do
    store=$work/store-$mode-$i
    ctx=$work/ctx-$mode-$i
    cp -r "$src" "$ctx"
    p=("$pallet" --root "$store")
    [ "$workload" = busybox ] && "${p[@]}" import "$work/busybox.tar" -t busybox:latest >>"$work/log" 2>&1
    b=(env PALLET_TREE_TIMING=$phases "${p[@]}" build --progress plain --isolation "$mode" -t ml "$ctx")
    echo "== $mode $i cold" >>"$work/log"
    cold=$(timed "${b[@]}")
    echo "== $mode $i no-op" >>"$work/log"
    noop=$(timed "${b[@]}")
    echo "# edited" >>"$ctx/$edit"
    echo "== $mode $i src" >>"$work/log"
    one=$(timed "${b[@]}")
    echo "pandas==2.2.2" >>"$ctx/requirements.txt"
    echo "== $mode $i req" >>"$work/log"
    req=$(timed "${b[@]}")
    printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$cold" "$noop" "$one" "$req" >>"$results"
    rm -rf "$store" "$ctx"
  done
done
grep -q "isolation: chroot (no mounts, no user namespaces)" "$work/log" \
  || { echo "no chroot build in the log" >&2; exit 1; }

python3 - "$results" "$reps" "$workload" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = ["cold", "no-op", "1 src file", "requirements"]
med = {}
for mode in ("root", "chroot"):
    vals = [[float(v) for v in r[1:]] for r in rows if r[0] == mode]
    med[mode] = [statistics.median(c) for c in zip(*vals)]
print(f"workload {sys.argv[3]}; medians of {sys.argv[2]}, seconds")
print("| mode | " + " | ".join(cols) + " |")
for mode in ("root", "chroot"):
    print(f"| {mode} | " + " | ".join("%.2f" % v for v in med[mode]) + " |")
print("| chroot/root | " + " | ".join("%.2fx" % (b / a) for a, b in zip(med["root"], med["chroot"])) + " |")
PY
if [ "$phases" = 1 ]; then
  awk '/^== chroot/ { s = $3 " " $4 }
       /^pallet: (tree|view) / { for (i = 1; i <= NF; i++) if ($i == "in") t = $(i + 1)
         k = $0; sub(/^pallet: /, "", k); sub(/ in [0-9.]+ s.*/, "", k); sum[s ", " k] += t; n[s ", " k]++ }
       END { for (x in sum) printf "chroot %s: %d, %.2f s\n", x, n[x], sum[x] }' "$work/log" | sort
fi
