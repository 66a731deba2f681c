//! Reading what a build starts from: the Dockerfile (file or stdin), `.dockerignore`, and
//! `--build-arg`/`--platform` values, turned into `LowerOptions`; and Dockerfile errors as the
//! frontend renders them, against the text they point into.

use super::error::{CliError, Context};
use super::FrontendArgs;
use crate::build::SolveError;
use context::dockerignore;
use frontend::ast::Dockerfile;
use frontend::diagnostic::FrontendError;
use frontend::lower::{platform, LowerOptions};
use frontend::parser;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A Dockerfile read and parsed, with what is needed to report errors against it.
pub struct Loaded {
    /// Display name for messages (`Dockerfile`, `docker/app.Dockerfile`, `<stdin>`).
    pub name: String,
    pub text: String,
    pub parsed: Dockerfile,
    pub options: LowerOptions,
    /// `--platform a,b,...` with more than one platform (each built, under one image index);
    /// empty otherwise (`options.platform` has the one platform).
    pub platforms: Vec<graph::Platform>,
}

impl Loaded {
    /// An error in this Dockerfile, rendered with the line it points at.
    pub fn error(&self, e: FrontendError) -> CliError {
        dockerfile_error(e, &self.name, &self.text)
    }

    /// A step that failed while it ran, with the Dockerfile lines of its instruction under
    /// the message (BuildKit's source map: buildx prints them too).
    pub fn step_error(&self, e: SolveError) -> CliError {
        let Some((start, end)) = e.lines() else {
            return CliError::new(e);
        };
        let lines: Vec<&str> = self.text.lines().collect();
        if start == 0 || start > lines.len() {
            return CliError::new(e);
        }
        let end = end.clamp(start, lines.len());
        let width = end.to_string().len();
        let pad = " ".repeat(width);
        let mut out = format!("error: {e}\n --> {}:{start}\n{pad} |\n", self.name);
        // A long instruction shows its first and last lines, each cut to a screen's width
        // (a hostile Dockerfile must not print megabytes).
        let show = |out: &mut String, n: usize| {
            let line = lines[n - 1];
            let cut: String = line.chars().take(MAX_SHOWN_LINE).collect();
            let more = if cut.len() < line.len() { "…" } else { "" };
            out.push_str(&format!("{n:>width$} | {cut}{more}\n"));
        };
        if end - start < MAX_SHOWN_LINES {
            (start..=end).for_each(|n| show(&mut out, n));
        } else {
            (start..start + 3).for_each(|n| show(&mut out, n));
            let hidden = end - start - 4;
            out.push_str(&format!("{pad} | ... ({hidden} more lines)\n"));
            (end - 1..=end).for_each(|n| show(&mut out, n));
        }
        CliError::rendered(e, out)
    }
}

/// How many lines of a failed step's instruction are shown whole, and how many characters of
/// each.
const MAX_SHOWN_LINES: usize = 6;
const MAX_SHOWN_LINE: usize = 160;

/// A Dockerfile error as the frontend renders it: the message, the file:line:col and the line
/// with a caret under the fault (the text is what the error points into).
pub fn dockerfile_error(e: FrontendError, name: &str, text: &str) -> CliError {
    // The lint warnings found before the error come first, as BuildKit prints them.
    let rendered = super::render::warning_lines(e.warnings(), name) + &e.render(name, text);
    CliError::rendered(e, rendered)
}

pub fn load(args: &FrontendArgs) -> Result<Loaded, CliError> {
    let context = Path::new(&args.context);
    if !context.is_dir() {
        return Err(CliError::msg(format!(
            "build context \"{}\" is not a directory",
            args.context
        ))
        .with_help("pass the directory with your files, e.g. `.`"));
    }
    let (name, path, bytes) = read_dockerfile(args.file.as_deref(), context)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let parsed = parser::parse(&bytes)
        .map_err(|e| dockerfile_error(FrontendError::from(e), &name, &text))?;
    let dockerfile_for_ignore = path.unwrap_or_else(|| context.join("Dockerfile"));
    let ignore = dockerignore::find_ignore_file(context, &dockerfile_for_ignore)?;
    let platforms = match &args.platform {
        Some(p) => platform::parse_list(p).map_err(|e| {
            CliError::context("invalid --platform", e)
                .with_help("write os/arch, e.g. linux/amd64, or a list: linux/amd64,linux/arm64")
        })?,
        None => Vec::new(),
    };
    let options = LowerOptions {
        target: args.target.clone(),
        build_args: build_args(&args.build_args)?,
        platform: platforms.first().cloned(),
        no_cache: args.no_cache,
        no_cache_stages: args.no_cache_filter.clone(),
        dockerignore: ignore.map(|f| f.patterns).unwrap_or_default(),
        named_contexts: Default::default(),
        labels: Default::default(),
        shm_size: 0,
        ulimits: Vec::new(),
    };
    Ok(Loaded {
        name,
        text,
        parsed,
        options,
        platforms: if platforms.len() > 1 {
            platforms
        } else {
            Vec::new()
        },
    })
}

/// The Dockerfile's bytes from `-f FILE`, `-f -` (standard input) or CONTEXT/Dockerfile, with
/// its display name and its path (None: standard input). A missing `Dockerfile` falls back to
/// `dockerfile` in the same directory, as BuildKit's.
fn read_dockerfile(
    file: Option<&str>,
    context: &Path,
) -> Result<(String, Option<PathBuf>, Vec<u8>), CliError> {
    if file == Some("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the Dockerfile from standard input")?;
        return Ok(("<stdin>".to_string(), None, buf));
    }
    let path = match file {
        Some(f) => PathBuf::from(f),
        None => context.join("Dockerfile"),
    };
    // BuildKit reads `dockerfile` beside a `Dockerfile` that is not there (dockerui).
    let lowercase = path.with_file_name("dockerfile");
    // Its name stays `Dockerfile`, for messages and for `Dockerfile.dockerignore`, as there.
    let read_from =
        if path.file_name() == Some("Dockerfile".as_ref()) && !path.exists() && lowercase.is_file()
        {
            &lowercase
        } else {
            &path
        };
    let bytes = std::fs::read(read_from).map_err(|e| {
        CliError::context(format!("cannot read Dockerfile {}", path.display()), e)
            .with_help("pass its path with -f, or run in the directory that has a Dockerfile")
    })?;
    Ok((path.display().to_string(), Some(path), bytes))
}

/// `--build-arg K=V` (or `K`, taken from the environment as docker does; unset -> ignored).
fn build_args(raw: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some(("", _)) => {
                return Err(CliError::msg(format!(
                    "invalid --build-arg \"{a}\": the name is empty"
                ))
                .with_help("write --build-arg KEY=VALUE"))
            }
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}
