//! Cancellation (issue 13, "Faults"): Ctrl-C or SIGTERM while a RUN step's container runs.
//! pallet says so (`build cancelled (SIGINT)`), exits 128 + the signal as a shell reports it,
//! kills the step's container (no process of it is left, and `runc --root STATE list` of the
//! step's runc state dir lists nothing), and leaves none of its temporaries in the store. The
//! checks are shown to see what they look for while the build runs: the step dir, the
//! overlay mount, and the container in `runc list`.
//!
//! Needs root, runc and busybox-static; fails under CI=true without them.

use super::faults_kit::{
    figure, mounts_under, processes_mentioning, runc_list, runc_roots, signal, temporaries,
    temporaries_of, wait_no_processes, Watched,
};
use std::time::Duration;
use testkit::files::context;
use testkit::{pallet, require, wait, Need::*, Store};

#[test]
fn a_signal_during_a_run_step_stops_it_and_cleans_up() {
    if !require("cancellation test", &[Root, Busybox, Tool("runc")]) {
        return;
    }
    let store = Store::busybox(pallet!());
    let root = store.root();
    let mut cancelled = 0;
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        // A sleep no other process on the machine runs: the step's container.
        let marker = format!(
            "{}",
            7_300_000 + std::process::id() % 10_000 * 10 + sig as u32
        );
        let sleeper = format!("sleep {marker}");
        let ctx = context(
            &store.path(&format!("ctx-{name}")),
            &format!("FROM busybox\nRUN echo started > /started && {sleeper}\n"),
            &[],
        );
        let mut build = Watched::spawn(
            &store
                .pallet()
                .args(["build", "--progress", "plain"])
                .arg(&ctx),
        );
        let running = wait::until(Duration::from_secs(60), Duration::from_millis(50), || {
            !processes_mentioning(&sleeper).is_empty() || build.exited()
        });
        assert!(
            running && !build.exited(),
            "the RUN step's container never ran:\n{}",
            build.stderr()
        );
        // The check below sees the build's temporaries while it runs.
        let own = temporaries_of(root, build.pid());
        assert!(
            own.iter().any(|t| t.starts_with("tmp/pallet-")),
            "no step dir of the running build in {:?}",
            temporaries(root)
        );
        assert!(
            !mounts_under(root).is_empty(),
            "the step's overlay is not seen"
        );
        // runc's own view: the step's container, running.
        let states = runc_roots(root, build.pid());
        let listed: Vec<String> = states.iter().flat_map(|s| runc_list(s)).collect();
        assert!(
            listed.iter().any(|c| c.ends_with(" running")),
            "runc lists no running container in {states:?}: {listed:?}"
        );

        signal(build.pid(), sig);
        let status = build
            .wait_for(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("pallet still runs 30 s after {name}"));
        let stderr = build.stderr();
        assert_eq!(status.code(), Some(128 + sig), "{name}: {status}\n{stderr}");
        assert!(
            stderr.contains(&format!("build cancelled ({name})")),
            "{name}: {stderr}"
        );
        let left = wait_no_processes(&sleeper, Duration::from_secs(10));
        assert!(
            left.is_empty(),
            "{name}: the container still runs: {left:?}"
        );
        let left = wait_no_processes(&root.display().to_string(), Duration::from_secs(10));
        assert!(left.is_empty(), "{name}: processes on the store: {left:?}");
        for state in &states {
            let listed = runc_list(state);
            assert!(
                listed.is_empty(),
                "{name}: runc --root {} list: {listed:?}",
                state.display()
            );
        }
        assert_eq!(
            temporaries_of(root, build.pid()),
            Vec::<String>::new(),
            "{name}: the cancelled build's temporaries"
        );
        assert_eq!(temporaries(root), Vec::<String>::new(), "{name}");
        assert_eq!(mounts_under(root), Vec::<String>::new(), "{name}");
        cancelled += 1;
    }
    figure(&format!(
        "cancellation: {cancelled} of 2 signals during a RUN cancelled cleanly (SIGINT 130, SIGTERM 143)"
    ));
}
