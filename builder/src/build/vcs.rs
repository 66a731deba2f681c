//! What buildx tells BuildKit about the git checkout a build's context is in (its
//! build/git.go, on by default, `BUILDX_GIT_INFO=false` turns it off): the commit
//! (`vcs:revision`, with `-dirty` when `BUILDX_GIT_CHECK_DIRTY=true` and the tree has changes),
//! the remote (`vcs:source`: `origin`, else `upstream`, credentials stripped) and where the
//! context and the Dockerfile's directory are in the checkout (`vcs:localdir:context`,
//! `vcs:localdir:dockerfile`). The provenance records them as `buildkit_metadata.vcs`. Read
//! with the `git` command, as buildx does; no git or no checkout: nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The `vcs:` facts (keys without the prefix: `revision`, `source`, `localdir:context`, ...)
/// of a build whose context is `context` and whose Dockerfile is in `dockerfile_dir`.
pub fn git_info(context: &Path, dockerfile_dir: Option<&Path>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if env_bool("BUILDX_GIT_INFO") == Some(false) {
        return out;
    }
    let Ok(context) = std::fs::canonicalize(context) else {
        return out;
    };
    let git = |args: &[&str]| -> Option<String> {
        let o = Command::new("git")
            .arg("-C")
            .arg(&context)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .ok()?;
        let text = String::from_utf8(o.stdout).ok()?.trim().to_string();
        (o.status.success() && !text.is_empty()).then_some(text)
    };
    if git(&["rev-parse", "--is-inside-work-tree"]).as_deref() != Some("true") {
        return out;
    }
    if let Some(mut sha) = git(&["rev-parse", "HEAD"]) {
        if env_bool("BUILDX_GIT_CHECK_DIRTY") == Some(true)
            && git(&["status", "--porcelain", "--ignored=no"]).is_some()
        {
            sha.push_str("-dirty");
        }
        out.insert("revision".into(), sha);
    }
    let remote =
        git(&["remote", "get-url", "origin"]).or_else(|| git(&["remote", "get-url", "upstream"]));
    if let Some(url) = remote {
        out.insert("source".into(), strip_credentials(&url));
    }
    if let Some(root) =
        git(&["rev-parse", "--show-toplevel"]).and_then(|r| std::fs::canonicalize(r).ok())
    {
        let dirs = [
            ("context", Some(context.clone())),
            (
                "dockerfile",
                dockerfile_dir.and_then(|d| std::fs::canonicalize(d).ok()),
            ),
        ];
        for (name, dir) in dirs {
            let Some(rel) = dir.as_deref().and_then(|d| d.strip_prefix(&root).ok()) else {
                continue;
            };
            let rel = rel.to_string_lossy();
            let rel = if rel.is_empty() {
                ".".to_string()
            } else {
                rel.into_owned()
            };
            out.insert(format!("localdir:{name}"), rel);
        }
    }
    out
}

fn env_bool(name: &str) -> Option<bool> {
    match std::env::var(name).ok()?.as_str() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `https://user:pass@host/x` -> `https://host/x` (buildx drops a remote's credentials).
fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{}", &rest[host_end..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_credentials_are_dropped() {
        assert_eq!(
            strip_credentials("https://user:pass@example.invalid/repo.git"),
            "https://example.invalid/repo.git"
        );
        assert_eq!(
            strip_credentials("git@github.com:org/repo.git"),
            "git@github.com:org/repo.git"
        );
    }
}
