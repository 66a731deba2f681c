//! The Dockerfile frontend end to end: `frontend::parser::parse`, the AST dump, then
//! `frontend::lower::lower` (default options) with the offline resolver and with one that
//! gives every base image a config (Env, WorkingDir, User, Shell and ONBUILD triggers), and
//! every error rendered against the text as the CLI does.
//!
//! Invariants: never a panic; a lowered graph holds its root, lists each vertex once, after
//! its inputs (topological order), under the digest of its op and inputs; the target is one
//! of the lowered stages; the image config serializes.
#![no_main]

use std::collections::HashSet;

use frontend::diagnostic::FrontendError;
use frontend::lower::{lower, LowerOptions, Lowered, Offline};
use graph::image::{Config, Image};
use graph::resolve::{ImageResolver, ResolveError, ResolvedImage};
use graph::Platform;
use libfuzzer_sys::fuzz_target;

/// Every image has the same config, with ONBUILD triggers that run when a stage uses it.
struct Configured;

impl ImageResolver for Configured {
    fn resolve(
        &self,
        reference: &str,
        _: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        let config = Config {
            env: vec![
                "PATH=/usr/local/bin:/usr/bin:/bin".into(),
                "HOME=/root".into(),
            ],
            working_dir: "/app".into(),
            user: "1000:1000".into(),
            shell: vec!["/bin/sh".into(), "-ec".into()],
            on_build: vec![
                "ARG OB=1".into(),
                "RUN echo $OB".into(),
                "COPY . /src".into(),
            ],
            ..Config::default()
        };
        Ok(Some(ResolvedImage {
            reference: format!("{reference}@sha256:{}", "ab".repeat(32)),
            image: Image {
                architecture: "amd64".into(),
                os: "linux".into(),
                config,
                ..Image::default()
            },
        }))
    }
}

fn check(lowered: &Lowered) {
    let graph = &lowered.graph;
    let mut seen = HashSet::new();
    for v in &graph.vertices {
        for input in &v.inputs {
            assert!(
                seen.contains(input.as_str()),
                "vertex {} uses {input}, which is not before it",
                v.digest
            );
        }
        assert_eq!(
            graph::digest_of(&v.op, &v.inputs),
            v.digest,
            "vertex digest"
        );
        assert!(seen.insert(v.digest.as_str()), "vertex {} twice", v.digest);
    }
    assert!(
        graph.get(&lowered.root).is_some(),
        "the root {} is not in the graph",
        lowered.root
    );
    assert!(
        lowered.stages.contains(&lowered.target),
        "target {} not among the stages {:?}",
        lowered.target,
        lowered.stages
    );
    serde_json::to_vec(&lowered.image).expect("the image config serializes");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let df = match frontend::parser::parse(data) {
        Ok(df) => df,
        Err(e) => {
            let _ = FrontendError::from(e).render("Dockerfile", &text);
            return;
        }
    };
    let _ = frontend::parser::dump(&df);
    let opts = LowerOptions::default();
    for resolver in [&Offline as &dyn ImageResolver, &Configured] {
        match lower(&df, &opts, resolver) {
            Ok(lowered) => check(&lowered),
            Err(e) => {
                let _ = e.render("Dockerfile", &text);
            }
        }
    }
});
