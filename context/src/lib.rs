//! The build context as a set of paths: which `.dockerignore` applies and what it keeps
//! (`dockerignore`), and the walk that lists the kept files with their metadata (`walk`).
//! The frontend reads the patterns into the graph; the file ops and the context hashing in
//! the solver ask the matcher and walk. Like ripgrep's `ignore`, it answers "which paths are
//! in" and knows nothing of what is done with them.

pub mod dockerignore;
pub mod walk;

pub use dockerignore::{IgnoreError, IgnoreFile, Matcher, DOCKERIGNORE};
