//! `ADD <git url>`: the Git source, as BuildKit's (moby/buildkit source/git). Its result is the
//! repository's file tree at one commit, committed as a layer of its own that the COPY/ADD file
//! op reads like any stage.
//!
//! - URL forms: `https://host/repo.git#ref:subdir`, `git@host:repo.git#ref`, `ssh://...`,
//!   `git://...` (the lowering splits off `#ref:subdir`). `ref` is a branch, a tag or a full
//!   commit sha; none means the remote's HEAD.
//! - The ref is resolved to a commit with `git ls-remote` first (a full sha is taken as is).
//!   The commit is the cache key: a branch that moved fetches again, one that did not is a
//!   cache hit without any fetch. Where a name is both a branch and a tag, the branch wins
//!   (BuildKit takes ls-remote's first line; heads sort before tags).
//! - `--checksum=<sha>` must be a prefix of the resolved commit (or of the annotated tag
//!   object), as BuildKit checks it; else the build fails naming both.
//! - Fetch: `git init` (in the remote's object format: SHA-256 for a 64-hex commit) +
//!   `git fetch --depth=1` of the ref (or of the commit by sha); a
//!   server that refuses a commit by sha gets a full fetch of its branches and tags; servers
//!   without shallow support (dumb HTTP) are fetched without `--depth`. Then a detached
//!   checkout and `git submodule update --init --recursive --depth 1` (not with
//!   `?submodules=false`; the URL's query is read by the frontend, `lower/git_ref.rs`).
//! - Without `--keep-git-dir` the `.git` directory goes, and so do the submodules' `.git`
//!   files (BuildKit leaves those as dangling pointers into its own cache; pallet drops them,
//!   a deliberate difference). `--keep-git-dir` keeps `.git` (origin with any password
//!   redacted, no reflog, no FETCH_HEAD), only when the whole repository is added, as BuildKit.
//! - Modes as BuildKit documents them: files 0644, or 0755 with an executable bit;
//!   directories 0755; owner 0:0. File times: the checkout's, unless SOURCE_DATE_EPOCH is set,
//!   then every file, directory and symlink gets the commit's time (BuildKit's `git.mtime=commit`,
//!   which its Dockerfile frontend turns on with SOURCE_DATE_EPOCH; part of the cache key).
//!
//! git runs without a shell, with a clean environment (no system or user config, no terminal
//! prompt, ssh in batch mode, `file://` and `ext::` transports off so a submodule cannot read
//! the host; for an ssh remote, SSH_AUTH_SOCK is the agent of `--ssh default`, required as
//! BuildKit requires it, and never pallet's own SSH_AUTH_SOCK), in a process group of its own that is killed when it prints nothing for
//! `PALLET_GIT_TIMEOUT` seconds (300). The waits happen on a thread of their own; the rayon
//! thread that asked keeps running other jobs meanwhile. Errors name the step (ls-remote,
//! fetch, checkout, submodule update), the URL without its password, and git's last lines.

mod command;
mod error;
mod refs;
mod tree;
mod url;

pub use command::GitFailure;
pub use error::GitError;
pub(crate) use url::redact as redact_git_url;

use super::{SourceError, SourceStep};
use crate::events::Event;
use crate::solver::keys;
use crate::solver::{CacheKey, SolveError, SolveOptions};
use crate::ssh::DEFAULT_ID;
use crate::store::{commit_upper, step_dir, LayerRecord};
use command::{off_pool, CommandError, Git};
use refs::{is_commit_sha, parse_head, parse_ref, Resolved};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tree::{normalize_modes, remove_git_dirs, set_times};
use url::{is_ssh, redact};

/// How much of git's stderr an error shows.
const TAIL_LINES: usize = 6;

/// An `ADD <git remote>` as the graph gives it.
pub(in crate::solver) struct Request<'a> {
    pub remote: &'a str,
    pub reference: &'a str,
    pub subdir: &'a str,
    pub keep_git_dir: bool,
    pub checksum: Option<&'a str>,
    /// Check out the submodules (the default; `?submodules=false` turns it off).
    pub submodules: bool,
}

/// Fetches `request`'s commit (or finds its tree in the cache): reports progress, returns
/// the one-layer tree and its cache key.
pub(in crate::solver) fn run(
    request: &Request<'_>,
    step: &SourceStep<'_>,
) -> Result<(Vec<LayerRecord>, CacheKey), SolveError> {
    let (name, opts, events) = (step.name, step.opts, step.events);
    let Request {
        remote,
        reference,
        subdir,
        keep_git_dir,
        checksum,
        submodules,
    } = *request;
    let fail = |e: GitError, started: bool| {
        if !started {
            events(Event::Started {
                name: name.to_string(),
            });
        }
        events(Event::Failed {
            name: name.to_string(),
            message: e.to_string(),
        });
        SolveError::step(name, SourceError::Git(e))
    };
    let spec = Spec {
        remote,
        url: redact(remote),
        reference: reference.trim(),
        subdir: clean_subdir(subdir).map_err(|m| fail(m, false))?,
        keep_git_dir,
        checksum: checksum.map(|c| c.trim().to_ascii_lowercase()),
        submodules,
        epoch: opts.epoch,
    };
    // BuildKit mounts the client's "default" ssh agent for ssh remotes (llb.Git's
    // MountSSHSock) and fails without one; pallet's own environment is not a fallback.
    let agent = if is_ssh(remote) {
        let agent = opts.ssh.get(DEFAULT_ID).ok_or_else(|| {
            let url = spec.url.clone();
            fail(GitError::NoSshAgent { url }, false)
        })?;
        Some(agent.clone())
    } else {
        None
    };
    let git = Git::new(agent);
    let resolved = off_pool(|| spec.resolve(&git)).map_err(|m| fail(m, false))?;
    spec.check_checksum(&resolved).map_err(|m| fail(m, false))?;
    let key = spec.cache_key(&resolved);
    if !step.no_cache {
        let hit = keys::lookup(opts.root, &key).map_err(|e| fail(e.into(), false))?;
        if let Some(layers) = hit {
            events(Event::Cached {
                name: name.to_string(),
            });
            return Ok((layers, key));
        }
    }
    let start = Instant::now();
    events(Event::Started {
        name: name.to_string(),
    });
    let log = |line: String| {
        events(Event::Log {
            name: name.to_string(),
            line,
        })
    };
    log(match &resolved.name {
        Some(n) => format!("{n} of {} is commit {}", spec.url, resolved.commit),
        None => format!("commit {} of {}", resolved.commit, spec.url),
    });
    let layer = spec
        .build(&git, &resolved, opts, &log)
        .map_err(|m| fail(m, true))?;
    let layers = vec![layer];
    keys::record(opts.root, &key, &layers).map_err(|e| fail(e.into(), true))?;
    events(Event::Done {
        name: name.to_string(),
        seconds: start.elapsed().as_secs_f64(),
    });
    Ok((layers, key))
}

/// The committer time (Unix seconds) of the commit `reference` names in `remote` (its HEAD
/// when empty), for a SOURCE_DATE_EPOCH stage's `ADD <git>`: resolved, checked against
/// `checksum` and fetched as the ADD itself is, into a step directory that goes away after.
/// An ssh remote needs `ssh_agent` (`--ssh default`), as the ADD does.
pub(crate) fn commit_time_for_epoch(
    root: &cache::Root,
    remote: &str,
    reference: &str,
    checksum: Option<&str>,
    ssh_agent: Option<PathBuf>,
) -> Result<i64, GitError> {
    let spec = Spec {
        remote,
        url: redact(remote),
        reference: reference.trim(),
        subdir: Vec::new(),
        keep_git_dir: false,
        checksum: checksum.map(|c| c.trim().to_ascii_lowercase()),
        epoch: None,
        // The commit's time needs no submodule.
        submodules: false,
    };
    if is_ssh(remote) && ssh_agent.is_none() {
        return Err(GitError::NoSshAgent { url: spec.url });
    }
    let git = Git::new(ssh_agent);
    let resolved = off_pool(|| spec.resolve(&git))?;
    spec.check_checksum(&resolved)?;
    let step = step_dir(root).map_err(|source| GitError::Commit {
        what: "creating a step directory",
        source,
    })?;
    let work = step.path().join("checkout");
    off_pool(|| spec.checkout(&git, &resolved, &work, &|_| {}))
}

/// What to add, as the graph gives it (subdir cleaned, URL redacted for messages).
struct Spec<'a> {
    remote: &'a str,
    /// The remote with any password replaced: for messages, logs and a kept `.git`.
    url: String,
    reference: &'a str,
    /// Path components under the repository root; empty: the whole tree.
    subdir: Vec<String>,
    keep_git_dir: bool,
    checksum: Option<String>,
    submodules: bool,
    epoch: Option<i64>,
}

impl Spec<'_> {
    fn keeps_git_dir(&self) -> bool {
        self.keep_git_dir && self.subdir.is_empty()
    }

    /// The ref as a commit, asking the remote unless it is a full sha.
    fn resolve(&self, git: &Git) -> Result<Resolved, GitError> {
        if is_commit_sha(self.reference) {
            let sha = self.reference.to_ascii_lowercase();
            return Ok(Resolved {
                commit: sha.clone(),
                object: sha,
                name: None,
            });
        }
        let step = |e: CommandError| e.describe("ls-remote", &self.url, self.remote);
        if self.reference.is_empty() {
            let out = git
                .run(None, &["ls-remote", "--symref", self.remote, "HEAD"])
                .map_err(step)?;
            return parse_head(&out).ok_or_else(|| GitError::NoHead {
                url: self.url.clone(),
            });
        }
        // The peeled pattern too: an annotated tag's commit is listed as `<tag>^{}`.
        let peeled = format!("{}^{{}}", self.reference);
        let out = git
            .run(None, &["ls-remote", self.remote, self.reference, &peeled])
            .map_err(step)?;
        parse_ref(&out, self.reference).ok_or_else(|| GitError::NoRef {
            url: self.url.clone(),
            reference: self.reference.to_string(),
        })
    }

    /// `--checksum`: a prefix of the commit (or of the annotated tag), as BuildKit checks it.
    fn check_checksum(&self, r: &Resolved) -> Result<(), GitError> {
        let Some(sum) = &self.checksum else {
            return Ok(());
        };
        if sum.is_empty() || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GitError::BadChecksum { sum: sum.clone() });
        }
        if r.commit.starts_with(sum.as_str()) || r.object.starts_with(sum.as_str()) {
            return Ok(());
        }
        Err(GitError::ChecksumMismatch {
            sum: sum.clone(),
            name: r.name.clone(),
            url: self.url.clone(),
            commit: r.commit.clone(),
        })
    }

    /// The vertex's cache key: the commit and everything else that shapes the tree.
    fn cache_key(&self, r: &Resolved) -> CacheKey {
        let mut key = format!("git/layer/{}", r.commit);
        if self.keeps_git_dir() {
            // The kept .git names the remote and the ref.
            key.push_str(&format!(
                "/git-dir/{}#{}",
                self.url,
                r.name.as_deref().unwrap_or("")
            ));
        }
        if !self.subdir.is_empty() {
            key.push_str(&format!("/subdir/{}", self.subdir.join("/")));
        }
        if self.epoch.is_some() {
            key.push_str("/mtime=commit");
        }
        if !self.submodules {
            key.push_str("/no-submodules");
        }
        CacheKey::new(key)
    }

    /// Fetches and checks out the commit in a step directory, shapes the tree, commits it.
    fn build(
        &self,
        git: &Git,
        r: &Resolved,
        opts: &SolveOptions,
        log: &(dyn Fn(String) + Sync),
    ) -> Result<LayerRecord, GitError> {
        let committing = |what| move |source| GitError::Commit { what, source };
        let step = step_dir(opts.root).map_err(committing("creating a step directory"))?;
        let work = step.path().join("checkout");
        let commit_time = off_pool(|| self.checkout(git, r, &work, log))?;
        let tree = self.select_subdir(&work, r)?;
        if !self.keeps_git_dir() {
            remove_git_dirs(&work).map_err(GitError::io("removing .git"))?;
        }
        normalize_modes(&tree).map_err(GitError::io("setting modes"))?;
        if self.epoch.is_some() {
            set_times(&tree, commit_time).map_err(GitError::io("setting file times"))?;
        }
        commit_upper(opts.root, &tree, None).map_err(committing("committing the tree"))
    }

    /// init, fetch, checkout, submodules; with `--keep-git-dir` tidies `.git` as BuildKit.
    /// Returns the commit's time (Unix seconds).
    fn checkout(
        &self,
        git: &Git,
        r: &Resolved,
        work: &Path,
        log: &(dyn Fn(String) + Sync),
    ) -> Result<i64, GitError> {
        let (url, remote) = (self.url.as_str(), self.remote);
        let w = Some(work);
        // A repository in SHA-256 object format has 64-hex commits: the fetching repository
        // must have that format too, or git cannot store what it fetches.
        let format = if r.commit.len() == 64 {
            "--object-format=sha256"
        } else {
            "--object-format=sha1"
        };
        git.run(
            None,
            &[
                "-c",
                "init.defaultBranch=main",
                "init",
                "-q",
                format,
                work.to_str().ok_or(GitError::NonUtf8Path)?,
            ],
        )
        .map_err(|e| e.describe("init", url, remote))?;
        git.run(w, &["remote", "add", "origin", remote])
            .map_err(|e| e.describe("remote add", url, remote))?;
        self.fetch(git, r, work, log)?;
        git.run(
            w,
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "--detach",
                &r.commit,
            ],
        )
        .map_err(|e| e.describe("checkout", url, remote))?;
        if self.submodules && work.join(".gitmodules").exists() {
            let args = [
                "submodule",
                "update",
                "--init",
                "--recursive",
                "--progress",
                "--depth=1",
            ];
            git.run_shallow(w, &args)
                .map_err(|e| e.describe("submodule update", url, remote))?;
        }
        let time = git
            .run(w, &["show", "-s", "--format=%ct", &r.commit])
            .map_err(|e| e.describe("show", url, remote))?;
        let time = time
            .trim()
            .parse::<i64>()
            .map_err(|_| GitError::CommitTime {
                commit: r.commit.clone(),
                found: time.trim().to_string(),
            })?;
        if self.keeps_git_dir() {
            if let Some(name) = &r.name {
                // The ref itself, as BuildKit's fetch of `ref:ref` leaves it.
                let has = git
                    .run(
                        w,
                        &["rev-parse", "--verify", "-q", &format!("{name}^{{commit}}")],
                    )
                    .is_ok_and(|s| s.trim() == r.commit);
                if !has {
                    git.run(w, &["update-ref", name, &r.commit])
                        .map_err(|e| e.describe("update-ref", url, remote))?;
                }
            }
            git.run(w, &["remote", "set-url", "origin", url])
                .map_err(|e| e.describe("remote set-url", url, remote))?;
            git.run(w, &["reflog", "expire", "--all", "--expire=now"])
                .map_err(|e| e.describe("reflog expire", url, remote))?;
            match std::fs::remove_file(work.join(".git/FETCH_HEAD")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(GitError::io("removing FETCH_HEAD")(e))
                }
                _ => {}
            }
        }
        Ok(time)
    }

    /// The ref by name (depth 1), else the commit by sha (depth 1), else every branch and tag.
    fn fetch(
        &self,
        git: &Git,
        r: &Resolved,
        work: &Path,
        log: &(dyn Fn(String) + Sync),
    ) -> Result<(), GitError> {
        let w = Some(work);
        let has_commit = || {
            git.run(w, &["cat-file", "-e", &format!("{}^{{commit}}", r.commit)])
                .is_ok()
        };
        let fetch = |refspec: &str| {
            git.run_shallow(
                w,
                &[
                    "fetch",
                    "--progress",
                    "--no-tags",
                    // The fresh repository's HEAD names refs/heads/main: may update it.
                    "--update-head-ok",
                    "--depth=1",
                    "origin",
                    refspec,
                ],
            )
        };
        if let Some(name) = &r.name {
            if fetch(&format!("+{name}:{name}")).is_ok() && has_commit() {
                return Ok(());
            }
            log(format!(
                "{name} moved since ls-remote: fetching commit {}",
                r.commit
            ));
        }
        let by_sha = fetch(&r.commit);
        if by_sha.is_ok() && has_commit() {
            return Ok(());
        }
        log(format!(
            "the server did not send commit {} by its sha: fetching all branches and tags",
            r.commit
        ));
        git.run(
            w,
            &[
                "fetch",
                "--progress",
                "--tags",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
            ],
        )
        .map_err(|e| e.describe("fetch", &self.url, self.remote))?;
        if has_commit() {
            return Ok(());
        }
        Err(GitError::CommitNotFound {
            commit: r.commit.clone(),
            url: self.url.clone(),
            why: by_sha.err().map(|e| e.tail(self.remote)),
        })
    }

    /// The directory the layer is made of: the checkout or the subdir in it (a real
    /// directory: no symlink on the way, so nothing outside the checkout can be named).
    fn select_subdir(&self, work: &Path, r: &Resolved) -> Result<PathBuf, GitError> {
        let mut dir = work.to_path_buf();
        for c in &self.subdir {
            dir.push(c);
            let (subdir, url, commit) = (self.subdir.join("/"), self.url.clone(), r.commit.clone());
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(GitError::SubdirNotDir {
                        subdir,
                        url,
                        commit,
                    })
                }
                Err(_) => {
                    return Err(GitError::SubdirMissing {
                        subdir,
                        url,
                        commit,
                    })
                }
            }
        }
        Ok(dir)
    }
}

/// `#ref:subdir`'s subdir as components; `..` may not leave the repository.
fn clean_subdir(subdir: &str) -> Result<Vec<String>, GitError> {
    let mut out: Vec<String> = Vec::new();
    for c in subdir.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(GitError::SubdirOutside {
                        subdir: subdir.to_string(),
                    });
                }
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";

    #[test]
    fn subdirs_stay_inside() {
        assert_eq!(clean_subdir("").unwrap(), Vec::<String>::new());
        assert_eq!(clean_subdir("/a/./b/").unwrap(), vec!["a", "b"]);
        assert_eq!(clean_subdir("a/../b").unwrap(), vec!["b"]);
        assert!(clean_subdir("../etc").is_err());
    }

    #[test]
    fn checksum_is_a_prefix_of_the_commit_or_tag() {
        let spec = |sum: &str| Spec {
            remote: "git://h/r.git",
            url: "git://h/r.git".into(),
            reference: "v1",
            subdir: Vec::new(),
            keep_git_dir: false,
            checksum: Some(sum.into()),
            submodules: true,
            epoch: None,
        };
        let r = Resolved {
            commit: A.into(),
            object: B.into(),
            name: Some("refs/tags/v1".into()),
        };
        assert!(spec(A).check_checksum(&r).is_ok());
        assert!(spec("2222222").check_checksum(&r).is_ok());
        let e = spec(C).check_checksum(&r).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "checksum mismatch: expected checksum to match {C}, got {A} \
                 (refs/tags/v1 of git://h/r.git)"
            )
        );
        assert!(spec("sha256:ab").check_checksum(&r).is_err());
    }

    #[test]
    fn stderr_tail_collapses_progress_and_scrubs() {
        let e = CommandError {
            how: GitFailure::Lost,
            stderr: "Receiving objects:  10%\rReceiving objects: 100%\nfatal: auth for https://u:pw@h failed\n".into(),
        };
        let t = e.tail("https://u:pw@h/x.git");
        assert_eq!(
            t,
            "Receiving objects: 100%\nfatal: auth for https://u:xxxxx@h failed"
        );
        assert_eq!(
            e.describe("fetch", "https://u:xxxxx@h/x.git", "https://u:pw@h/x.git")
                .to_string(),
            format!(
                "git fetch failed for https://u:xxxxx@h/x.git: lost track of the git process:\n{t}"
            )
        );
        let quiet = CommandError {
            how: GitFailure::Silent(300),
            stderr: String::new(),
        };
        assert_eq!(
            quiet
                .describe("ls-remote", "git://h/r.git", "git://h/r.git")
                .to_string(),
            "git ls-remote failed for git://h/r.git: stopped after 300 s without output \
             (PALLET_GIT_TIMEOUT=<seconds> sets the limit)"
        );
        let gone = |why: Option<&str>| {
            GitError::CommitNotFound {
                commit: A.into(),
                url: "u".into(),
                why: why.map(String::from),
            }
            .to_string()
        };
        assert!(gone(None).ends_with("during the build?)"));
        assert!(gone(Some("")).ends_with("during the build?): "));
        assert!(gone(Some("fatal: x")).ends_with("during the build?): fatal: x"));
    }
}
