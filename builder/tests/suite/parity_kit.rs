//! What the parity_* modules share: our own versions of the cases in BuildKit's
//! frontend/dockerfile integration tests (one module per BuildKit file, listed with their
//! status in testdata/parity/CHECKLIST.md), built with the real pallet binary on a busybox
//! store. A [`Kit`] is one store; each [`Kit::context`] is a directory beside it with a
//! Dockerfile and files, built with [`Kit::build`] (any result), [`Kit::ok`], [`Kit::local`]
//! (the result's file tree, `-o type=local`), [`Kit::config`] (the image config) or
//! [`Kit::error`] (what a failed build printed).
//!
//! Many cases assert inside the Dockerfile, as BuildKit's do: a `RUN [ ... ]` that fails
//! fails the build, and [`Kit::ok`] fails the test with pallet's output.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use testkit::busybox::Rootfs;
use testkit::{pallet, require, text, Need::*, Store};

/// The users and groups of docker.io/library/busybox (BuildKit's tests name `daemon`,
/// `nobody` and `wheel`), over the test kit's busybox tree.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
bin:x:2:2:bin:/bin:/bin/false\n\
sys:x:3:3:sys:/dev:/bin/false\n\
sync:x:4:100:sync:/bin:/bin/sync\n\
mail:x:8:8:mail:/var/spool/mail:/bin/false\n\
www-data:x:33:33:www-data:/var/www:/bin/false\n\
operator:x:37:37:Operator:/var:/bin/false\n\
nobody:x:65534:65534:nobody:/home:/bin/false\n";
const GROUP: &str = "root:x:0:\n\
daemon:x:1:\n\
bin:x:2:\n\
sys:x:3:\n\
adm:x:4:\n\
tty:x:5:\n\
disk:x:6:\n\
wheel:x:10:root\n\
mail:x:8:\n\
www-data:x:33:\n\
operator:x:37:\n\
staff:x:50:\n\
users:x:100:\n\
nobody:x:65534:\n";

/// The test kit's busybox tree with docker's users and groups.
fn rootfs() -> Rootfs {
    Rootfs::new()
        .file("etc/passwd", PASSWD)
        .file("etc/group", GROUP)
}

/// Whether the parity cases can run here (root, runc, busybox-static).
pub fn can_run(what: &str) -> bool {
    require(what, &[Root, Busybox, Tool("runc")])
}

/// One store with busybox:latest (docker's users and groups), and build contexts beside it.
pub struct Kit {
    pub store: Store,
    outputs: std::cell::Cell<u32>,
}

impl Kit {
    pub fn new() -> Kit {
        Kit::with(pallet!())
    }

    /// A kit whose every pallet command is `pallet` (an environment set for all of them).
    pub fn with(pallet: testkit::Pallet) -> Kit {
        let store = Store::empty(pallet);
        store.import_busybox(&rootfs());
        Kit {
            store,
            outputs: std::cell::Cell::new(0),
        }
    }

    /// [`Kit::with`], importing the base from the tar at `tar` (written first): the import's
    /// history names the tar's path, so two stores that must give the same image digests
    /// import from the same path.
    pub fn with_tar_at(pallet: testkit::Pallet, tar: &Path) -> Kit {
        let store = Store::empty(pallet);
        rootfs().write_tar(tar);
        store
            .pallet()
            .arg("import")
            .arg(tar)
            .args(["-t", testkit::store::BUSYBOX_REFERENCE])
            .ok();
        Kit {
            store,
            outputs: std::cell::Cell::new(0),
        }
    }

    /// A context directory `name` with `Dockerfile` (unless empty) and `files` (0644, parents
    /// made); returns its path.
    pub fn context(&self, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.store.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        if !dockerfile.is_empty() {
            std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        }
        for (path, content) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        dir
    }

    /// `pallet build --progress plain ARGS CTX`, whatever its result.
    pub fn build(&self, ctx: &Path, args: &[&str]) -> Output {
        self.store
            .pallet()
            .args(["build", "--progress", "plain"])
            .args(args)
            .arg(ctx)
            .output()
    }

    /// A build that must succeed; returns its progress log.
    pub fn ok(&self, ctx: &Path, args: &[&str]) -> String {
        let out = self.build(ctx, args);
        assert!(
            out.status.success(),
            "build of {} {args:?} failed:\n{}",
            ctx.display(),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// A build that must fail; returns what it printed on stderr.
    pub fn error(&self, ctx: &Path, args: &[&str]) -> String {
        let out = self.build(ctx, args);
        assert!(
            !out.status.success(),
            "build of {} {args:?} succeeded, a failure was expected:\n{}",
            ctx.display(),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// Builds with `-o type=local` into a new directory and returns it.
    pub fn local(&self, ctx: &Path, args: &[&str]) -> PathBuf {
        let n = self.outputs.get() + 1;
        self.outputs.set(n);
        let dest = self.store.path(&format!("out-{n}"));
        let spec = format!("type=local,dest={}", dest.display());
        let mut all = vec!["-o", &spec];
        all.extend_from_slice(args);
        self.ok(ctx, &all);
        dest
    }

    /// Builds, tags the result and returns its image config (the OCI config blob: `config`,
    /// `history`, `rootfs`, ...).
    pub fn config(&self, ctx: &Path, args: &[&str]) -> Value {
        let n = self.outputs.get() + 1;
        self.outputs.set(n);
        let name = format!("parity-{n}");
        let mut all = vec!["-t", &name];
        all.extend_from_slice(args);
        self.ok(ctx, &all);
        let json = self
            .store
            .pallet()
            .args(["inspect", "--format", "json", &name])
            .ok();
        let v: Value = serde_json::from_str(&json).unwrap();
        v["config"].clone()
    }
}

/// The text of `dir/path`, with the path in the panic when it cannot be read.
pub fn read(dir: &Path, path: &str) -> String {
    let p = dir.join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Asserts each `(path, content)` of `dir`.
pub fn assert_files(dir: &Path, expected: &[(&str, &str)]) {
    for (path, content) in expected {
        assert_eq!(read(dir, path), *content, "content of {path}");
    }
}
