//! Running steps: RUN through an [`Executor`] (runc, an OCI runtime, today) in a root file
//! tree a snapshotter prepared, and COPY/ADD/WORKDIR as file operations (`fileop`), with the
//! image's users resolved from its /etc files (`user`) and paths resolved inside a root
//! (`rootpath`). Knows nothing of Dockerfiles, stores or snapshots' layout; takes graph ops
//! and paths.

mod chroot;
mod executor;
pub mod fileop;
mod isolation;
pub mod rootpath;
pub mod runc;
pub mod user;

pub use chroot::Chroot;
pub use executor::{Executor, Runc};
pub use isolation::{Isolation, IsolationError, IsolationMode};
pub use runc::{Privilege, RunError, RunSpec, SpecMount, Stream};
