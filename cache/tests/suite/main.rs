//! The cache crate's integration tests, in one test binary (each module was a binary of its
//! own). One module's tests: `cargo test -p pallet-cache --test suite blobs::`.

mod blobs;
mod damaged_index;
mod index;
mod multiprocess;
mod root;
