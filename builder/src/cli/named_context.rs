//! `--build-context NAME=VALUE` (buildx's flag), shared by `build` and `debug graph`: what the
//! value is (a local directory, `oci-layout://DIR[:TAG|@DIGEST]`, `docker-image://REF`, or a
//! URL / git remote, which are not built yet), turned into what lowering matches names against
//! and the directories the solver reads.

use super::error::{CliError, Context};
use crate::build::LocalDir;
use crate::store::import_oci_layout;
use context::dockerignore;
use frontend::lower::{context_key, local_source_name, LowerOptions, NamedContext};
use registry::Reference;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the value of a `--build-context NAME=VALUE` names.
#[derive(Debug, PartialEq, Eq)]
enum Value<'a> {
    OciLayout(&'a str),
    DockerImage(&'a str),
    /// A URL or git remote (buildx: `IsRemoteURL`): HTTP(S), `git://`, `ssh://`, `git@host:`,
    /// `github.com/...`.
    Remote,
    /// Anything else: a directory path, relative to the current directory.
    Dir(&'a str),
}

fn classify(value: &str) -> Value<'_> {
    if let Some(rest) = value.strip_prefix("oci-layout://") {
        return Value::OciLayout(rest);
    }
    if let Some(rest) = value.strip_prefix("docker-image://") {
        return Value::DockerImage(rest);
    }
    if value.contains("://") || value.starts_with("git@") || value.starts_with("github.com/") {
        return Value::Remote;
    }
    Value::Dir(value)
}

/// Applies every `--build-context` to the lowering options (names -> images or local
/// sources) and to `locals` (local source name -> directory). `root`: the store, which
/// `oci-layout://` imports into (None: such contexts are refused).
pub(super) fn apply(
    specs: &[String],
    root: Option<&cache::Root>,
    options: &mut LowerOptions,
    locals: &mut BTreeMap<String, LocalDir>,
) -> Result<(), CliError> {
    for spec in specs {
        let (name, value) = spec
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                CliError::msg(format!("invalid --build-context \"{spec}\"")).with_help(
                    "write NAME=DIR (a local directory), NAME=oci-layout://DIR or NAME=docker-image://REF",
                )
            })?;
        let key = context_key(name);
        let context = match classify(value) {
            Value::OciLayout(rest) => {
                let Some(root) = root else {
                    return Err(CliError::msg(format!(
                        "--build-context {name}={value}: oci-layout:// contexts are imported into the store, which this command does not open"
                    ))
                    .with_help("use `pallet build --explain` to see the graph with it"));
                };
                NamedContext::Image(import_layout(root, name, &key, rest)?)
            }
            // BuildKit's dockerui: `docker-image://scratch` is the empty image, not a pull.
            Value::DockerImage("scratch") => NamedContext::Image("scratch".to_string()),
            Value::DockerImage(reference) => {
                let r = Reference::parse_docker_ref(reference)
                    .with_context(|| format!("--build-context {name}"))?;
                NamedContext::Image(r.to_string())
            }
            Value::Remote => {
                return Err(CliError::msg(format!(
                    "--build-context {name}={value}: URL and git build contexts are not built yet (local directories, oci-layout://DIR and docker-image://REF are)"
                ))
                .with_help(format!(
                    "clone or download it into a directory and pass --build-context {name}=DIR"
                )))
            }
            Value::Dir(path) => {
                let (local, exclude_patterns) = local_dir(name, path)?;
                locals.insert(local_source_name(&key), local);
                NamedContext::Local { exclude_patterns }
            }
        };
        options.named_contexts.insert(key, context);
    }
    Ok(())
}

/// A `--build-context NAME=DIR` directory: it must exist and be a directory; its own
/// `.dockerignore` (BuildKit's rule, see `dockerignore::named_context_ignore_file`) applies.
fn local_dir(name: &str, path: &str) -> Result<(LocalDir, Vec<String>), CliError> {
    let given = Path::new(path);
    let meta = std::fs::metadata(given).map_err(|e| {
        let what = format!(
            "--build-context {name}={path}: the directory {}",
            given.display()
        );
        let cwd = std::env::current_dir().unwrap_or_default();
        let report = if e.kind() == std::io::ErrorKind::NotFound {
            CliError::msg(format!("{what} does not exist"))
        } else {
            CliError::context(format!("{what} cannot be read"), e)
        };
        report.with_help(format!(
            "a relative path is taken from the current directory ({}); pass an existing directory, or oci-layout://DIR or docker-image://REF for an image",
            cwd.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(CliError::msg(format!(
            "--build-context {name}={path}: {path} is not a directory"
        ))
        .with_help(
            "a named context is a directory of files (or oci-layout://DIR, docker-image://REF); to use one file, put it in a directory and pass that",
        ));
    }
    let dir = std::fs::canonicalize(given).unwrap_or_else(|_| PathBuf::from(path));
    let ignore = dockerignore::named_context_ignore_file(&dir)
        .with_context(|| format!("--build-context {name}"))?;
    let patterns = ignore.map(|f| f.patterns).unwrap_or_default();
    let matcher = dockerignore::Matcher::new(&patterns)
        .with_context(|| format!("--build-context {name}: {}/.dockerignore", dir.display()))?;
    Ok((
        LocalDir {
            dir,
            ignore: Some(matcher),
        },
        patterns,
    ))
}

/// `oci-layout://DIR[:TAG|@DIGEST]`: the image imported into the store under a name derived
/// from the context; returns that name.
fn import_layout(
    root: &cache::Root,
    name: &str,
    key: &str,
    rest: &str,
) -> Result<String, CliError> {
    let (dir, selector) = match rest.rsplit_once('@') {
        Some((d, digest)) => (d, Some(digest)),
        None => match rest.rsplit_once(':') {
            Some((d, tag)) if !tag.contains('/') => (d, Some(tag)),
            _ => (rest, None),
        },
    };
    let hash = blake3::hash(format!("{dir}\0{}", selector.unwrap_or("")).as_bytes()).to_hex();
    let local = format!(
        "localhost/pallet-build-context/{}:{}",
        key.to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
        &hash[..12]
    );
    let image = import_oci_layout(root, Path::new(dir), selector, &local)
        .with_context(|| format!("--build-context {name}"))?;
    Ok(image.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_classified_as_buildx_does() {
        assert_eq!(classify("oci-layout://./l:v1"), Value::OciLayout("./l:v1"));
        assert_eq!(
            classify("docker-image://alpine:3"),
            Value::DockerImage("alpine:3")
        );
        for remote in [
            "https://example.com/ctx.tar",
            "http://example.com/x",
            "git://example.com/r.git",
            "ssh://git@example.com/r.git",
            "git@github.com:moby/buildkit.git",
            "github.com/moby/buildkit",
        ] {
            assert_eq!(classify(remote), Value::Remote, "{remote}");
        }
        for dir in ["./libs", "libs", "/abs/dir", "../up", "dir:with-colon"] {
            assert_eq!(classify(dir), Value::Dir(dir));
        }
    }

    #[test]
    fn a_directory_becomes_a_local_source_with_its_own_dockerignore() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("libs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(".dockerignore"), "*.log\n").unwrap();
        let mut options = LowerOptions::default();
        let mut locals = BTreeMap::new();
        let specs = vec![
            format!("libs={}", dir.display()),
            format!("context={}", dir.display()),
        ];
        apply(&specs, None, &mut options, &mut locals).unwrap();
        assert_eq!(
            options.named_contexts["libs"],
            NamedContext::Local {
                exclude_patterns: vec!["*.log".into()]
            }
        );
        // `context` is the main context's source name: the named one is renamed, as buildx does.
        assert!(locals.contains_key("_context"));
        let libs = &locals["libs"];
        assert_eq!(libs.dir, std::fs::canonicalize(&dir).unwrap());
        assert!(libs.ignore.as_ref().unwrap().is_excluded("debug.log"));
    }

    #[test]
    fn bad_values_are_refused_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f.txt");
        std::fs::write(&file, "x").unwrap();
        let run = |spec: String| {
            apply(
                &[spec],
                None,
                &mut LowerOptions::default(),
                &mut BTreeMap::new(),
            )
            .unwrap_err()
            .render()
        };
        let e = run(format!("libs={}", tmp.path().join("nope").display()));
        assert!(
            e.contains("--build-context libs=") && e.contains("does not exist"),
            "{e}"
        );
        assert!(e.contains("help:"), "{e}");
        let e = run(format!("libs={}", file.display()));
        assert!(e.contains("is not a directory"), "{e}");
        let e = run("src=https://github.com/moby/buildkit.git".into());
        assert!(
            e.contains("URL and git build contexts are not built yet"),
            "{e}"
        );
        assert!(run("libs".into()).contains("NAME=DIR"));
        assert!(run("libs=".into()).contains("NAME=DIR"));
        let e = run("img=oci-layout://./layout".into());
        assert!(e.contains("pallet build --explain"), "{e}");
    }
}
