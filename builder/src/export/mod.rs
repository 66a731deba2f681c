//! Export: a built image out of the store: OCI image layouts (a directory or a tar), Docker
//! archives for `docker load`, a local file tree, and pushes to a registry. Layer blobs come
//! from the store's compressed forms (compressed once per diff id and compression, then
//! reused). Attestations (`--provenance`) ride beside each image manifest under an index
//! (`attestation`). Knows images, blobs and the store; not builds or the solver.

pub mod annotations;
pub mod attestation;
pub mod docker;
pub mod local;
pub mod push;
