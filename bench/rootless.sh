#!/usr/bin/env bash
# Rootless mode beside root mode, in one run on this machine (issue 14's target: rootless
# within 1.15x of root): testdata/examples/ml-busybox (three stages, a cache mount, RUN steps)
# on a busybox-static base, each scenario timed from the shell, a fresh store per repetition:
# cold build, no-op rebuild, one source file edited, requirements edited. Also the fixed cost
# of entering the user namespace (`pallet images` on an empty store). Root and rootless
# repetitions alternate, so load from other processes falls on both.
#
# Usage: bash bench/rootless.sh [-r REPS]   (needs root: it makes a user with a subuid range,
# removed at the end; release build of pallet)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
reps=5
while getopts r: o; do
  case $o in
    r) reps=$OPTARG ;;
    *) sed -n 2,10p "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/rootless.sh needs root (it makes a test user)" >&2; exit 1; }
bash "$here/scripts/ensure-tools.sh" >&2
cargo build --release --locked -p pallet-builder --manifest-path "$here/Cargo.toml" >&2

user=pbench$$
work=$(mktemp -d /var/tmp/pallet-rootless-bench.XXXXXX)
cleanup() {
  userdel -r -f "$user" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
touch "$work/log" && chmod 666 "$work/log"
useradd --create-home --user-group -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
usermod --add-subuids 2100000000-2100065535 --add-subgids 2100000000-2100065535 "$user"
home=$(getent passwd "$user" | cut -d: -f6)
install -m 755 "$here/target/release/pallet" "$work/pallet"
bash "$here/scripts/make-busybox-rootfs.sh" "$work/busybox.tar" >/dev/null
chmod 644 "$work/busybox.tar"

as_user() {
  setpriv --reuid="$user" --regid="$user" --clear-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" USER="$user" "$@"
}
# run MODE CMD...: as root, or as the user (rootless mode)
run() {
  local mode=$1
  shift
  if [ "$mode" = root ]; then "$@"; else as_user "$@"; fi
}
# timed MODE CMD...: "WALL/CPU" seconds (CPU: user + system of pallet and what it waited for,
# runc included: less sensitive than wall time to other processes on a shared machine), to
# stdout; the command's output to the log. The user's timing starts after setpriv, so both
# modes time the same thing: pallet, entering its namespace or not.
timed() {
  local mode=$1
  shift
  run "$mode" python3 -c '
import resource, subprocess, sys, time
log = open(sys.argv[1], "a")
before = resource.getrusage(resource.RUSAGE_CHILDREN)
start = time.perf_counter()
code = subprocess.run(sys.argv[2:], stdout=log, stderr=log).returncode
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print("%.4f/%.4f" % (wall, cpu))
sys.exit(code)
' "$work/log" "$@" || { echo "failed: $*" >&2; tail -20 "$work/log" >&2; exit 1; }
}

results=$work/results
: >"$results"
for i in $(seq "$reps"); do
  for mode in root rootless; do
    if [ "$mode" = root ]; then base=$work; else base=$home; fi
    store=$base/store-$mode-$i
    ctx=$base/ctx-$mode-$i
    cp -r "$here/testdata/examples/ml-busybox" "$ctx"
    [ "$mode" = root ] || chown -R "$user:$user" "$ctx"
    p=("$work/pallet" --root "$store")
    enter=$(timed "$mode" "${p[@]}" images)
    run "$mode" "${p[@]}" import "$work/busybox.tar" -t busybox:latest >>"$work/log" 2>&1
    cold=$(timed "$mode" "${p[@]}" build --progress plain -t ml "$ctx")
    noop=$(timed "$mode" "${p[@]}" build --progress plain -t ml "$ctx")
    run "$mode" sh -c "echo '# edited' >> '$ctx/src/serve.sh'"
    src=$(timed "$mode" "${p[@]}" build --progress plain -t ml "$ctx")
    run "$mode" sh -c "echo pandas >> '$ctx/requirements.txt'"
    req=$(timed "$mode" "${p[@]}" build --progress plain -t ml "$ctx")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$enter" "$cold" "$noop" "$src" "$req" >>"$results"
  done
done
grep -q "isolation: rootless (user namespace, overlayfs userxattr)" "$work/log" \
  || { echo "no rootless build in the log" >&2; exit 1; }

python3 - "$results" "$reps" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = ["images (enter)", "cold", "no-op", "1 src file", "requirements"]
for part, name in ((0, "wall"), (1, "CPU (user+sys)")):
    med = {}
    for mode in ("root", "rootless"):
        vals = [[float(v.split("/")[part]) for v in r[1:]] for r in rows if r[0] == mode]
        med[mode] = [statistics.median(c) for c in zip(*vals)]
    print(f"{name}: medians of {sys.argv[2]}, seconds")
    print("mode\t" + "\t".join(cols))
    for mode in ("root", "rootless"):
        print(mode + "\t" + "\t".join("%.3f" % v for v in med[mode]))
    print("rootless/root\t" + "\t".join("%.2fx" % (b / a) if a else "NA" for a, b in zip(med["root"], med["rootless"])))
    print()
PY
