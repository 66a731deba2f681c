//! HEALTHCHECK: `CMD` (shell or exec form) with its interval flags, or `NONE`, validated as
//! BuildKit's `parseHealthcheck` does (Go durations, 1ms minimum, non-negative retries).
//! What it does to the image config is lowering's.

use super::flags::Flags;
use super::{Command, Healthcheck};
use crate::ast::Node;
use crate::diagnostic::FrontendError;
use crate::duration;

pub(super) fn parse(node: &Node, flags: Flags) -> Result<Command, FrontendError> {
    let Some(first) = node.args.first() else {
        return Err(error(node, "HEALTHCHECK requires at least one argument")
            .with_hint("write HEALTHCHECK CMD command or HEALTHCHECK NONE"));
    };
    let typ = first.to_uppercase();
    let rest = &node.args[1..];
    if typ == "NONE" {
        return parse_none(node, flags, rest);
    }
    parse_cmd(node, flags, &typ, rest)
}

fn error(node: &Node, message: impl Into<String>) -> FrontendError {
    FrontendError::new(message, node.span)
}

/// `HEALTHCHECK NONE`: no arguments and no flags (the help line would list CMD's).
fn parse_none(node: &Node, mut flags: Flags, rest: &[String]) -> Result<Command, FrontendError> {
    if !rest.is_empty() {
        return Err(error(node, "HEALTHCHECK NONE takes no arguments"));
    }
    flags.parse().map_err(|e| e.at_without_hint(node.span))?;
    Ok(Command::Healthcheck(Healthcheck {
        test: vec!["NONE".into()],
        interval: 0,
        timeout: 0,
        start_period: 0,
        start_interval: 0,
        retries: 0,
    }))
}

/// `HEALTHCHECK [--interval=...] CMD command`: the command in exec (`CMD`) or shell
/// (`CMD-SHELL`) form, with its durations and retries.
fn parse_cmd(
    node: &Node,
    mut flags: Flags,
    typ: &str,
    rest: &[String],
) -> Result<Command, FrontendError> {
    flags
        .declare_string("interval")
        .declare_string("timeout")
        .declare_string("start-period")
        .declare_string("start-interval")
        .declare_string("retries");
    flags.parse().map_err(|e| e.at(node.span))?;
    if typ != "CMD" {
        return Err(error(
            node,
            format!("Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"),
        ));
    }
    let cmd: Vec<String> = if node.json {
        rest.to_vec()
    } else if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err(error(node, "Missing command after HEALTHCHECK CMD"));
    }
    let kind = if node.json { "CMD" } else { "CMD-SHELL" };
    let retries = retries(node, &flags)?;
    Ok(Command::Healthcheck(Healthcheck {
        test: std::iter::once(kind.to_string()).chain(cmd).collect(),
        interval: duration_flag(node, &flags, "interval")?,
        timeout: duration_flag(node, &flags, "timeout")?,
        start_period: duration_flag(node, &flags, "start-period")?,
        start_interval: duration_flag(node, &flags, "start-interval")?,
        retries,
    }))
}

/// A duration flag in nanoseconds (0 when not given); BuildKit's minimum is 1ms.
fn duration_flag(node: &Node, flags: &Flags, name: &'static str) -> Result<i64, FrontendError> {
    let Some(v) = flags.string(name) else {
        return Ok(0);
    };
    let d = duration::parse(&v)
        .map_err(|e| FrontendError::from_cause(e, node.span).with_needle(format!("--{name}")))?;
    if d != 0 && d < 1_000_000 {
        return Err(
            error(node, format!("Interval \"{name}\" cannot be less than 1ms"))
                .with_needle(format!("--{name}")),
        );
    }
    Ok(d)
}

/// `--retries`: a non-negative integer (Go's strconv message when it is not a number).
fn retries(node: &Node, flags: &Flags) -> Result<i64, FrontendError> {
    let Some(v) = flags.string("retries") else {
        return Ok(0);
    };
    let n: i64 = v.parse().map_err(|_| {
        error(
            node,
            format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"),
        )
        .with_needle("--retries")
    })?;
    if n < 0 {
        return Err(error(node, format!("--retries cannot be negative ({n})")));
    }
    Ok(n)
}
