//! The op types of the graph: what each vertex computes.

use serde::Serialize;

/// An OCI platform (`linux/amd64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Source(Source),
    Exec(Exec),
    File(FileOp),
    /// The inputs' file trees layered in order (what `COPY --link` produces).
    Merge,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An empty file tree.
    Scratch,
    /// An image by normalized reference (`docker.io/library/python:3.10-slim`, with
    /// `@sha256:...` when resolved).
    Image {
        reference: String,
        platform: Platform,
    },
    /// A local directory sent by the client: `context` is the main build context, any other
    /// name a `--build-context NAME=DIR` (see `frontend::lower::local_source_name`). Only the
    /// exclusion patterns are part of the definition; contents go into cache keys later.
    Local {
        name: String,
        exclude_patterns: Vec<String>,
    },
    /// A file downloaded over HTTP(S).
    Http {
        url: String,
        filename: String,
        checksum: Option<String>,
    },
    /// A git repository.
    Git {
        remote: String,
        reference: String,
        subdir: String,
        keep_git_dir: bool,
        checksum: Option<String>,
        /// `?submodules=false`: the submodules are not checked out. Left out of the
        /// definition when false, so the digests of other git sources stay as they were.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        skip_submodules: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// The host's network namespace (pallet's default sandbox, see DESIGN.md).
    Default,
    None,
    Host,
}

/// Runs a process on the root file tree (input 0) with extra mounts; the result is the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: Network,
    pub insecure: bool,
    pub mounts: Vec<ExecMount>,
    /// The platform the process is for, when it is not the build platform's (a RUN in a
    /// stage for linux/arm64 on an amd64 host runs under emulation). Part of the op, so of its
    /// cache key; None for native steps, so a `FROM --platform=$BUILDPLATFORM` stage has the
    /// same ops (and runs once) for every target platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The container's hostname (`--build-arg BUILDKIT_SANDBOX_HOSTNAME`); empty: BuildKit's
    /// default, `buildkitsandbox`. Left out of the digest when empty, so ops without it keep
    /// theirs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// `--shm-size`: the size of the step's /dev/shm in bytes; 0: the default (64 MiB, as
    /// BuildKit). Left out of the digest when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shm_size: u64,
    /// `--ulimit`: resource limits of the step's process (BuildKit's exec meta); empty: the
    /// defaults. Left out of the digest when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `--ulimit` names docker takes.
pub const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// One `--ulimit NAME=SOFT[:HARD]` (docker's names: `nofile`, `nproc`, `core`, ...; -1 is
/// unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecMount {
    pub target: String,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// A path of an input's file tree (bind mount); `rw` writes are discarded.
    Input {
        input: usize,
        source: String,
        readonly: bool,
    },
    /// A persistent cache directory, optionally seeded from an input.
    Cache {
        id: String,
        sharing: String,
        from: Option<(usize, String)>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A secret from the client: as a file at `target`, or as an env variable. Only its id is
    /// in the graph, never its value.
    Secret {
        id: String,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Ssh {
        id: String,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        size: Option<u64>,
    },
}

/// File actions applied in order to input 0 (or to scratch when there is no input 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOp {
    /// False when the op starts from an empty tree rather than its first input.
    pub on_input: bool,
    pub actions: Vec<FileAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    Mkdir {
        path: String,
        mode: u32,
        parents: bool,
        owner: Option<String>,
        timestamp: Option<i64>,
    },
    Mkfile {
        path: String,
        mode: u32,
        data: String,
        owner: Option<String>,
        timestamp: Option<i64>,
    },
    Copy(CopyAction),
}

/// Copies `src` of input `input` to `dest`, with BuildKit's COPY/ADD semantics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyAction {
    pub input: usize,
    pub src: String,
    pub dest: String,
    /// `--chown` as written (`app`, `1000:1000`); names are resolved in the target tree.
    pub owner: Option<String>,
    /// `--chmod`: octal (`0755`) or symbolic (`u+x`).
    pub mode: Option<String>,
    pub follow_symlinks: bool,
    pub dir_contents_only: bool,
    pub allow_wildcard: bool,
    pub allow_empty_wildcard: bool,
    pub create_dest_path: bool,
    /// ADD: unpack local archives.
    pub attempt_unpack: bool,
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
    pub required_paths: Vec<String>,
    pub timestamp: Option<i64>,
}

impl CopyAction {
    /// A plain copy of `src` (of input `input`) to `dest`: a directory's contents, missing
    /// parents of dest created, no wildcards, no symlink following, owners and modes kept.
    /// Callers change the rest with struct update syntax.
    pub fn new(input: usize, src: impl Into<String>, dest: impl Into<String>) -> CopyAction {
        CopyAction {
            input,
            src: src.into(),
            dest: dest.into(),
            owner: None,
            mode: None,
            follow_symlinks: false,
            dir_contents_only: true,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            create_dest_path: true,
            attempt_unpack: false,
            include_patterns: Vec::new(),
            exclude_patterns: Vec::new(),
            required_paths: Vec::new(),
            timestamp: None,
        }
    }
}
