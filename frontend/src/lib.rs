//! The Dockerfile frontend, one way: text -> AST (`parser`, into `ast`) -> typed
//! instructions (`instructions`) -> words expanded with the stage's variables (`shell`) -> the
//! graph (`lower`). Beside them: BuildKit's lint rules (`lint`), Go's durations (`duration`),
//! and the errors users see (`diagnostic`).
//!
//! Errors: each module has its own typed error (a `MountError`, a `FlagError`, ...), which
//! becomes a `diagnostic::FrontendError` (or, in the parser, an `ast::ParseError`) where the
//! Dockerfile span is known, and stays behind it as its `source()`; its message is part of
//! the located error's, so what users read does not depend on who renders it.
//!
//! It knows nothing of how ops execute, of stores or of registries: its output is the `graph`
//! crate's ops and image config, and the one question it asks back ("what is this base
//! image's config?") goes through `graph::resolve::ImageResolver`. Cargo enforces that: this
//! crate depends on `graph` and on docker's reference grammar (`reference`) only (and on
//! thiserror and serde).

pub mod ast;
pub mod diagnostic;
pub mod duration;
pub mod instructions;
pub mod lint;
pub mod lower;
pub mod outline;
pub mod parser;
pub mod shell;
