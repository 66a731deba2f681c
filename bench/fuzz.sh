#!/usr/bin/env bash
# Coverage-guided fuzzing of pallet's input parsers (issue 13, "Fuzzing"): builds the libFuzzer
# targets of fuzz/ and runs each one for a while, starting from its seed corpus in
# fuzz/corpus/<target>/, then prints per target the runs executed, the coverage (edges and
# features, as libFuzzer counts them), the corpus size and the crashes. Exits non-zero when a
# target crashed (a panic, a failed invariant, a timeout or an out-of-memory): the input is
# kept in fuzz/artifacts/<target>/ (ignored by git) and its message is printed.
#
#   bash bench/fuzz.sh                  # every target, FUZZ_MINUTES each (default 10)
#   bash bench/fuzz.sh unpack manifest  # some targets
#   bash bench/fuzz.sh --ci             # CI's smoke run: FUZZ_SECONDS each (default 20), an
#                                       # unoptimized build (FUZZ_PROFILE=dev), quick to build
#   bash bench/fuzz.sh --merge          # also add the inputs that found new coverage to
#                                       # fuzz/corpus/ (otherwise the repo is left as it was)
#   bash bench/fuzz.sh --build-only
#   FUZZ_ARGS="-dict=... -only_ascii=1" bash bench/fuzz.sh dockerfile  # more libFuzzer flags
#
# No cargo-fuzz binary and no nightly are needed: the targets are built by cargo with the
# RUSTFLAGS that `cargo fuzz build` (0.13, `--sanitizer none`, its default release mode with
# debug assertions) passes (installing cargo-fuzz would cost CI ~2.5 min for nothing). Those are all stable codegen flags (SanitizerCoverage through
# `-Cpasses=sancov-module` and `-Cllvm-args`), and libfuzzer-sys compiles libFuzzer with the
# system's C++ compiler. `cargo fuzz run <target>` in fuzz/ works as well, and shares
# fuzz/target/ with this script; it does not sandbox the unpack target (see below).
#
# The unpack and add_unpack targets write files: they run in a private mount namespace (unshare, as root)
# where every filesystem is read-only except its scratch, corpus and artifact directories, so a
# write that escapes the destination fails with EROFS, which the target reports as a crash,
# instead of landing on the host. Without unshare it runs unsandboxed, with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

all_targets=(dockerfile shell_word dockerignore unpack add_unpack manifest reference mount_manifest cache_config path_index)
ci=0 merge=0 build_only=0 targets=()
for arg in "$@"; do
  case $arg in
    --ci) ci=1 ;;
    --merge) merge=1 ;;
    --build-only) build_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $arg" >&2; exit 2 ;;
    *)
      if [[ " ${all_targets[*]} " != *" $arg "* ]]; then
        echo "fuzz.sh: no target $arg (targets: ${all_targets[*]})" >&2
        exit 2
      fi
      targets+=("$arg")
      ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
if [ $ci = 1 ]; then
  seconds=${FUZZ_SECONDS:-20}
  profile=${FUZZ_PROFILE:-dev}
else
  seconds=${FUZZ_SECONDS:-$((${FUZZ_MINUTES:-10} * 60))}
  profile=${FUZZ_PROFILE:-release}
fi

# --- build -------------------------------------------------------------------------------------
triple=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${FUZZ_TARGET_DIR:-$repo/fuzz/target}
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
flags+=" -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
flags+=" -Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions"
# release: what `cargo fuzz build` does (optimized, one codegen unit per crate so that inlining
# survives the instrumentation), ~7 min cold on 2 cores. dev (CI's smoke run): unoptimized,
# ~3x quicker to build cold, several times slower to run, which 20 s of replaying the corpus
# and fuzzing a little can afford.
case $profile in
  release)
    flags+=" -Ccodegen-units=1"
    profile_args=(--release --config 'profile.release.debug="line-tables-only"')
    profile_dir=release
    ;;
  dev)
    profile_args=(--config 'profile.dev.debug="line-tables-only"')
    profile_dir=debug
    ;;
  *) echo "fuzz.sh: FUZZ_PROFILE is release or dev" >&2; exit 2 ;;
esac
command -v c++ >/dev/null 2>&1 || {
  echo "fuzz.sh: libfuzzer-sys needs a C++ compiler (apt-get install g++)" >&2
  exit 1
}
# fuzz/ is its own workspace: a dependency added to a pallet crate changes its lock file too.
if ! cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null 2>&1; then
  echo "fuzz.sh: fuzz/Cargo.lock is out of date with the crates it fuzzes (a dependency changed);" >&2
  echo "  run: cargo metadata --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null" >&2
  echo "  and commit fuzz/Cargo.lock" >&2
  exit 1
fi
echo "fuzz: building ${#all_targets[@]} targets ($profile; libFuzzer, SanitizerCoverage) into $target_dir"
build_start=$(date +%s)
RUSTFLAGS="$flags ${RUSTFLAGS:-}" cargo build --locked --quiet \
  --manifest-path fuzz/Cargo.toml --target "$triple" --target-dir "$target_dir" \
  "${profile_args[@]}" --bins
build_secs=$(($(date +%s) - build_start))
echo "fuzz: built in ${build_secs}s"
[ $build_only = 0 ] || exit 0
bin_dir=$target_dir/$triple/$profile_dir

# --- the unpack target's sandbox ---------------------------------------------------------------
# Runs "$@" with every mount read-only except the directories in $writable (space-separated).
sandboxed() {
  WRITABLE="$writable" unshare --mount --propagation private -- bash -c '
    set -e
    for d in $WRITABLE; do mount --bind "$d" "$d"; done
    while read -r _ _ _ _ point _; do
      case " $WRITABLE " in *" $point "*) continue ;; esac
      case $point in
        /proc | /proc/* | /sys | /sys/* | /dev | /dev/pts | /dev/mqueue | *\\*) continue ;;
      esac
      mount -o remount,bind,ro "$point" 2>/dev/null || true
    done < /proc/self/mountinfo
    if touch /.pallet-fuzz-probe 2>/dev/null; then
      rm -f /.pallet-fuzz-probe
      echo "fuzz.sh: / is still writable in the sandbox" >&2
      exit 1
    fi
    exec "$@"' bash "$@"
}
can_sandbox=0
if [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
  can_sandbox=1
fi

# The targets that write files (layer and ADD extraction): sandboxed, inputs capped.
writes_files() { [ "$1" = unpack ] || [ "$1" = add_unpack ]; }

# --- runs --------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/pallet-fuzz.XXXXXX")
scratch=""
trap 'rm -rf "$work" ${scratch:+"$scratch"}' EXIT
summary=$work/summary
failed=0 crashed=0
# The unpack target creates and deletes a few dozen files per input: on tmpfs when there is one.
scratch_base=${TMPDIR:-/tmp}
[ -w /dev/shm ] && [ -d /dev/shm ] && scratch_base=/dev/shm
total_start=$(date +%s)
for t in "${targets[@]}"; do
  seeds=$repo/fuzz/corpus/$t
  mkdir -p "$seeds" "$work/$t/corpus" "$repo/fuzz/artifacts/$t"
  scratch=$(mktemp -d "$scratch_base/pallet-fuzz-$t.XXXXXX")
  artifacts=$(mktemp -d "$repo/fuzz/artifacts/$t/run.XXXXXX")
  log=$work/$t/log
  limits=(-timeout=25 -rss_limit_mb=2048)
  ! writes_files "$t" || limits+=(-max_len=16384)
  # shellcheck disable=SC2206 # FUZZ_ARGS: more libFuzzer flags, split at spaces
  limits+=(${FUZZ_ARGS:-})
  run=("$bin_dir/$t" -max_total_time="$seconds" "${limits[@]}" -print_final_stats=1
    -artifact_prefix="$artifacts/" "$work/$t/corpus" "$seeds")
  note=""
  start=$(date +%s)
  set +e
  if writes_files "$t" && [ $can_sandbox = 1 ]; then
    writable="$work $scratch $artifacts" TMPDIR=$scratch sandboxed "${run[@]}" >"$log" 2>&1
  else
    ! writes_files "$t" || note=" (not sandboxed: needs root and unshare)"
    TMPDIR=$scratch "${run[@]}" >"$log" 2>&1
  fi
  status=$?
  set -e
  secs=$(($(date +%s) - start))
  # libFuzzer's last status line: "#RUNS DONE cov: EDGES ft: FEATURES corp: N/SIZE ...".
  last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse|RELOAD)' "$log" | tail -n 1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
  nseeds=$(find "$seeds" -type f | wc -l)
  crashes=$(find "$artifacts" -type f | wc -l)
  if [ "$status" != 0 ] && [ "$crashes" = 0 ]; then
    crashes=1 # died without an artifact (e.g. the sandbox failed): still a failure
  fi
  execs_per_s=$(( ${runs:-0} / (secs > 0 ? secs : 1) ))
  line=$(printf '%-13s %11s %8s %7s %7s %14s %10s %6s %7s%s' "$t" "${runs:-?}" "$execs_per_s" \
    "${cov:-?}" "${ft:-?}" "$nseeds -> ${corp%%/*}" "${corp#*/}" "${rss:-?}" "$crashes" "$note")
  echo "$line" >>"$summary"
  echo "fuzz: $line (${secs}s)"
  if [ "$crashes" != 0 ]; then
    failed=1 crashed=$((crashed + 1))
    echo "fuzz: $t CRASHED (libFuzzer exit $status); inputs kept in $artifacts:"
    find "$artifacts" -type f | sed 's/^/    /'
    grep -E -A6 "panicked at|ERROR: libFuzzer|SUMMARY|fuzz.sh:" "$log" | head -n 40 | sed 's/^/    /'
    cp "$log" "$artifacts/libfuzzer.log"
  else
    rmdir "$artifacts" 2>/dev/null || true
  fi
  if [ $merge = 1 ] && [ "$crashes" = 0 ]; then
    before=$nseeds
    merge_run=("$bin_dir/$t" -merge=1 "${limits[@]}" "$seeds" "$work/$t/corpus")
    if writes_files "$t" && [ $can_sandbox = 1 ]; then
      writable="$work $scratch $seeds" TMPDIR=$scratch sandboxed "${merge_run[@]}" >"$log.merge" 2>&1
    else
      TMPDIR=$scratch "${merge_run[@]}" >"$log.merge" 2>&1
    fi
    echo "fuzz: $t: merged into fuzz/corpus/$t: $before -> $(find "$seeds" -type f | wc -l) inputs"
  fi
  rm -rf "$scratch"
done

total=$(($(date +%s) - total_start))
echo
echo "fuzz results: ${seconds}s per target ($profile build), build ${build_secs}s, runs ${total}s ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
printf '%-13s %11s %8s %7s %7s %14s %10s %6s %7s\n' target runs exec/s edges features \
  "corpus" "corp size" "rss MB" crashes
cat "$summary"
# The last line, which scripts/test.sh counts: targets run, targets that crashed.
echo "fuzz: ${#targets[@]} targets, $crashed crashed"
exit $failed
