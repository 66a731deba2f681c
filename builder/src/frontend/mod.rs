//! The Dockerfile frontend: text -> AST (`parser`) -> typed instructions (`instructions`) ->
//! expanded words (`shell`) -> the graph (`lower`). Also `.dockerignore` matching.
//!
//! It knows nothing of how ops execute; its output is `crate::graph`.

pub mod ast;
pub mod context_walk;
pub mod diagnostic;
pub mod dockerignore;
pub mod duration;
pub mod instructions;
pub mod lint;
pub mod lower;
pub mod parser;
pub mod shell;
