//! pallet: a daemonless container image builder.
//!
//! The flow runs one way: `frontend` (Dockerfile -> graph) -> `graph` (content-addressed ops)
//! -> solver -> exec -> snapshot -> export. Today the frontend and the graph exist; the CLI in
//! `cli` is a thin layer over them.

pub mod build;
pub mod cli;
pub mod exec;
pub mod export;
mod fill;
pub mod frontend;
pub mod graph;
pub mod image;
pub mod progress;
pub mod run;
pub mod snapshot;
pub mod solver;
pub mod ssh;
pub mod store;
