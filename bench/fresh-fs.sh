#!/usr/bin/env bash
# bench/scenarios.sh with pallet's store and dockerd's data root on a fresh, journaled ext4 (a
# loop file), so that neither builder pays for what earlier runs left on this VM's disk.
#
# Why: the root filesystem of this machine kind is ext4 without a journal (journal_task: none).
# Without a journal, ext4's inode allocator skips every inode freed in the last dirty_expire*10
# seconds (30,000 s with the default 3000) whose table block is cached (`recently_deleted` in
# fs/ext4/ialloc.c). Each wipe frees tens of thousands of inodes near the store, so every later
# file creation there scans past them: a perf profile of a pull right after a prune shows 30%
# of the time in find_get_block_common/recently_deleted, and pallet's cold build drifts from
# 3.6 s to 7-10 s within one run. Both builders get the same fresh filesystem here.
#
# Usage: bash bench/fresh-fs.sh [-r REPS] [-f Dockerfile|Dockerfile.cache]   (root; BuildKit only:
# buildah keeps its storage under ../shared/peers' state on the root filesystem, so it is left
# out rather than compared on a different disk.)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench/fresh-fs.sh needs root" >&2; exit 1; }
img=/var/tmp/pallet-bench-fs.img
mnt=/var/tmp/pallet-bench-fs
pidfile=/var/tmp/peers/dockerd.pid

# Stops any dockerd (the peers harness's or ours) and waits until it has exited: a second
# dockerd refuses to start while /var/run/docker.pid names a live one.
stop_dockerd() {
  pkill -x dockerd 2>/dev/null || true
  for _ in $(seq 120); do pgrep -x dockerd >/dev/null || break; sleep 0.5; done
  if pgrep -x dockerd >/dev/null; then echo "dockerd does not stop" >&2; exit 1; fi
  rm -f /var/run/docker.pid
}
cleanup() {
  stop_dockerd
  umount -R "$mnt" 2>/dev/null || true
  rm -f "$img"
}
trap cleanup EXIT

stop_dockerd
umount -R "$mnt" 2>/dev/null || true
truncate -s "${BENCH_FS_SIZE:-24G}" "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$mnt" /var/tmp/peers/logs
mount -o loop "$img" "$mnt"
mkdir -p "$mnt/docker" "$mnt/docker-exec" "$mnt/pallet-root"

# The flags of ../shared/peers/start-dockerd.sh, with the data root on the fresh filesystem.
setsid nohup dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
  --storage-driver=overlay2 --insecure-registry 127.0.0.1:5000 \
  --data-root "$mnt/docker" --exec-root "$mnt/docker-exec" \
  >/var/tmp/peers/logs/dockerd-fresh-fs.log 2>&1 </dev/null &
echo $! >"$pidfile"
for _ in $(seq 60); do /usr/bin/docker version >/dev/null 2>&1 && break; sleep 0.5; done
/usr/bin/docker version >/dev/null

PALLET_BENCH_ROOT="$mnt/pallet-root" bash "$here/bench/scenarios.sh" "$@" buildkit
