#!/usr/bin/env bash
# Starts dockerd (Debian's docker.io) for the unprivileged-container test when none answers:
# no bridge, no iptables (CI hosts and these machines have neither to spare), overlay2, its
# log and pid under ${PALLET_DOCKERD_DIR:-/var/tmp/pallet-dockerd}. Prints the pid it started
# (or "dockerd already up"); stop it with: kill "$(cat /var/tmp/pallet-dockerd/dockerd.pid)".
set -euo pipefail
dir=${PALLET_DOCKERD_DIR:-/var/tmp/pallet-dockerd}
mkdir -p "$dir"
if /usr/bin/docker version >/dev/null 2>&1; then echo "dockerd already up"; exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd missing: apt-get install docker.io" >&2; exit 1; }
setsid nohup dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
  --storage-driver=overlay2 >"$dir/dockerd.log" 2>&1 </dev/null &
echo $! >"$dir/dockerd.pid"
for _ in $(seq 60); do /usr/bin/docker version >/dev/null 2>&1 && break; sleep 0.5; done
/usr/bin/docker version >/dev/null 2>&1 || { echo "dockerd did not start; see $dir/dockerd.log" >&2; exit 1; }
echo "dockerd pid $(cat "$dir/dockerd.pid")"
