//! Typed, validated Dockerfile instructions: what each instruction means, independent of how
//! it was written. `parse` turns AST nodes into these; `Command::expand` is the one place that
//! says which words of which instruction go through variable expansion (BuildKit's
//! `SupportsSingleWordExpansion`). Lowering (`crate::lower`) consumes them.
//!
//! It knows no variable values (words are expanded through the `Expander` it is handed), no
//! stage state and no graph.

mod flags;
mod healthcheck;
pub mod mounts;
mod parse;

pub use flags::{FlagError, Flags};
pub use mounts::{CsvError, Mount, MountError, MountType};
pub use parse::{parse_dockerfile, parse_instruction};

use crate::ast::Span;
use crate::shell::ShellError;

/// Expands one word (the stage's variables, BuildKit's shell lexer).
pub type Expander<'a> = dyn FnMut(&str) -> Result<String, ShellError> + 'a;

/// `key=value` (or legacy `key value`, `legacy == true`) of ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub legacy: bool,
}

impl KeyValue {
    fn expand(&mut self, ex: &mut Expander) -> Result<(), ShellError> {
        self.key = ex(&self.key)?;
        self.value = ex(&self.value)?;
        Ok(())
    }
}

/// One `name[=default]` of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArgDef {
    pub key: String,
    pub value: Option<String>,
}

/// A heredoc attached to RUN/CMD/ENTRYPOINT (BuildKit's `ShellInlineFile`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    pub chomp: bool,
}

/// A command line that the stage's SHELL is prepended to unless it is in JSON (exec) form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShellForm {
    pub args: Vec<String>,
    pub files: Vec<InlineFile>,
    pub prepend_shell: bool,
}

/// A heredoc used as a COPY/ADD source (`COPY <<EOF /etc/app.conf`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceContent {
    pub path: String,
    pub data: String,
    pub expand: bool,
}

/// Sources and destination of COPY/ADD.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourcesAndDest {
    pub dest: String,
    pub paths: Vec<String>,
    pub contents: Vec<SourceContent>,
}

impl SourcesAndDest {
    fn expand(&mut self, ex: &mut Expander) -> Result<(), ShellError> {
        expand_all(&mut self.paths, ex)?;
        self.dest = ex(&self.dest)?;
        Ok(())
    }
}

/// `COPY [--from=] [--chown=] [--chmod=] [--link] [--parents] [--exclude=]... <src>... <dest>`
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyCommand {
    pub files: SourcesAndDest,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

/// `ADD [--chown=] [--chmod=] [--link] [--keep-git-dir] [--checksum=] [--exclude=]... [--unpack] <src>... <dest>`
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddCommand {
    pub files: SourcesAndDest,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--keep-git-dir[=BOOL]`; None when not given (a git URL's `?keep-git-dir=` decides).
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    pub exclude: Vec<String>,
    pub unpack: Option<bool>,
}

/// `RUN [--mount=...]... [--network=] [--security=] <command>`
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunCommand {
    pub cmd: ShellForm,
    /// The raw `--mount` values; parsed (and expanded) into `mounts` at dispatch.
    pub mount_specs: Vec<String>,
    pub mounts: Vec<Mount>,
    pub network: Option<String>,
    pub security: Option<String>,
}

/// `HEALTHCHECK [--interval=] [--timeout=] [--start-period=] [--start-interval=] [--retries=] CMD <command>` or `HEALTHCHECK NONE`.
/// Durations are nanoseconds, as the image config stores them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// Every instruction but FROM (which starts a `Stage`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Command {
    /// `ENV key=value [key=value...]` or legacy `ENV key value`
    Env(Vec<KeyValue>),
    /// `LABEL key=value [key=value...]`
    Label(Vec<KeyValue>),
    /// `MAINTAINER name` (deprecated; sets the image author)
    Maintainer(String),
    Add(AddCommand),
    Copy(CopyCommand),
    /// `ONBUILD <instruction>`: the trigger text, stored in the image config
    Onbuild(String),
    /// `WORKDIR path`
    Workdir(String),
    Run(RunCommand),
    /// `CMD ["exe", "arg"]` or `CMD command line`
    Cmd(ShellForm),
    /// `ENTRYPOINT ["exe", "arg"]` or `ENTRYPOINT command line`
    Entrypoint(ShellForm),
    Healthcheck(Healthcheck),
    /// `EXPOSE port[/proto]...` (expanded and split into words at dispatch)
    Expose(Vec<String>),
    /// `USER user[:group]`
    User(String),
    /// `VOLUME path...` or `VOLUME ["path"]`
    Volume(Vec<String>),
    /// `STOPSIGNAL signal`
    StopSignal(String),
    /// `ARG name[=default] [name[=default]...]` (expanded at dispatch, where overrides apply)
    Arg(Vec<ArgDef>),
    /// `SHELL ["exe", "arg"]`
    Shell(Vec<String>),
}

impl Command {
    /// Expands the words BuildKit expands for this instruction, in place. ARG, EXPOSE and the
    /// RUN mounts are expanded by the dispatcher because they need more than one word out or
    /// the build-arg overrides; CMD, ENTRYPOINT, RUN's command, SHELL, HEALTHCHECK, ONBUILD and
    /// MAINTAINER are never expanded (the shell in the container does it, or nothing does).
    pub fn expand(&mut self, ex: &mut Expander) -> Result<(), ShellError> {
        match self {
            Command::Env(kvs) | Command::Label(kvs) => {
                kvs.iter_mut().try_for_each(|kv| kv.expand(ex))
            }
            Command::Add(c) => {
                expand_opt(&mut c.chown, ex)?;
                expand_opt(&mut c.chmod, ex)?;
                expand_opt(&mut c.checksum, ex)?;
                expand_all(&mut c.exclude, ex)?;
                c.files.expand(ex)
            }
            Command::Copy(c) => {
                expand_opt(&mut c.chown, ex)?;
                expand_opt(&mut c.chmod, ex)?;
                expand_all(&mut c.exclude, ex)?;
                c.files.expand(ex)
            }
            Command::Workdir(w) | Command::User(w) | Command::StopSignal(w) => {
                *w = ex(w)?;
                Ok(())
            }
            Command::Volume(v) => expand_all(v, ex),
            Command::Maintainer(_)
            | Command::Onbuild(_)
            | Command::Run(_)
            | Command::Cmd(_)
            | Command::Entrypoint(_)
            | Command::Healthcheck(_)
            | Command::Expose(_)
            | Command::Arg(_)
            | Command::Shell(_) => Ok(()),
        }
    }

    /// Heredoc sources of COPY/ADD whose delimiter was not quoted are expanded with raw
    /// quotes (BuildKit's `ExpandRaw`): done by the dispatcher with its own lexer settings.
    pub fn heredoc_sources_mut(&mut self) -> Option<&mut Vec<SourceContent>> {
        match self {
            Command::Add(c) => Some(&mut c.files.contents),
            Command::Copy(c) => Some(&mut c.files.contents),
            _ => None,
        }
    }
}

fn expand_all(words: &mut [String], ex: &mut Expander) -> Result<(), ShellError> {
    for w in words {
        *w = ex(w)?;
    }
    Ok(())
}

fn expand_opt(word: &mut Option<String>, ex: &mut Expander) -> Result<(), ShellError> {
    if let Some(w) = word {
        *w = ex(w)?;
    }
    Ok(())
}

/// One instruction with its source location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instruction {
    pub command: Command,
    /// Lower-case keyword (`run`).
    pub keyword: String,
    /// The instruction as written, trimmed (BuildKit's `String()` of a command).
    pub code: String,
    pub span: Span,
}

/// A build stage: `FROM [--platform=] base [AS name]` and the instructions under it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    /// Lower-cased stage name, if named.
    pub name: Option<String>,
    /// The base as written (before ARG expansion).
    pub base: String,
    pub platform: Option<String>,
    pub code: String,
    pub span: Span,
    pub commands: Vec<Instruction>,
}

/// A whole Dockerfile as instructions: global ARGs (before the first FROM) and stages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instructions {
    pub meta_args: Vec<(Vec<ArgDef>, Span)>,
    pub stages: Vec<Stage>,
}
