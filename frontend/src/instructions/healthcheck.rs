//! HEALTHCHECK: `CMD` (shell or exec form) with its interval flags, or `NONE`, validated as
//! BuildKit's `parseHealthcheck` does (Go durations, 1ms minimum, non-negative retries).

use super::flags::Flags;
use super::{Command, Healthcheck};
use crate::ast::Node;
use crate::diagnostic::FrontendError;
use crate::duration;

pub(super) fn parse(node: &Node, mut flags: Flags) -> Result<Command, FrontendError> {
    let err = |msg: String| FrontendError::new(msg, node.span);
    let Some(first) = node.args.first() else {
        return Err(err("HEALTHCHECK requires at least one argument".into())
            .with_hint("write HEALTHCHECK CMD command or HEALTHCHECK NONE"));
    };
    let typ = first.to_uppercase();
    let rest = &node.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(err("HEALTHCHECK NONE takes no arguments".into()));
        }
        flags.parse().map_err(|e| e.at_without_hint(node.span))?;
        return Ok(Command::Healthcheck(Healthcheck {
            test: vec!["NONE".into()],
            interval: 0,
            timeout: 0,
            start_period: 0,
            start_interval: 0,
            retries: 0,
        }));
    }
    flags
        .declare_string("interval")
        .declare_string("timeout")
        .declare_string("start-period")
        .declare_string("start-interval")
        .declare_string("retries");
    flags.parse().map_err(|e| e.at(node.span))?;
    if typ != "CMD" {
        return Err(err(format!(
            "Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"
        )));
    }
    let cmd: Vec<String> = if node.json {
        rest.to_vec()
    } else if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err(err("Missing command after HEALTHCHECK CMD".into()));
    }
    let kind = if node.json { "CMD" } else { "CMD-SHELL" };
    let interval = |name: &'static str| -> Result<i64, FrontendError> {
        let Some(v) = flags.string(name) else {
            return Ok(0);
        };
        let d = duration::parse(&v).map_err(|e| {
            FrontendError::from_cause(e, node.span).with_needle(format!("--{name}"))
        })?;
        if d != 0 && d < 1_000_000 {
            return Err(err(format!("Interval \"{name}\" cannot be less than 1ms"))
                .with_needle(format!("--{name}")));
        }
        Ok(d)
    };
    let retries = match flags.string("retries") {
        None => 0,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                err(format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"))
                    .with_needle("--retries")
            })?;
            if n < 0 {
                return Err(err(format!("--retries cannot be negative ({n})")));
            }
            n
        }
    };
    Ok(Command::Healthcheck(Healthcheck {
        test: std::iter::once(kind.to_string()).chain(cmd).collect(),
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    }))
}
