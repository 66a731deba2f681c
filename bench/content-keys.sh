#!/usr/bin/env bash
# What content-based cache keys (solver/keys/content.rs) cost and save, on a `COPY --from` of
# a venv-like directory (200 files of 1 MB + 20,000 small files) from a builder stage:
#   cold:    first build, every step runs (the COPY step also hashes what it copies);
#   same:    the builder runs again (a file it does not put in /venv changed) and makes the
#            same /venv: the COPY and the RUN after it are found by content;
#   changed: the builder makes a different /venv: the COPY hashes it, misses, runs;
#   noop:    nothing changed (median of 11 builds).
# Each with NEW (this tree's release build) and, when given, OLD (a pallet without content
# keys, e.g. main's target/release/pallet), on separate stores. Prints seconds per build and
# the COPY step's "content key" log line (what the hashing read and how long it took).
#
# Usage: bash bench/content-keys.sh [OLD_PALLET]   (root; builds target/release/pallet)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench/content-keys.sh needs root" >&2; exit 1; }
old=${1:-}
cargo build --release -p pallet-builder --manifest-path "$here/Cargo.toml" >&2
new=$here/target/release/pallet
work=$(mktemp -d /var/tmp/pallet-content-keys.XXXXXX)
trap 'rm -rf "$work"' EXIT
bash "$here/scripts/make-busybox-rootfs.sh" "$work/busybox.tar" >/dev/null
mkdir -p "$work/ctx"
head -c 1048576 /dev/urandom >"$work/ctx/seed"
echo 0 >"$work/ctx/bust"
cat >"$work/ctx/Dockerfile" <<'EOF'
FROM busybox AS builder
COPY seed /seed
COPY bust /bust
RUN mkdir -p /venv/big /venv/small && i=0 && while [ $i -lt 200 ]; do cp /seed /venv/big/f$i; i=$((i+1)); done \
 && i=0 && while [ $i -lt 20000 ]; do echo "module $i" > /venv/small/m$i.py; i=$((i+1)); done
FROM busybox
COPY --from=builder /venv /venv
RUN cat /dev/urandom | head -c 64 | sha256sum > /unique
EOF

build() { # BIN ROOT -> seconds, log in $work/last.log
  local t0 t1
  t0=$(date +%s.%N)
  "$1" --root "$2" build --progress plain "$work/ctx" >"$work/last.log" 2>&1
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}

copy_step() { # the COPY --from step's DONE/CACHED line of the last build
  local n
  n=$(grep -m1 "COPY --from=builder" "$work/last.log" | cut -d' ' -f1)
  grep -h "^$n \(DONE\|CACHED\)" "$work/last.log" | sed 's/^/    COPY step: /' || true
}

run() { # NAME BIN
  local name=$1 bin=$2 root=$work/root-$1
  "$bin" --root "$root" import "$work/busybox.tar" -t busybox:latest >/dev/null 2>&1
  echo 0 >"$work/ctx/bust"
  head -c 1048576 /dev/urandom >"$work/ctx/seed"
  echo "$name cold: $(build "$bin" "$root")s"
  grep -h "content key" "$work/last.log" | sed 's/^/    /' || true
  copy_step
  echo 1 >"$work/ctx/bust"
  echo "$name same: $(build "$bin" "$root")s"
  grep -h "content key\|CACHED by content" "$work/last.log" | sed 's/^/    /' || true
  head -c 1048576 /dev/urandom >"$work/ctx/seed"
  echo "$name changed: $(build "$bin" "$root")s"
  grep -h "content key" "$work/last.log" | sed 's/^/    /' || true
  copy_step
  local times=()
  for _ in $(seq 11); do times+=("$(build "$bin" "$root")"); done
  echo "$name noop (median of 11): $(printf '%s\n' "${times[@]}" | sort -n | sed -n 6p)s"
}

run new "$new"
[ -n "$old" ] && run old "$old"
exit 0
