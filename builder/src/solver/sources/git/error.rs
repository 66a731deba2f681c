//! What an `ADD <git remote>` fails with: the step (ls-remote, fetch, checkout, submodule
//! update), the URL without its password, and git's last lines.

use super::command::GitFailure;
use crate::store::StoreError;
use std::io;

/// Why an `ADD <git remote>` could not be fetched or committed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("the git subdir \"{subdir}\" leaves the repository: name a directory inside it")]
    SubdirOutside { subdir: String },
    /// An ssh remote, and no `--ssh default` agent to fetch it with.
    #[error(
        "{url} is fetched over ssh, with the agent of --ssh default: no SSH agent \"default\" \
         was forwarded (pass --ssh default for $SSH_AUTH_SOCK, or --ssh default=KEYFILE)"
    )]
    NoSshAgent { url: String },
    /// git `command` failed for `url`; `tail`: the last lines of its stderr, any password
    /// scrubbed.
    #[error("git {command} failed for {url}: {source}{}", lines(.tail))]
    Command {
        command: &'static str,
        url: String,
        tail: String,
        #[source]
        source: GitFailure,
    },
    #[error(
        "ls-remote: {url} has no default branch (HEAD): name a branch or tag with {url}#<ref>"
    )]
    NoHead { url: String },
    /// BuildKit's words first ("repository does not contain ref", its tests match them).
    #[error(
        "ls-remote: repository does not contain ref {reference}: {url} has no branch or tag \
         named \"{reference}\"{}",
        sha_hint(.reference)
    )]
    NoRef { url: String, reference: String },
    #[error(
        "invalid checksum \"{sum}\" for a git source, expected hex commit hash: give the \
         commit's sha (--checksum=<sha>)"
    )]
    BadChecksum { sum: String },
    /// `--checksum` is a prefix of neither the commit nor the tag `name` (None: the remote's
    /// HEAD, a sha) resolved to. BuildKit's words ("expected checksum to match"), then where.
    #[error(
        "checksum mismatch: expected checksum to match {sum}, got {commit} ({} of {url})",
        name.as_deref().unwrap_or("the ref")
    )]
    ChecksumMismatch {
        sum: String,
        name: Option<String>,
        url: String,
        commit: String,
    },
    #[error("the store path is not UTF-8")]
    NonUtf8Path,
    #[error("git show: the commit time of {commit} is \"{found}\"")]
    CommitTime { commit: String, found: String },
    /// The commit was fetched by name, by sha and with every branch and tag, and is not
    /// there; `why`: the tail of git's answer to the fetch by sha.
    #[error(
        "fetch: commit {commit} is not on any branch or tag of {url} (did the ref move or get \
         deleted during the build?){}",
        why.as_deref().map(|w| format!(": {w}")).unwrap_or_default()
    )]
    CommitNotFound {
        commit: String,
        url: String,
        why: Option<String>,
    },
    #[error("checkout: {subdir} is not a directory in {url} at {commit}")]
    SubdirNotDir {
        subdir: String,
        url: String,
        commit: String,
    },
    #[error("checkout: {subdir} does not exist in {url} at {commit}")]
    SubdirMissing {
        subdir: String,
        url: String,
        commit: String,
    },
    /// Shaping the checked-out tree (`what`: what was being done).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Making the tree a layer, while doing `what`.
    #[error("{what}: {source}")]
    Commit {
        what: &'static str,
        #[source]
        source: StoreError,
    },
    /// The cache of the committed tree.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GitError {
    /// An I/O failure while doing `what`.
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> GitError {
        let what = what.into();
        move |source| GitError::Io { what, source }
    }
}

/// git's last lines, on lines of their own after the failure.
fn lines(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{tail}")
    }
}

/// Why a hex string may not have been found: commits are given by their full sha.
fn sha_hint(reference: &str) -> &'static str {
    if reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        " (a commit must be given as its full sha)"
    } else {
        ""
    }
}
