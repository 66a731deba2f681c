#!/usr/bin/env bash
# pallet's three isolation modes with BuildKit in the same run (issue 14's benchmark), on the
# shared ML-style workload through the peers harness (../shared/peers/bench.sh): cold build,
# no-op rebuild, one source file edited, requirements edited; a wiped store per repetition.
#
#   buildkit         dockerd 20.10's BuildKit (the peers adapter)
#   pallet-root      --isolation root: runc over overlayfs
#   pallet-rootless  a normal user made here (subuid range, removed at the end): user namespace,
#                    rootless runc over overlayfs userxattr
#   pallet-rootless-trees  the same user with the store on an overlayfs mount (as in a
#                    container whose root is overlay): the kernel refuses rootless overlayfs
#                    there and rootless mode falls back to copied trees
#   pallet-chroot    --isolation chroot as root: the unprivileged-container mode's code
#                    (copied trees, chroot), without the container around it
#
# pallet's stores sit on a fresh journaled ext4 (a loop file; bench/fresh-fs.sh says why: this
# machine's journal-less root filesystem slows file creation for hours after many deletions).
# Prints bench.sh's medians and a table of ratios to pallet-root and to BuildKit.
#
# Usage: bash bench/modes.sh [-r REPS] [-f Dockerfile|Dockerfile.cache]   (root; starts the
# peers registry and dockerd when they are not up; release build of pallet)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PALLET_PEERS:-$here/../shared/peers}
reps=1
dockerfile=Dockerfile
while getopts r:f: o; do
  case $o in
    r) reps=$OPTARG ;;
    f) dockerfile=$OPTARG ;;
    *) sed -n 2,17p "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/modes.sh needs root (runc, a test user, dockerd)" >&2; exit 1; }
[ -x "$peers/bench.sh" ] || { echo "no peers harness at $peers (set PALLET_PEERS)" >&2; exit 1; }
bash "$here/scripts/ensure-tools.sh" >&2
bash "$peers/start-registry.sh" >&2
if ! curl -fsS http://127.0.0.1:5000/v2/base/debian/tags/list >/dev/null 2>&1; then
  bash "$peers/make-base.sh" >&2
fi
bash "$peers/start-dockerd.sh" >&2
cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2

user=pmodes$$
work=$(mktemp -d /var/tmp/pallet-modes.XXXXXX)
cleanup() {
  umount "$work/ovl" 2>/dev/null || umount -l "$work/ovl" 2>/dev/null || true
  # pallet's settle helper (a syncfs after each build) may hold the filesystem for a moment.
  umount "$work/fs" 2>/dev/null || { sleep 2; umount -l "$work/fs" 2>/dev/null; } || true
  userdel -r -f "$user" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir "$work/fs"
truncate -s "${BENCH_FS_SIZE:-12G}" "$work/fs.img"
mkfs.ext4 -q -F "$work/fs.img"
mount -o loop "$work/fs.img" "$work/fs"
chmod 755 "$work/fs"
useradd --create-home --user-group -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
usermod --add-subuids 2100000000-2100065535 --add-subgids 2100000000-2100065535 "$user"
home=$(getent passwd "$user" | cut -d: -f6)
install -m 755 "$here/target/release/pallet" "$work/pallet"
install -d -o "$user" -g "$user" "$work/fs/user"
# An overlayfs whose upper dir is on the ext4, for the copied-trees fallback.
mkdir -p "$work/fs/ovl/lower" "$work/fs/ovl/upper" "$work/fs/ovl/work" "$work/ovl"
mount -t overlay overlay -o "lowerdir=$work/fs/ovl/lower,upperdir=$work/fs/ovl/upper,workdir=$work/fs/ovl/work" "$work/ovl"
install -d -o "$user" -g "$user" "$work/ovl/user"

p=$work/pallet
fs=$work/fs
build='build --progress plain -f {file} -t {tag} {ctx}'
as_user="setpriv --reuid=$user --regid=$user --clear-groups env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=$home USER=$user"
# bench.sh splits a spec's settings at commas: none of these may hold one.
results=$work/medians.tsv
bash "$peers/bench.sh" -r "$reps" -f "$dockerfile" \
  buildkit \
  "pallet-root=cmd,BENCH_BUILD=$p --root $fs/root $build --isolation root,BENCH_WIPE=rm -rf $fs/root" \
  "pallet-rootless=cmd,BENCH_BUILD=$as_user $p --root $fs/user/store $build --isolation rootless,BENCH_WIPE=rm -rf $fs/user/store" \
  "pallet-rootless-trees=cmd,BENCH_BUILD=$as_user $p --root $work/ovl/user/store $build --isolation rootless,BENCH_WIPE=rm -rf $work/ovl/user/store" \
  "pallet-chroot=cmd,BENCH_BUILD=$p --root $fs/chroot $build --isolation chroot,BENCH_WIPE=rm -rf $fs/chroot" \
  | tee "$results"

python3 - "$results" <<'PY'
import csv, sys
rows = {r["builder"]: r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t")}
cols = [("cold_s", "cold"), ("noop_s", "no-op"), ("src_edit_s", "1 src file"), ("req_edit_s", "requirements")]
def num(v):
    try:
        return float(v)
    except ValueError:
        return None
print(f"\n{rows['buildkit']['dockerfile']}, medians of {rows['buildkit']['reps']}, seconds")
print("| builder | " + " | ".join(c[1] for c in cols) + " |")
print("|---|" + "---:|" * len(cols))
for name, r in rows.items():
    print(f"| {name} | " + " | ".join(r[c] for c, _ in cols) + " |")
for name in ("pallet-rootless", "pallet-rootless-trees", "pallet-chroot"):
    for base in ("pallet-root", "buildkit"):
        if name in rows and base in rows:
            ratios = []
            for c, _ in cols:
                a, b = num(rows[base][c]), num(rows[name][c])
                ratios.append("%.2fx" % (b / a) if a and b is not None else "NA")
            print(f"| {name} / {base} | " + " | ".join(ratios) + " |")
if "pallet-root" in rows:
    ratios = []
    for c, _ in cols:
        a, b = num(rows["buildkit"][c]), num(rows["pallet-root"][c])
        ratios.append("%.2fx" % (b / a) if a and b is not None else "NA")
    print("| pallet-root / buildkit | " + " | ".join(ratios) + " |")
PY
grep -h "^isolation: " /var/tmp/peers/results/log-*.txt 2>/dev/null | sort | uniq -c >&2 || true
