//! What a hostile RUN step (or `pallet run` command) may do inside its container: issue 13,
//! defect 2 found no seccomp filter (`Seccomp: 0`), and `unshare -U -r -m` then `mount -t
//! tmpfs` worked. Now: filter mode 2, a user namespace, a mount namespace and mount itself
//! refused, and a pids limit in the step's cgroup.

use super::case;
use super::kit::*;

/// The probe: prints `seccomp=N`, one `NAME=ok|denied` per attempt, and the pids limit.
/// `busybox unshare` is called by its applet name so that the image's links do not matter.
const PROBE: &str = "grep '^Seccomp:' /proc/self/status | tr -d ' \\t' | sed 's/Seccomp:/seccomp=/'; \
    if busybox unshare -U -r true 2>/dev/null; then echo userns=ok; else echo userns=denied; fi; \
    if busybox unshare -U -r -m busybox mount -t tmpfs none /mnt 2>/dev/null; then echo userns-mount=ok; else echo userns-mount=denied; fi; \
    if busybox unshare -m true 2>/dev/null; then echo mountns=ok; else echo mountns=denied; fi; \
    if busybox mount -t tmpfs none /mnt 2>/dev/null; then echo mount=ok; else echo mount=denied; fi; \
    echo pids=$(cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null | head -n1)";

/// Checks the probe's answers.
fn assert_confined_process(out: &str, what: &str) {
    let want = [
        "seccomp=2",
        "userns=denied",
        "userns-mount=denied",
        "mountns=denied",
        "mount=denied",
    ];
    for w in want {
        assert!(
            out.lines().any(|l| l.trim() == w),
            "{what}: expected {w}:\n{out}"
        );
    }
    let pids = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("pids="))
        .unwrap_or("");
    assert!(
        pids.parse::<u64>().is_ok_and(|n| n > 0 && n < 1_000_000),
        "{what}: the pids limit is {pids:?}, not a number:\n{out}"
    );
}

/// Issue 13, defect 2, in a RUN step: the probe's answers are in the built image.
#[test]
fn a_run_step_is_under_seccomp_and_cannot_unshare_or_mount() {
    if !can_run("seccomp in a RUN step") {
        return;
    }
    let c = case("seccomp-run-step");
    let arena = Arena::busybox();
    arena.dockerfile(&format!("FROM busybox\nRUN ( {PROBE} ) > /probe\n"));
    let dest = arena.out("probe");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    ran.succeeded();
    assert_confined_process(&testkit::files::read(&dest.join("probe")), "RUN");
    arena.assert_confined(c, &[&ran]);
}

/// The same for `pallet run`.
#[test]
fn pallet_run_is_under_seccomp_and_cannot_unshare_or_mount() {
    if !can_run("seccomp in pallet run") {
        return;
    }
    let c = case("seccomp-pallet-run");
    let arena = Arena::busybox();
    let ran = run(&arena.pallet().args(["run", "busybox", "sh", "-c", PROBE]));
    ran.succeeded();
    assert_confined_process(&ran.out(), "pallet run");
    arena.assert_confined(c, &[&ran]);
}
