//! The registry client's integration tests, in one test binary (each module was a binary of its
//! own). The registry they talk to is `testkit::docker_registry`. One module's tests:
//! `cargo test -p pallet-registry --test suite push_pull::`.

mod certs_d;
mod credentials;
mod faults;
mod push_pull;
mod reference;
mod tls_auth;
