//! Reading what a build starts from: the Dockerfile (file or stdin), `.dockerignore`, and
//! `--build-arg`/`--platform` values, turned into `LowerOptions`. Errors are user reports.

use super::FrontendArgs;
use context::dockerignore;
use frontend::ast::Dockerfile;
use frontend::lower::{platform, LowerOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A Dockerfile read and parsed, with what is needed to report errors against it.
pub struct Loaded {
    /// Display name for messages (`Dockerfile`, `docker/app.Dockerfile`, `<stdin>`).
    pub name: String,
    pub text: String,
    pub parsed: Dockerfile,
    pub options: LowerOptions,
}

pub fn load(args: &FrontendArgs) -> Result<Loaded, String> {
    let context = Path::new(&args.context);
    if !context.is_dir() {
        return Err(format!(
            "error: build context \"{}\" is not a directory\n  = help: pass the directory with your files, e.g. `.`\n",
            args.context
        ));
    }
    let (name, path, bytes) = match args.file.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                format!("error: cannot read the Dockerfile from standard input: {e}\n")
            })?;
            ("<stdin>".to_string(), None, buf)
        }
        other => {
            let path = match other {
                Some(f) => PathBuf::from(f),
                None => context.join("Dockerfile"),
            };
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "error: cannot read Dockerfile {}: {e}\n  = help: pass its path with -f, or run in the directory that has a Dockerfile\n",
                    path.display()
                )
            })?;
            (path.display().to_string(), Some(path), bytes)
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let parsed = frontend::parser::parse(&bytes)
        .map_err(|e| frontend::diagnostic::FrontendError::from(e).render(&name, &text))?;
    let dockerfile_for_ignore = path.clone().unwrap_or_else(|| context.join("Dockerfile"));
    let ignore = dockerignore::find_ignore_file(context, &dockerfile_for_ignore)
        .map_err(|e| format!("error: {e}\n"))?;
    let options = LowerOptions {
        target: args.target.clone(),
        build_args: build_args(&args.build_args)?,
        platform: match &args.platform {
            Some(p) => Some(platform::parse(p).map_err(|e| {
                format!(
                    "error: invalid --platform: {e}\n  = help: write os/arch, e.g. linux/amd64\n"
                )
            })?),
            None => None,
        },
        no_cache: args.no_cache,
        dockerignore: ignore.map(|f| f.patterns).unwrap_or_default(),
        named_contexts: Default::default(),
    };
    Ok(Loaded {
        name,
        text,
        parsed,
        options,
    })
}

/// `--build-arg K=V` (or `K`, taken from the environment as docker does; unset -> ignored).
fn build_args(raw: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some(("", _)) => return Err(format!("error: invalid --build-arg \"{a}\": the name is empty\n  = help: write --build-arg KEY=VALUE\n")),
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
