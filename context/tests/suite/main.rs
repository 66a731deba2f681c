//! The build context's integration tests: `.dockerignore` matching with moby's rules and the
//! context walk, against real directories.

mod dockerignore;
