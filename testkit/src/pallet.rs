//! The pallet binary as a test runs it: a command builder that knows pallet's `--root`, feeds
//! stdin, and says everything pallet printed when a run does not end as the test expects.
//!
//! ```text
//! use testkit::pallet;
//! let stdout = pallet!().root(&root).args(["images"]).ok();
//! let out = pallet!().root(&root).args(["build", ctx]).env("SOURCE_DATE_EPOCH", "1").output();
//! let failed = pallet!().args(["build", "/nowhere"]).fails();
//! ```
//!
//! A `Pallet` is a value (Clone): set it up once (root, environment) and derive each run from
//! it. The binary's path comes from the test, through [`pallet!`](crate::pallet!).

use crate::run::{assert_success, text};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `Pallet::new(env!("CARGO_BIN_EXE_pallet"))`: the binary of the crate whose test this is
/// (only builder's tests have it).
#[macro_export]
macro_rules! pallet {
    () => {
        $crate::Pallet::new(env!("CARGO_BIN_EXE_pallet"))
    };
}

/// One pallet command line, with its environment, working directory and stdin.
#[derive(Clone, Debug)]
pub struct Pallet {
    bin: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    /// Run as this uid and gid (the test runs as root), supplementary groups dropped.
    user: Option<(u32, u32)>,
}

impl Pallet {
    /// The binary at `bin`, no arguments yet.
    pub fn new(bin: impl Into<PathBuf>) -> Pallet {
        Pallet {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            stdin: None,
            user: None,
        }
    }

    /// The binary this runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The same command line with another binary (a copy a test user can reach).
    pub fn with_bin(mut self, bin: impl Into<PathBuf>) -> Pallet {
        self.bin = bin.into();
        self
    }

    /// Runs pallet as `uid`:`gid` with no supplementary groups (see `user::TestUser`, which
    /// also sets HOME and the directory).
    pub fn as_user(mut self, uid: u32, gid: u32) -> Pallet {
        self.user = Some((uid, gid));
        self
    }

    /// `--root ROOT` (the store), as the next arguments.
    pub fn root(self, root: impl AsRef<Path>) -> Pallet {
        self.arg("--root").arg(root.as_ref())
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Pallet {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Pallet
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the run.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Pallet {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable the test process has.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Pallet {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Pallet {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Bytes written to pallet's stdin (closed after them) by [`output`](Pallet::output) and
    /// the methods built on it. Without this, stdin is empty.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Pallet {
        self.stdin = Some(input.into());
        self
    }

    /// The std command, for a test that spawns pallet and manages its stdio itself (the
    /// [`stdin`](Pallet::stdin) bytes are not part of it).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args);
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        if let Some((uid, gid)) = self.user {
            // std drops the supplementary groups when root sets a uid without groups.
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        cmd
    }

    /// Runs pallet to its end and returns what it printed, whatever its exit status.
    pub fn output(&self) -> Output {
        let mut cmd = self.command();
        let Some(input) = &self.stdin else {
            return cmd
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.describe()));
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.describe()));
        let mut sink = child.stdin.take().unwrap();
        let input = input.clone();
        // A thread, so that a pallet printing before it reads cannot block on a full pipe.
        let feeder = std::thread::spawn(move || {
            // pallet may exit without reading everything: a broken pipe is its business.
            let _ = sink.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    }

    /// Runs pallet, which must succeed; returns its stdout.
    pub fn ok(&self) -> String {
        text(&self.succeeds().stdout)
    }

    /// Runs pallet, which must succeed; returns everything it printed.
    pub fn succeeds(&self) -> Output {
        let out = self.output();
        assert_success(&self.describe(), &out);
        out
    }

    /// Runs pallet, which must run and fail (exit with a status other than 0); returns
    /// everything it printed.
    pub fn fails(&self) -> Output {
        let out = self.output();
        assert!(
            !out.status.success(),
            "{} succeeded, but must fail:\nstdout:\n{}\nstderr:\n{}",
            self.describe(),
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// `pallet ARGS...` for messages.
    pub fn describe(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!("pallet {}", args.join(" "))
    }
}
