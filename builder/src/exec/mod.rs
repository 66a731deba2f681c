//! Running steps: RUN through runc (an OCI runtime) on an overlay of snapshots, and COPY/ADD/
//! WORKDIR as file operations. Knows nothing of Dockerfiles; takes graph ops and paths.

pub mod fileop;
pub mod overlay;
pub mod rootpath;
pub mod runc;
pub mod user;

pub use overlay::Overlay;
pub use runc::{run, RunError, RunSpec, SpecMount};
