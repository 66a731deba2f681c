#!/usr/bin/env bash
# Whole-build scenarios beside BuildKit and buildah, in one run on this machine, through the
# shared peers harness (../shared/peers): cold build, no-op rebuild, one source file edited,
# requirements edited, push to a fresh repository, no-op push. Prints the medians and the
# pallet/BuildKit and pallet/buildah ratios.
#
# Usage: bash bench/scenarios.sh [-r REPS] [-f Dockerfile|Dockerfile.cache] [PEER...]
#   PEER: buildkit, buildah (default: those installed). Needs root.
# Starts the harness's registry (127.0.0.1:5000) and, for BuildKit, dockerd; makes the base
# images with debootstrap on first use (../shared/peers/make-base.sh reads the Debian mirror
# from /etc/apt). pallet pulls its base from that registry like the others.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PALLET_PEERS:-$here/../shared/peers}
reps=3
dockerfile=Dockerfile
while getopts r:f: o; do
  case $o in
    r) reps=$OPTARG ;;
    f) dockerfile=$OPTARG ;;
    *) sed -n 2,10p "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ -d "$peers" ] || { echo "no peers harness at $peers (set PALLET_PEERS)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench/scenarios.sh needs root (runc, dockerd, buildah)" >&2; exit 1; }

peer_list=("$@")
if [ ${#peer_list[@]} -eq 0 ]; then
  command -v dockerd >/dev/null && peer_list+=(buildkit)
  command -v buildah >/dev/null && peer_list+=(buildah)
fi

bash "$here/scripts/ensure-tools.sh" >&2
command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2
cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2
pallet=$here/target/release/pallet
store=${PALLET_BENCH_ROOT:-/var/tmp/peers/pallet-root}

bash "$peers/start-registry.sh" >&2
for p in "${peer_list[@]}"; do
  [ "$p" = buildkit ] && bash "$peers/start-dockerd.sh" >&2
done
curl -fsS http://127.0.0.1:5000/v2/base/debian/manifests/bookworm \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' >/dev/null 2>&1 \
  || bash "$peers/make-base.sh" >&2

export BENCH_BUILD="$pallet --root $store build --progress plain -f {file} -t {tag} {ctx}"
export BENCH_PUSH="$pallet --root $store push --progress plain {tag} {ref}"
export BENCH_WIPE="$pallet --root $store prune --all"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash "$peers/bench.sh" -r "$reps" -f "$dockerfile" pallet=cmd "${peer_list[@]}" | tee "$out"

python3 - "$out" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
head, body = rows[0], {r[0]: r for r in rows[1:]}
cols = ["cold_s", "noop_s", "src_edit_s", "req_edit_s", "push_s", "push_noop_s"]
def num(v):
    try:
        return float(v.split("(")[0])
    except ValueError:
        return None
if "pallet" not in body:
    sys.exit("no pallet row")
print("\nratio\t" + "\t".join(cols))
for peer in [b for b in body if b != "pallet"]:
    cells = []
    for c in cols:
        i = head.index(c)
        a, b = num(body["pallet"][i]), num(body[peer][i])
        cells.append("%.2fx" % (a / b) if a is not None and b else "NA")
    print(f"pallet/{peer}\t" + "\t".join(cells))
PY
