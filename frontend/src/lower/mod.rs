//! Lowering: typed instructions -> the graph, with BuildKit's dispatch semantics
//! (`dockerfile2llb`). This module owns one lowering run (`Lowering`): the `# check=` linter,
//! global ARGs and build-arg overrides (SOURCE_DATE_EPOCH among them), and the result (the
//! target's root, image config, stages and warnings). Its parts, in the order a run uses them:
//!
//! - `checks`: the lint checks that need only the parsed file;
//! - `epoch`: what SOURCE_DATE_EPOCH names (a number, `context`, a source-only stage);
//! - `stages`: a state per stage from its FROM line (base, platform), `--target`;
//! - `dependencies`: `--from` and `--mount from=` links, ONBUILD triggers, cycles, the stages
//!   the target reaches, base images resolved;
//! - `dispatch`: each stage's instructions in order, with `config` (the config-only
//!   instructions), `run` and `exec_mounts` (RUN), `copy` (COPY, ADD), `sources` (the
//!   vertices they read), `env` (variables and the one expander), `paths`, `ports`,
//!   `platform`.
//!
//! It knows nothing of how ops run, of stores or of registries. It asks one question of the
//! outside world, "what is the config of this base image?", through
//! `graph::resolve::ImageResolver` (re-exported here); an unresolvable base lowers with an
//! empty config and a warning.

mod checks;
mod config;
mod copy;
mod dependencies;
mod dispatch;
mod env;
mod epoch;
mod exec_mounts;
mod git_ref;
mod paths;
pub mod platform;
mod ports;
mod run;
mod sources;
mod stages;

pub use config::InvalidSignal;
pub use copy::ChmodError;
pub use exec_mounts::ExecMountError;
pub use graph::resolve::{ImageResolver, MemoryResolver, Offline, ResolvedImage};
pub use ports::PortSpecError;

use crate::ast::{Dockerfile, Span};
use crate::diagnostic::FrontendError;
use crate::instructions::{parse_dockerfile, ArgDef};
use crate::lint::{Linter, Warning};
use crate::shell::Lexer;
use env::EnvList;
use graph::image::Image;
use graph::{Digest, Graph, Platform};
use reference::Reference;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// The key a named build context is matched by, as BuildKit's dockerui does: the familiar
/// form without `:latest` (`alpine`, `alpine:3.19`, `ghcr.io/x/y`), or the name as written when
/// it is not a reference.
pub fn context_key(name: &str) -> String {
    match Reference::parse(name) {
        Ok(r) => r.familiar().trim_end_matches(":latest").to_string(),
        Err(_) => name.to_string(),
    }
}

/// The name of the local source (graph `Source::Local`) a `--build-context NAME=DIR` becomes:
/// the context key, except that `context` and `dockerfile` get a leading `_` so they cannot
/// collide with the main context's source (buildx renames them the same way for its session).
pub fn local_source_name(key: &str) -> String {
    if key == "context" || key == "dockerfile" {
        format!("_{key}")
    } else {
        key.to_string()
    }
}

/// What a `--build-context NAME=...` stands for when the Dockerfile names it in `FROM NAME`,
/// `COPY --from=NAME` or `RUN --mount=from=NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// An image by normalized reference (`docker-image://`, or an imported `oci-layout://`).
    Image(String),
    /// A local directory: the file tree itself, with an empty image config when used as a
    /// base. Only what goes into the graph is here (the exclusion patterns of its own
    /// `.dockerignore`); the solver is told where the directory is.
    Local { exclude_patterns: Vec<String> },
}

/// What `docker build` flags say about lowering.
#[derive(Debug, Clone, Default)]
pub struct LowerOptions {
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--build-arg KEY=VALUE` overrides.
    pub build_args: BTreeMap<String, String>,
    /// `--platform` (default: the host's).
    pub platform: Option<Platform>,
    /// `--no-cache`: mark every op to skip the cache.
    pub no_cache: bool,
    /// `--no-cache-filter STAGE,...`: the RUN steps of these stages (by name, in any case)
    /// skip the cache, as BuildKit's `no-cache` frontend option with stage names marks them.
    pub no_cache_stages: Vec<String>,
    /// `.dockerignore` patterns of the main context (part of the context source's definition).
    pub dockerignore: Vec<String>,
    /// `--build-context NAME=...` by context key (`context_key`). As in BuildKit, a named
    /// context replaces a stage of the same name, and a `FROM NAME` or `--from=NAME` that is
    /// not a stage uses it instead of the image NAME.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `--label KEY=VALUE`: set on the target's image config after its own LABELs (they win
    /// over the Dockerfile's, as in BuildKit), with no history entry and no effect on layers.
    pub labels: BTreeMap<String, String>,
    /// `--shm-size` in bytes (0: the default) and `--ulimit`s: set on every RUN's op.
    pub shm_size: u64,
    pub ulimits: Vec<graph::Ulimit>,
}

/// The result of lowering: the graph, its root (the target stage's final file tree) and the
/// image config of the target.
#[derive(Debug, Clone)]
pub struct Lowered {
    pub graph: Graph,
    pub root: Digest,
    pub image: Image,
    /// The target stage's name (`stage-N` when unnamed).
    pub target: String,
    /// The stages that were lowered, in order (the target needs exactly these).
    pub stages: Vec<String>,
    pub warnings: Vec<Warning>,
    /// SOURCE_DATE_EPOCH, when set: history and file times use it.
    pub epoch: Option<i64>,
}

/// Lowers a parsed Dockerfile to the graph.
pub fn lower(
    df: &Dockerfile,
    opts: &LowerOptions,
    resolver: &dyn ImageResolver,
) -> Result<Lowered, FrontendError> {
    // The linter first, as BuildKit: what its instruction parser finds before an
    // instruction that does not parse is reported with the error.
    let mut linter = linter_for(df, opts)?;
    let instructions = match parse_dockerfile(df) {
        Ok(i) => i,
        Err(e) => {
            let before = if e.span.start_line == 0 {
                usize::MAX
            } else {
                e.span.start_line
            };
            checks::parse_time(df, before, &mut linter);
            return Err(e.with_warnings(linter.warnings));
        }
    };
    if instructions.stages.is_empty() {
        let span = df.nodes.first().map(|n| n.span).unwrap_or_default();
        return Err(
            FrontendError::new("dockerfile contains no stages to build", span).with_hint(
                "a Dockerfile needs a FROM instruction before its other instructions (FROM IMAGE, \
             or FROM scratch)",
            ),
        );
    }
    checks::run(df, &instructions, &mut linter);

    let build_platform = platform::host();
    let target_platform = opts
        .platform
        .clone()
        .unwrap_or_else(|| build_platform.clone());
    let lexer = Lexer::new(df.directives.escape);
    let mut cx = Lowering {
        opts: Cow::Borrowed(opts),
        resolver,
        lexer,
        linter,
        graph: Graph::default(),
        global_args: EnvList::default(),
        declared_args: BTreeSet::new(),
        target_platform,
        explicit_platform: opts.platform.is_some(),
        build_platform,
        epoch: None,
        states: Vec::new(),
        unresolved_reported: Vec::new(),
        ignore: (!opts.dockerignore.is_empty())
            .then(|| context::dockerignore::Matcher::new(&opts.dockerignore).ok())
            .flatten(),
    };
    // TARGETSTAGE: the stage built (--target, else the last stage's name, else "default").
    let target_stage = opts
        .target
        .clone()
        .or_else(|| instructions.stages.last().and_then(|s| s.name.clone()))
        .unwrap_or_else(|| "default".to_string());
    cx.lint_default_bases(&instructions, &target_stage);
    cx.global_args(&instructions.meta_args, &target_stage)?;
    cx.source_date_epoch(&instructions.stages)?;
    cx.build_states(&instructions)?;
    let target = cx.resolve_target()?;
    cx.build_dependencies()?;
    let reachable = cx.resolve_reachable(target)?;
    cx.dispatch_all(&reachable)?;
    cx.finish(target, &reachable)
}

/// The linter as the `# check=` directive sets it up, with the parser's warnings, and a note
/// when `# syntax=` names a frontend image other than Docker's (pallet does not run it).
fn linter_for(df: &Dockerfile, opts: &LowerOptions) -> Result<Linter, FrontendError> {
    // `--build-arg BUILDKIT_DOCKERFILE_CHECK=...` replaces the `# check=` directive, as
    // BuildKit's dockerui does.
    if let Some(v) = opts.build_args.get(CHECK_ARG) {
        let linter = Linter::from_directive(Some(v)).map_err(|e| {
            FrontendError::global(format!("failed to parse build-arg:{CHECK_ARG}: {e}"))
                .with_hint("write skip=RULE,RULE;error=true (or skip=all)")
        })?;
        return with_parse_warnings(df, linter);
    }
    let check = df.directives.check.as_ref();
    let linter = Linter::from_directive(check.map(|(c, _)| c.as_str())).map_err(|e| {
        let line = check.map_or(0, |(_, l)| *l);
        FrontendError::new(
            format!("failed to parse check options: {e}"),
            Span {
                start_line: line,
                end_line: line,
            },
        )
        .with_cause(e)
    })?;
    with_parse_warnings(df, linter)
}

/// The build arg that sets the lint options instead of the `# check=` directive.
const CHECK_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// `linter` with the per-instruction `# check=` comments and the parser's warnings, then the
/// `# syntax=` note.
fn with_parse_warnings(df: &Dockerfile, mut linter: Linter) -> Result<Linter, FrontendError> {
    for n in &df.nodes {
        linter.skip_locally(n.span, &n.prev_comment);
    }
    for w in &df.warnings {
        match w.rule {
            // BuildKit's lint detail is the rule's own text; the parser's "found in: LINE" is
            // for its parse warnings only (dockerfile2llb re-formats it).
            Some("NoEmptyContinuation") => linter.run(
                "NoEmptyContinuation",
                "Empty continuation line".to_string(),
                Some(w.span),
            ),
            Some(rule) => linter.run(rule, w.message.clone(), Some(w.span)),
            None => linter.note(w.message.clone(), Some(w.span)),
        }
    }
    if let Some((syntax, line)) = &df.directives.syntax {
        let frontend = syntax.split(['@', ':']).next().unwrap_or("");
        let known = [
            "docker/dockerfile",
            "docker.io/docker/dockerfile",
            "docker/dockerfile-upstream",
        ];
        if !known.contains(&frontend) {
            linter.note(
                format!("# syntax={syntax} names a frontend image; pallet uses its built-in Dockerfile frontend"),
                Some(Span { start_line: *line, end_line: *line }),
            );
        }
    }
    Ok(linter)
}

/// The state of one lowering run.
struct Lowering<'a> {
    /// The options; owned once SOURCE_DATE_EPOCH's build arg is replaced by the time it
    /// names (`epoch`).
    opts: Cow<'a, LowerOptions>,
    resolver: &'a dyn ImageResolver,
    lexer: Lexer,
    linter: Linter,
    graph: Graph,
    /// Global ARGs (before the first FROM) with their values, plus the platform ARGs.
    global_args: EnvList,
    /// Every ARG name declared anywhere lowered (to report unused `--build-arg`s).
    declared_args: BTreeSet<String>,
    target_platform: Platform,
    explicit_platform: bool,
    build_platform: Platform,
    epoch: Option<i64>,
    states: Vec<stages::StageState>,
    unresolved_reported: Vec<String>,
    /// The main context's `.dockerignore`, compiled for the CopyIgnoredFile check (none
    /// without patterns).
    ignore: Option<context::dockerignore::Matcher>,
}

/// ARG names that are available in RUN without being declared, and never need an ARG.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl Lowering<'_> {
    /// Global ARGs: platform ARGs and TARGETSTAGE first, then each ARG before the first FROM, with the
    /// `--build-arg` override or its default expanded against the ARGs before it.
    fn global_args(
        &mut self,
        meta: &[(Vec<ArgDef>, Span)],
        target_stage: &str,
    ) -> Result<(), FrontendError> {
        for (k, v) in platform::platform_args(&self.build_platform, &self.target_platform) {
            self.global_args.inherit(&k, &v);
        }
        self.global_args.inherit("TARGETSTAGE", target_stage);
        for (defs, span) in meta {
            for def in defs {
                self.declared_args.insert(def.key.clone());
                self.lint_secret_name("ARG", &def.key, *span);
                let value = match self.opts.build_args.get(&def.key) {
                    Some(v) => Some(v.clone()),
                    None => match &def.value {
                        Some(d) => {
                            let ex = self
                                .lexer
                                .process_word(d, &self.global_args)
                                .map_err(|e| FrontendError::new(e.message, *span))?;
                            Some(ex.result)
                        }
                        None => None,
                    },
                };
                if let Some(v) = value {
                    self.global_args
                        .set(&def.key, &v)
                        .map_err(|e| FrontendError::from_cause(e, *span))?;
                }
            }
        }
        Ok(())
    }

    /// InvalidDefaultArgInFrom (BuildKit's `validateBaseImagesWithDefaultArgs`): each
    /// stage's base with the global ARGs' defaults alone (no build args) must name an image,
    /// so that the Dockerfile builds without options. Any expansion error abandons the check.
    fn lint_default_bases(&mut self, ins: &crate::instructions::Instructions, target_stage: &str) {
        let mut env = EnvList::default();
        for (k, v) in platform::platform_args(&self.build_platform, &self.target_platform) {
            env.inherit(&k, &v);
        }
        env.inherit("TARGETSTAGE", target_stage);
        for def in ins.meta_args.iter().flat_map(|(defs, _)| defs) {
            if let Some(d) = &def.value {
                let Ok(ex) = self.lexer.process_word(d, &env) else {
                    return;
                };
                env.inherit(&def.key, &ex.result);
            }
        }
        for st in &ins.stages {
            let Ok(ex) = self.lexer.process_word(&st.base, &env) else {
                return;
            };
            if Reference::parse(&ex.result).is_err() {
                self.linter.run(
                    "InvalidDefaultArgInFrom",
                    format!(
                        "Default value for ARG {} results in empty or invalid base image name",
                        st.base
                    ),
                    Some(st.span),
                );
            }
        }
    }

    fn finish(mut self, target: usize, reachable: &[usize]) -> Result<Lowered, FrontendError> {
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| {
                !self.declared_args.contains(k.as_str())
                    && !PROXY_ARGS.contains(&k.as_str())
                    && k.as_str() != "SOURCE_DATE_EPOCH"
                    && k.as_str() != "BUILDKIT_SANDBOX_HOSTNAME"
                    && k.as_str() != CHECK_ARG
            })
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.linter.note(
                format!(
                    "One or more build-args [{}] were not consumed",
                    names.join(" ")
                ),
                None,
            );
        }
        if self.linter.error && self.linter.rule_count() > 0 {
            let first = self
                .linter
                .warnings
                .iter()
                .find(|w| w.rule.is_some())
                .expect("counted");
            let mut e = FrontendError::new(
                format!(
                    "lint violation found for rules: {} ({} warning(s); the check options set error=true)",
                    first.rule.unwrap_or(""),
                    self.linter.rule_count()
                ),
                first.span.unwrap_or_default(),
            );
            e = e.with_hint(first.message.clone());
            return Err(e);
        }
        let root = self.graph_root(target);
        let state = &self.states[target];
        let mut image = state.image.clone();
        for (key, value) in &self.opts.labels {
            image.config.labels.insert(key.clone(), value.clone());
        }
        if self.explicit_platform || image.os.is_empty() {
            image.os = self.target_platform.os.clone();
            image.architecture = self.target_platform.architecture.clone();
            image.variant = (!self.target_platform.variant.is_empty())
                .then(|| self.target_platform.variant.clone());
        }
        let mut graph = self.graph;
        graph.prune_to(&root);
        let stages = reachable
            .iter()
            .filter(|i| !self.states[**i].unregistered)
            .map(|i| self.states[*i].stage_label())
            .collect();
        Ok(Lowered {
            graph,
            root,
            image,
            target: state.stage_label(),
            stages,
            warnings: self.linter.warnings,
            epoch: self.epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::MountError;
    use crate::shell::{ExpandError, ShellError};
    use std::error::Error;

    fn lower_err(src: &str) -> FrontendError {
        let df = crate::parser::parse(src.as_bytes()).unwrap();
        lower(&df, &LowerOptions::default(), &Offline).unwrap_err()
    }

    #[test]
    fn errors_keep_their_typed_cause() {
        let e = lower_err("FROM scratch\nRUN --mount=type=cache,target=${DIR:?unset} ls\n");
        assert_eq!(e.message, "failed to process \"${DIR:?unset}\": DIR: unset");
        let mount = e.source().unwrap().downcast_ref::<MountError>().unwrap();
        assert!(matches!(mount, MountError::Expand(_)));
        let shell = mount
            .source()
            .unwrap()
            .downcast_ref::<ShellError>()
            .unwrap();
        assert!(matches!(shell.reason, ExpandError::Required { .. }));

        let e = lower_err("FROM scratch\nEXPOSE 80/xyz\n");
        assert_eq!(
            e.source().unwrap().downcast_ref::<PortSpecError>(),
            Some(&PortSpecError::Proto("xyz".into()))
        );
    }
}
