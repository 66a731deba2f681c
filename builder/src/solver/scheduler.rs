//! The scheduler: runs a graph's vertices as soon as their inputs are done, independent ones at
//! the same time. A RUN step waits on its container on a thread of its own; everything else
//! (file ops, hashing, sources) runs on the rayon pool, so the pool is never blocked on a
//! container (DESIGN.md: 2 cores = 2 rayon threads). After the first failure nothing new
//! starts; what is running finishes. Knows vertices and their dependencies, not what they do.

use super::{CacheKey, Output, SolveError};
use graph::{Graph, Op, Vertex};
use std::collections::HashMap;
use std::sync::mpsc;

/// What a vertex gives the vertices that use it: its output and its cache key.
pub(super) type Done = (Output, CacheKey);

/// Runs one vertex given its inputs' results, in input order.
pub(super) type RunVertex<'a, 'g> =
    dyn Fn(&'g Vertex, Vec<Done>) -> Result<Done, SolveError> + Sync + 'a;

/// The results of the vertices that finished, by digest, and the first failure.
pub(super) struct Finished<'g> {
    pub results: HashMap<&'g str, Done>,
    pub failure: Option<SolveError>,
}

/// Runs every vertex of `graph` with `run`, RUN steps on scoped threads of `threads`, the rest
/// on rayon.
pub(super) fn run_all<'scope, 'env, 'g>(
    graph: &'g Graph,
    threads: &'scope std::thread::Scope<'scope, 'env>,
    run: &'scope RunVertex<'scope, 'g>,
) -> Finished<'g>
where
    'g: 'scope,
{
    let by_digest: HashMap<&str, &Vertex> = graph
        .vertices
        .iter()
        .map(|v| (v.digest.as_str(), v))
        .collect();
    let mut remaining: HashMap<&str, usize> = HashMap::new();
    let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
    for v in &graph.vertices {
        let mut unique: Vec<&str> = v.inputs.iter().map(graph::Digest::as_str).collect();
        unique.sort();
        unique.dedup();
        remaining.insert(&v.digest, unique.len());
        for i in unique {
            users.entry(i).or_default().push(&v.digest);
        }
    }
    let mut ready: Vec<&str> = remaining
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(d, _)| *d)
        .collect();
    ready.sort();
    let mut results: HashMap<&'g str, Done> = HashMap::new();
    let (tx, rx) = mpsc::channel::<(&'g str, Result<Done, SolveError>)>();
    let mut running = 0usize;
    let mut failure: Option<SolveError> = None;
    rayon::in_place_scope(|pool| loop {
        while failure.is_none() {
            let Some(d) = ready.pop() else { break };
            let v: &'g Vertex = by_digest[d];
            let inputs: Vec<Done> = v
                .inputs
                .iter()
                .map(|i| results[i.as_str()].clone())
                .collect();
            let tx = tx.clone();
            running += 1;
            let job = move || {
                let r = run(v, inputs);
                let _ = tx.send((v.digest.as_str(), r));
            };
            if matches!(v.op, Op::Exec(_)) {
                threads.spawn(job);
            } else {
                pool.spawn(move |_| job());
            }
        }
        if running == 0 {
            break;
        }
        let (d, r) = rx.recv().expect("a running step reports back");
        running -= 1;
        match r {
            Ok(out) => {
                results.insert(d, out);
                for u in users.get(d).into_iter().flatten() {
                    let n = remaining.get_mut(u).expect("user is a vertex");
                    *n -= 1;
                    if *n == 0 {
                        ready.push(u);
                    }
                }
            }
            Err(e) => {
                if failure.is_none() {
                    failure = Some(e);
                }
            }
        }
    });
    Finished { results, failure }
}
