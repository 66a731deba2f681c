//! A pallet store for one test: a temp dir (removed when the `Store` drops) holding the store
//! root at `DIR/root`, and room beside it for contexts and outputs. [`Store::busybox`] has the
//! [busybox-static tree](crate::busybox) imported as `busybox:latest`.
//!
//! ```text
//! let store = Store::busybox(pallet!());
//! let ctx = testkit::files::context(&store.path("ctx"), "FROM busybox\nRUN true\n", &[]);
//! let log = store.pallet().args(["build", "--progress", "plain"]).arg(&ctx).succeeds();
//! ```

use crate::busybox::Rootfs;
use crate::pallet::Pallet;
use std::path::{Path, PathBuf};

/// The reference [`Store::busybox`] imports the busybox tree as.
pub const BUSYBOX_REFERENCE: &str = "busybox:latest";

/// A store root in a temp dir, and the pallet that uses it.
pub struct Store {
    dir: tempfile::TempDir,
    root: PathBuf,
    pallet: Pallet,
}

impl Store {
    /// A temp dir with no store in it yet (pallet makes `DIR/root` on first use). `pallet` is
    /// the binary to run, with no arguments (`pallet!()`).
    pub fn empty(pallet: Pallet) -> Store {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        Store { dir, root, pallet }
    }

    /// A store holding the standard busybox-static tree as `busybox:latest`.
    pub fn busybox(pallet: Pallet) -> Store {
        let store = Store::empty(pallet);
        store.import_busybox(&Rootfs::new());
        store
    }

    /// A store whose `busybox:latest` is a multi-platform image: the host's busybox tree for
    /// linux/amd64 and Debian's arm64 busybox-static tree for linux/arm64 (`pallet import
    /// --append`), both imported at SOURCE_DATE_EPOCH 1700000000, so every store has the same
    /// index.
    pub fn busybox_multiplatform(pallet: Pallet) -> Store {
        let store = Store::empty(pallet);
        for (platform, rootfs) in [
            ("linux/amd64", Rootfs::new()),
            ("linux/arm64", Rootfs::arm64()),
        ] {
            store
                .pallet()
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .stdin(rootfs.tar())
                .args([
                    "import",
                    "-",
                    "-t",
                    BUSYBOX_REFERENCE,
                    "--platform",
                    platform,
                ])
                .arg("--append")
                .ok();
        }
        store
    }

    /// The temp dir the store root is in: room for contexts and outputs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `DIR/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The store root (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// pallet with `--root` this store; add the command and its arguments.
    pub fn pallet(&self) -> Pallet {
        self.pallet.clone().root(&self.root)
    }

    /// Imports `rootfs` as `busybox:latest` (replacing the tag); returns what import printed.
    pub fn import_busybox(&self, rootfs: &Rootfs) -> String {
        import_busybox(&self.pallet(), rootfs)
    }
}

/// Imports `rootfs` as `busybox:latest` with `pallet` (whose `--root` names the store);
/// returns what import printed (`REFERENCE DIGEST`).
pub fn import_busybox(pallet: &Pallet, rootfs: &Rootfs) -> String {
    let tar = tempfile::NamedTempFile::new().unwrap();
    rootfs.write_tar(tar.path());
    pallet
        .clone()
        .arg("import")
        .arg(tar.path())
        .args(["-t", BUSYBOX_REFERENCE])
        .ok()
}
