//! AST nodes -> typed instructions, with BuildKit's validation and error texts
//! (`instructions/parse.go`). Errors carry the node's span and, where useful, the word to
//! point the caret at. Nothing is expanded here: variable values are dispatch's.

use super::flags::Flags;
use super::healthcheck;
use super::mounts::parse_mount;
use super::{
    AddCommand, ArgDef, Command, CopyCommand, InlineFile, Instruction, Instructions, KeyValue,
    RunCommand, ShellForm, SourceContent, SourcesAndDest, Stage,
};
use crate::ast::{Dockerfile, Node};
use crate::diagnostic::{suggest, FrontendError};
use crate::parser::heredoc_marker;

/// Every instruction keyword BuildKit knows.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Splits a parsed Dockerfile into global ARGs and stages (BuildKit's `instructions.Parse`).
pub fn parse_dockerfile(df: &Dockerfile) -> Result<Instructions, FrontendError> {
    let mut out = Instructions {
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for node in &df.nodes {
        match parse_any(node)? {
            Parsed::Stage(stage) => out.stages.push(stage),
            Parsed::Command(ins) => {
                match out.stages.last_mut() {
                    Some(stage) => stage.commands.push(ins),
                    None => match ins.command {
                        Command::Arg(args) => out.meta_args.push((args, ins.span)),
                        _ => return Err(FrontendError::new(
                            format!(
                                "no build stage in current context: {} comes before any FROM",
                                ins.keyword.to_uppercase()
                            ),
                            ins.span,
                        )
                        .with_hint(
                            "a Dockerfile starts with FROM IMAGE (only ARG may come before it); \
                             if this is a fragment, add the FROM line above it",
                        )),
                    },
                }
            }
        }
    }
    Ok(out)
}

enum Parsed {
    Stage(Stage),
    Command(Instruction),
}

/// Parses one non-FROM instruction (ONBUILD triggers use this too).
pub fn parse_instruction(node: &Node) -> Result<Instruction, FrontendError> {
    match parse_any(node)? {
        Parsed::Command(c) => Ok(c),
        Parsed::Stage(_) => Err(FrontendError::new("FROM is not a command here", node.span)),
    }
}

/// One instruction: FROM starts a stage, anything else is a command; each keyword has its
/// parser, which declares the flags it takes.
fn parse_any(node: &Node) -> Result<Parsed, FrontendError> {
    let flags = Flags::new(&node.flags);
    let command = match node.keyword.as_str() {
        "from" => return parse_from(node, flags).map(Parsed::Stage),
        "env" | "label" => parse_kvps(node, flags)?,
        "maintainer" => Command::Maintainer(one_arg(node, flags, "MAINTAINER")?),
        "add" => parse_add(node, flags)?,
        "copy" => parse_copy(node, flags)?,
        "onbuild" => parse_onbuild(node, flags)?,
        "workdir" => Command::Workdir(one_arg(node, flags, "WORKDIR")?),
        "run" => parse_run(node, flags)?,
        "cmd" => Command::Cmd(parse_shell_form(node, flags, false)?),
        "entrypoint" => Command::Entrypoint(parse_shell_form(node, flags, true)?),
        "healthcheck" => healthcheck::parse(node, flags)?,
        "expose" => Command::Expose(some_args(node, flags, "EXPOSE")?.to_vec()),
        "user" => Command::User(one_arg(node, flags, "USER")?),
        "volume" => parse_volume(node, flags)?,
        "stopsignal" => Command::StopSignal(one_arg(node, flags, "STOPSIGNAL")?),
        "arg" => parse_arg(node, flags)?,
        "shell" => parse_shell(node, flags)?,
        _ => return Err(unknown_instruction(node)),
    };
    Ok(Parsed::Command(Instruction {
        command,
        keyword: node.keyword.clone(),
        code: node.original.trim().to_string(),
        span: node.span,
    }))
}

fn error(node: &Node, message: impl Into<String>) -> FrontendError {
    FrontendError::new(message, node.span)
}

/// Instructions that take no flags: any flag is an error.
fn no_flags(node: &Node, mut flags: Flags) -> Result<(), FrontendError> {
    flags.parse().map_err(|e| e.at(node.span))
}

/// MAINTAINER, WORKDIR, USER, STOPSIGNAL: exactly one argument, no flags.
fn one_arg(node: &Node, flags: Flags, name: &str) -> Result<String, FrontendError> {
    if node.args.len() != 1 {
        return Err(error(node, format!("{name} requires exactly one argument")));
    }
    no_flags(node, flags)?;
    Ok(node.args[0].clone())
}

/// EXPOSE, VOLUME, ARG: at least one argument, no flags.
fn some_args<'a>(node: &'a Node, flags: Flags, name: &str) -> Result<&'a [String], FrontendError> {
    if node.args.is_empty() {
        return Err(error(
            node,
            format!("{name} requires at least one argument"),
        ));
    }
    no_flags(node, flags)?;
    Ok(&node.args)
}

/// ENV and LABEL: the parser's (key, value, delimiter) triplets; an empty delimiter is the
/// legacy `KEY value` form.
fn parse_kvps(node: &Node, flags: Flags) -> Result<Command, FrontendError> {
    no_flags(node, flags)?;
    let name = node.keyword.to_uppercase();
    let args = &node.args;
    if args.is_empty() {
        return Err(error(
            node,
            format!("{name} requires at least one argument"),
        ));
    }
    if !args.len().is_multiple_of(3) {
        return Err(error(
            node,
            format!("Bad input to {name}, too many arguments"),
        ));
    }
    let mut kvs = Vec::new();
    for t in args.chunks(3) {
        if t[0].is_empty() {
            return Err(error(node, format!("{name} names can not be blank")));
        }
        kvs.push(KeyValue {
            key: t[0].clone(),
            value: t[1].clone(),
            legacy: t[2].is_empty(),
        });
    }
    Ok(if name == "ENV" {
        Command::Env(kvs)
    } else {
        Command::Label(kvs)
    })
}

fn parse_add(node: &Node, mut flags: Flags) -> Result<Command, FrontendError> {
    need_two(node, "ADD")?;
    flags
        .declare_strings("exclude")
        .declare_string("chown")
        .declare_string("chmod")
        .declare_bool("link")
        .declare_bool("keep-git-dir")
        .declare_string("checksum")
        .declare_bool("unpack");
    flags.parse().map_err(|e| e.at(node.span))?;
    Ok(Command::Add(AddCommand {
        files: sources_and_dest(node, "ADD")?,
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link") == Some(true),
        keep_git_dir: flags.bool("keep-git-dir"),
        checksum: flags.string("checksum"),
        exclude: flags.strings("exclude"),
        unpack: flags.bool("unpack"),
    }))
}

fn parse_copy(node: &Node, mut flags: Flags) -> Result<Command, FrontendError> {
    need_two(node, "COPY")?;
    flags
        .declare_strings("exclude")
        .declare_bool("parents")
        .declare_string("chown")
        .declare_string("from")
        .declare_string("chmod")
        .declare_bool("link");
    flags.parse().map_err(|e| e.at(node.span))?;
    Ok(Command::Copy(CopyCommand {
        files: sources_and_dest(node, "COPY")?,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link") == Some(true),
        parents: flags.bool("parents") == Some(true),
        exclude: flags.strings("exclude"),
    }))
}

/// RUN: `--mount`s checked for syntax and `from` now (they are expanded at dispatch), the
/// network and security modes BuildKit knows.
fn parse_run(node: &Node, mut flags: Flags) -> Result<Command, FrontendError> {
    flags
        .declare_strings("mount")
        .declare_string("network")
        .declare_string("security");
    flags.parse().map_err(|e| e.at(node.span))?;
    let mount_specs = flags.strings("mount");
    for spec in &mount_specs {
        parse_mount(spec, None).map_err(|e| {
            FrontendError::from_cause(e, node.span).with_needle(format!("--mount={spec}"))
        })?;
    }
    let network = flags.string("network");
    if let Some(n) = &network {
        if !matches!(n.as_str(), "default" | "none" | "host") {
            return Err(error(node, format!("unsupported network mode \"{n}\""))
                .with_needle(format!("--network={n}"))
                .with_hint("use --network=default, none or host"));
        }
    }
    let security = flags.string("security");
    if let Some(s) = &security {
        if !matches!(s.as_str(), "sandbox" | "insecure") {
            return Err(error(node, format!("unsupported security mode \"{s}\""))
                .with_needle(format!("--security={s}"))
                .with_hint("use --security=sandbox or insecure"));
        }
    }
    Ok(Command::Run(RunCommand {
        cmd: shell_form(node, false),
        mount_specs,
        mounts: Vec::new(),
        network,
        security,
    }))
}

/// CMD and ENTRYPOINT (`empty_as_nil` for ENTRYPOINT's `[]`): no flags.
fn parse_shell_form(
    node: &Node,
    flags: Flags,
    empty_as_nil: bool,
) -> Result<ShellForm, FrontendError> {
    no_flags(node, flags)?;
    Ok(shell_form(node, empty_as_nil))
}

fn parse_volume(node: &Node, flags: Flags) -> Result<Command, FrontendError> {
    let mut vols = Vec::new();
    for v in some_args(node, flags, "VOLUME")? {
        let v = v.trim();
        if v.is_empty() {
            return Err(error(node, "VOLUME specified can not be an empty string"));
        }
        vols.push(v.to_string());
    }
    Ok(Command::Volume(vols))
}

/// ARG: `name[=default]` words (the default is expanded at dispatch).
fn parse_arg(node: &Node, flags: Flags) -> Result<Command, FrontendError> {
    let mut defs = Vec::new();
    for a in some_args(node, flags, "ARG")? {
        let def = match a.split_once('=') {
            Some(("", _)) => return Err(error(node, "ARG names can not be blank")),
            Some((k, v)) => ArgDef {
                key: k.into(),
                value: Some(v.into()),
            },
            None => ArgDef {
                key: a.clone(),
                value: None,
            },
        };
        defs.push(def);
    }
    Ok(Command::Arg(defs))
}

/// SHELL: a JSON array only.
fn parse_shell(node: &Node, flags: Flags) -> Result<Command, FrontendError> {
    no_flags(node, flags)?;
    let shell = json_args(node);
    if shell.is_empty() {
        return Err(error(node, "SHELL requires at least one argument"));
    }
    if !node.json {
        return Err(
            error(node, "SHELL requires the arguments to be in JSON form")
                .with_hint("write SHELL [\"/bin/bash\", \"-c\"]"),
        );
    }
    Ok(Command::Shell(shell))
}

/// An unknown keyword, with the likely instruction, or what a shell command or a broken
/// continuation looks like.
fn unknown_instruction(node: &Node) -> FrontendError {
    let upper = node.keyword.to_uppercase();
    if let Some(s) = suggest(&upper, KEYWORDS.iter().copied()) {
        // BuildKit's text, the suggestion in the message.
        error(
            node,
            format!(
                "unknown instruction: {} (did you mean {s}?)",
                node.keyword_raw
            ),
        )
        .with_needle(node.keyword_raw.clone())
    } else {
        unknown_instruction_help(node)
    }
}

/// An unknown keyword with no instruction close to it: what it may be instead.
fn unknown_instruction_help(node: &Node) -> FrontendError {
    let e = error(node, format!("unknown instruction: {}", node.keyword_raw))
        .with_needle(node.keyword_raw.clone());
    if node.keyword_raw == node.keyword {
        e.with_hint(format!(
            "'{}' looks like a shell command: to run it during the build write RUN {} ...; \
             if it continues the previous line, end that line with a backslash",
            node.keyword_raw, node.keyword_raw
        ))
    } else {
        e.with_hint(format!(
            "a Dockerfile instruction is one of {}",
            KEYWORDS.join(", ")
        ))
    }
}

fn parse_from(node: &Node, mut flags: Flags) -> Result<Stage, FrontendError> {
    let args = &node.args;
    let err = |msg: String| FrontendError::new(msg, node.span);
    let name = match args.len() {
        3 if args[1].eq_ignore_ascii_case("as") => {
            let name = args[2].to_lowercase();
            if !valid_stage_name(&name) {
                return Err(err(format!(
                    "invalid name for build stage: \"{}\", name can't start with a number or contain symbols",
                    args[2]
                ))
                .with_needle(args[2].clone()));
            }
            Some(name)
        }
        1 => None,
        _ => {
            let mut e = err("FROM requires either one or three arguments".into())
                .with_hint("write FROM IMAGE or FROM IMAGE AS NAME");
            if args.iter().any(|a| a.starts_with('#')) {
                e = e.with_hint(
                    "a '#' after an instruction is not a comment in a Dockerfile: move the \
                     comment to a line of its own",
                );
            }
            return Err(e);
        }
    };
    flags.declare_string("platform");
    flags.parse().map_err(|e| e.at(node.span))?;
    Ok(Stage {
        name,
        base: args[0].clone(),
        platform: flags.string("platform"),
        code: node.original.trim().to_string(),
        span: node.span,
        commands: Vec::new(),
    })
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn need_two(node: &Node, name: &str) -> Result<(), FrontendError> {
    if node.args.len() < 2 {
        return Err(FrontendError::new(
            format!(
                "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
            node.span,
        )
        .with_hint(format!("write {name} SOURCE... DEST")));
    }
    Ok(())
}

fn sources_and_dest(node: &Node, name: &str) -> Result<SourcesAndDest, FrontendError> {
    let args = json_or_words(node);
    let (dest, srcs) = args.split_last().expect("checked: at least two arguments");
    if heredoc_marker(dest).is_some() {
        return Err(FrontendError::new(
            format!("{name} cannot accept a heredoc as a destination"),
            node.span,
        ));
    }
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for src in srcs {
        match heredoc_marker(src) {
            Some((hname, _chomp, expand)) => {
                let data = node
                    .heredocs
                    .iter()
                    .find(|h| h.name == hname)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                contents.push(SourceContent {
                    path: hname,
                    data,
                    expand,
                });
            }
            None => paths.push(src.clone()),
        }
    }
    Ok(SourcesAndDest {
        dest: dest.clone(),
        paths,
        contents,
    })
}

/// BuildKit's `handleJSONArgs`: JSON arrays stay as they are; a shell-form line is one word.
fn json_args(node: &Node) -> Vec<String> {
    if node.json {
        node.args.clone()
    } else {
        vec![node.args.join(" ")]
    }
}

/// COPY/ADD take whitespace-separated words or a JSON array; both arrive as args.
fn json_or_words(node: &Node) -> Vec<String> {
    node.args.clone()
}

fn shell_form(node: &Node, empty_as_nil: bool) -> ShellForm {
    let mut args = if node.json || !node.args.is_empty() {
        json_args(node)
    } else {
        Vec::new()
    };
    if empty_as_nil && args.iter().all(|a| a.is_empty()) && node.json {
        args.clear();
    }
    ShellForm {
        args,
        files: node
            .heredocs
            .iter()
            .map(|h| InlineFile {
                name: h.name.clone(),
                data: h.content.clone(),
                chomp: h.chomp,
            })
            .collect(),
        prepend_shell: !node.json,
    }
}

fn parse_onbuild(node: &Node, mut flags: Flags) -> Result<Command, FrontendError> {
    let err = |msg: &str| FrontendError::new(msg, node.span);
    let Some(inner) = node.onbuild.as_deref() else {
        return Err(err("ONBUILD requires at least one argument"));
    };
    flags.parse().map_err(|e| e.at_without_hint(node.span))?;
    let trigger = inner.keyword.to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err(err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")),
        "MAINTAINER" | "FROM" => {
            return Err(err(&format!(
                "{trigger} isn't allowed as an ONBUILD trigger"
            )))
        }
        _ => {}
    }
    // The trigger must itself be a valid instruction.
    parse_instruction(inner)?;
    let original = node.original.trim_start();
    let rest = original
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("onbuild"))
        .map(|_| original[7..].trim_start())
        .unwrap_or(original);
    let mut expression = rest.to_string();
    for h in node.heredocs.iter().chain(inner.heredocs.iter()) {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Command::Onbuild(expression))
}
