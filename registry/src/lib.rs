//! pallet's OCI distribution client. Today: image references parsed and normalized as docker
//! does. Pull, push and auth arrive with the registry issue. Knows nothing of builds.

pub mod reference;

pub use reference::{Reference, ReferenceError};
