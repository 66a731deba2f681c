//! pallet's test kit: what the integration tests of builder, cache and registry share, written
//! once. Each module owns one thing:
//!
//! - [`pallet`]: the pallet binary as a test runs it ([`Pallet`], made by [`pallet!`]);
//! - [`run`]: other programs (skopeo, umoci, git, ...) run to success, and output as text;
//! - [`gate`]: whether a test can run here (root, tools, busybox-static), with the CI=true rule;
//! - [`busybox`]: the busybox-static root file tree every image test starts from;
//! - [`store`]: a pallet store in a temp dir, with busybox:latest imported;
//! - [`pip_cache`]: a synthetic pip cache (seeded layout, sizes and contents) for cache-mount
//!   transport tests and benches;
//! - [`peer_base`]: the busybox and Debian base tars of the BuildKit parity harness;
//! - [`files`]: writing, reading and listing files, temp dirs, build contexts;
//! - [`tree`]: file trees (from a directory or from image layers) and their differences;
//! - [`oci_layout`]: reading an OCI image layout directory;
//! - [`progress`]: pallet's progress output, JSON events and plain lines;
//! - [`repo`]: the repository's own files (testdata/) and the optional ../shared corpus;
//! - [`user`]: a normal user made for a test, with or without subordinate ids (rootless);
//! - [`wait`]: polling with a deadline (a condition, a child's exit);
//! - [`git`]: git with no user or system configuration, for repositories a test makes;
//! - [`net`]: a free port on 127.0.0.1, and waiting for a server to listen on it;
//! - [`digest`]: OCI digests of bytes;
//! - [`self_exec`]: re-running one test of the current test binary in a child process;
//! - [`connect_proxy`]: an HTTP CONNECT proxy that records what it tunnels;
//! - [`docker_registry`]: a real `docker-registry` on 127.0.0.1 (plain, TLS, htpasswd, token),
//!   its token issuer and a fault-injecting proxy;
//! - [`registry_client`]: pallet's registry client set up for such a registry, and small
//!   synthetic images to push.
//!
//! The kit knows nothing of pallet's library: tests drive the binary, or call the library
//! themselves. The binary's path comes from the test (`env!("CARGO_BIN_EXE_pallet")` exists
//! only in builder's tests), which is what [`pallet!`] expands to.

pub mod busybox;
pub mod connect_proxy;
pub mod digest;
pub mod docker_registry;
pub mod files;
pub mod gate;
pub mod git;
pub mod net;
mod note;
pub mod oci_layout;
pub mod pallet;
pub mod peer_base;
pub mod pip_cache;
pub mod progress;
pub mod registry_client;
pub mod repo;
pub mod rng;
pub mod run;
pub mod self_exec;
pub mod store;
pub mod tree;
pub mod user;
pub mod wait;

pub use gate::{require, Need};
pub use pallet::Pallet;
pub use run::text;
pub use store::Store;
