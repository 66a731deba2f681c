//! The Dockerfile frontend: text -> AST (`parser`) -> typed instructions (`instructions`) ->
//! expanded words (`shell`) -> the graph (`lower`), with BuildKit's lint checks (`lint`) and
//! errors that carry their Dockerfile span (`diagnostic`).
//!
//! It knows nothing of how ops execute, of stores or of registries: its output is the `graph`
//! crate's ops and image config, and the one question it asks back ("what is this base
//! image's config?") goes through `graph::resolve::ImageResolver`. Cargo enforces that: this
//! crate depends on `graph` and on docker's reference grammar (`reference`) only.

pub mod ast;
pub mod diagnostic;
pub mod duration;
pub mod instructions;
pub mod lint;
pub mod lower;
pub mod parser;
pub mod shell;
