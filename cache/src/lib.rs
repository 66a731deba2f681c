//! pallet's on-disk cache: the content store (blobs by sha256 as plain files), the redb index of
//! cache keys, tags and reference counts, cache mounts, and the context-hashing memo.
//!
//! Not built yet: it arrives with the end-to-end build issue (solver, runc, layers). Nothing in
//! the frontend depends on it; this crate knows nothing of Dockerfiles.
