#!/usr/bin/env bash
# A two-platform build (linux/amd64 + linux/arm64) of a small ML-style workload, pallet beside
# buildah (Debian's 1.28: `buildah build --platform linux/amd64,linux/arm64 --manifest`), in one
# run on this machine: a cold build (fresh stores, the base pulled from a local docker-registry)
# and a no-op rebuild. The workload has RUN steps in both platforms' stages (arm64's under QEMU
# user emulation through binfmt_misc) and a `FROM --platform=$BUILDPLATFORM` stage that
# "compiles" natively once per target with `ARG TARGETARCH`.
#
# Usage: bash bench/multiplatform.sh [-r REPS]     (root; default 3 repetitions, medians)
# Registers the arm64 QEMU handler (`pallet binfmt --install linux/arm64`) when it is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
reps=3
while getopts r: o; do
  case $o in
    r) reps=$OPTARG ;;
    *) sed -n 2,11p "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/multiplatform.sh needs root (runc, binfmt_misc, buildah)" >&2; exit 1; }
command -v buildah >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >&2
bash "$here/scripts/ensure-tools.sh" >&2
# PALLET_BIN: a pallet already built (default: build the release binary here).
pallet=${PALLET_BIN:-}
if [ -z "$pallet" ]; then
  cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2
  pallet=$here/target/release/pallet
fi
"$pallet" binfmt --install linux/arm64 >&2

work=$(mktemp -d /var/tmp/pallet-multiplatform-bench.XXXXXX)
registry_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  for d in "$work"/buildah-*; do
    [ -d "$d/root" ] && buildah --root "$d/root" --runroot "$d/run" rm --all >/dev/null 2>&1 || true
    [ -d "$d/root" ] && umount -R "$d/root/overlay" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# A docker-registry on a free loopback port: both builders pull the base from it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
  secret: pallet-bench-secret
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

# The base: busybox-static for amd64 (the host's) and arm64 (Debian's, testkit's cache), one
# index pushed as 127.0.0.1:PORT/base/busybox:multi.
base=127.0.0.1:$port/base/busybox:multi
arm64_busybox=${PALLET_TESTKIT_CACHE:-/var/cache/pallet-testkit}/arm64/bin/busybox
seed=$work/seed
for arch in amd64 arm64; do
  tree=$work/tree-$arch
  mkdir -p "$tree/bin" "$tree/tmp" "$tree/etc"
  if [ "$arch" = amd64 ]; then cp /bin/busybox "$tree/bin/busybox"; else cp "$arm64_busybox" "$tree/bin/busybox"; fi
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$tree/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$tree/etc/passwd"
  tar --numeric-owner --owner=0 --group=0 --mtime=@1700000000 -C "$tree" -cf "$work/$arch.tar" .
  SOURCE_DATE_EPOCH=1700000000 "$pallet" --root "$seed" import "$work/$arch.tar" \
    -t busybox:multi --platform "linux/$arch" --append >&2
done
"$pallet" --root "$seed" push --progress quiet busybox:multi "$base" >&2

ctx=$work/ctx
mkdir -p "$ctx"
cat >"$ctx/app.py" <<'EOF'
print("serving the model")
EOF
cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
# Native, once per target platform: "compile" the model server for TARGETARCH.
FROM --platform=$BUILDPLATFORM ${BASE} AS compile
ARG TARGETARCH
RUN mkdir -p /out && i=0; while [ $i -lt 3000 ]; do echo "weight $i $TARGETARCH"; i=$((i+1)); done > /out/model.txt && sha256sum /out/model.txt > /out/model.sha256
# Per platform (arm64 emulated): "install" the dependencies.
FROM ${BASE} AS deps
RUN mkdir -p /opt/venv && i=0; while [ $i -lt 3000 ]; do echo "pkg$i==1.0"; i=$((i+1)); done > /opt/venv/requirements.txt && md5sum /opt/venv/requirements.txt > /opt/venv/lock
FROM ${BASE}
COPY --from=deps /opt/venv /opt/venv
COPY --from=compile /out /models
COPY app.py /app/app.py
RUN uname -m > /arch && cat /opt/venv/lock /models/model.sha256 > /app/manifest
CMD ["cat", "/app/manifest"]
EOF

now() { date +%s.%N; }
# Prints the seconds a command took (its output goes to $work/last.log; a failure stops the run).
timed() {
  local t0 t1
  t0=$(now)
  "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }
  t1=$(now)
  python3 -c "print('%.3f' % ($t1 - $t0))"
}

pallet_build() {
  "$pallet" --root "$1" build --progress plain --platform linux/amd64,linux/arm64 \
    -t mp-bench:latest --build-arg "BASE=$base" "$ctx"
}
buildah_build() {
  buildah --root "$1/root" --runroot "$1/run" build --layers --platform linux/amd64,linux/arm64 \
    --manifest mp-bench:latest --runtime /usr/sbin/runc --network none --tls-verify=false \
    --build-arg "BASE=$base" "$ctx"
}

declare -A cold noop
for r in $(seq "$reps"); do
  p=$work/pallet-$r
  b=$work/buildah-$r
  mkdir -p "$b"
  t=$(timed pallet_build "$p")
  cold[pallet]+="$t "
  t=$(timed pallet_build "$p")
  noop[pallet]+="$t "
  # A no-op must be one: every step a cache hit (the summary says "0 misses").
  grep -q ', 0 misses' "$work/last.log" || { cat "$work/last.log" >&2; echo "pallet's rebuild was not a no-op" >&2; exit 1; }
  t=$(timed buildah_build "$b")
  cold[buildah]+="$t "
  buildah --root "$b/root" --runroot "$b/run" manifest inspect mp-bench:latest >"$work/list.json"
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["manifests"]; assert len(m)==2, m' "$work/list.json"
  t=$(timed buildah_build "$b")
  noop[buildah]+="$t "
  echo "rep $r: pallet cold ${cold[pallet]% }, no-op ${noop[pallet]% }; buildah cold ${cold[buildah]% }, no-op ${noop[buildah]% }" >&2
done

python3 - "${cold[pallet]}" "${noop[pallet]}" "${cold[buildah]}" "${noop[buildah]}" <<'PY'
import statistics, sys
pc, pn, bc, bn = [[float(x) for x in a.split()] for a in sys.argv[1:5]]
med = statistics.median
print("builder\tcold_s (median, all)\tnoop_s (median, all)")
for name, c, n in [("pallet", pc, pn), ("buildah 1.28", bc, bn)]:
    print(f"{name}\t{med(c):.2f} ({', '.join('%.2f' % x for x in c)})\t{med(n):.3f} ({', '.join('%.3f' % x for x in n)})")
print(f"pallet/buildah\t{med(pc) / med(bc):.2f}x\t{med(pn) / med(bn):.3f}x")
PY
