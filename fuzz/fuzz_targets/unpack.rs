//! Layer tars: `pallet::snapshot::unpack_layer` (plain or gzip, detected by magic) into a
//! directory, with `UnpackOptions` both ways (overlayfs whiteouts and owners from the tar;
//! whiteouts applied as deletions and owners ignored).
//!
//! The destination is not empty: it holds a "lower layer" with files, a directory, and
//! symlinks that point out of it (`../sentinel`, and the sentinel's absolute path) and within
//! it, so that names through symlinks, hardlinks to them, whiteouts of them and opaque
//! directories have something to hit. Beside it lies the sentinel, a directory outside the
//! destination that the unpack must never touch.
//!
//! Invariants: never a panic; after each input the scratch directory holds exactly the
//! destination and the sentinel, and the sentinel is unchanged (entries, content, mode,
//! owner, link count, mtime); no error is EROFS (bench/fuzz.sh runs this target with the
//! whole filesystem read-only except its scratch, corpus and artifact directories, so EROFS
//! means a write was attempted outside the destination).
#![no_main]

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "shared/confined.rs"]
mod confined;
use confined::{assert_not_erofs, names, Sentinel};
use pallet::snapshot::{unpack_layer, UnpackOptions};

struct Scratch {
    _dir: tempfile::TempDir,
    /// `<tmp>/r`: holds `dest` and `sentinel`, nothing else.
    root: PathBuf,
    dest: PathBuf,
    sentinel: Sentinel,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pallet-fuzz-unpack-")
            .tempdir()
            .expect("a scratch directory (TMPDIR)");
        let root = dir.path().join("r");
        let sentinel = Sentinel::make(root.join("sentinel"));
        Scratch {
            dest: root.join("dest"),
            root,
            sentinel,
            _dir: dir,
        }
    })
}

/// A fresh destination holding a small lower layer.
fn fresh_dest(s: &Scratch) {
    if s.dest.exists() {
        fs::remove_dir_all(&s.dest).expect("clearing the destination");
    }
    let d = &s.dest;
    fs::create_dir_all(d.join("dir/sub")).unwrap();
    fs::create_dir_all(d.join("etc")).unwrap();
    fs::write(d.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(d.join("dir/sub/file"), b"lower").unwrap();
    fs::write(d.join("dir/a"), b"a").unwrap();
    symlink("../sentinel", d.join("out")).unwrap();
    symlink("../sentinel/keep", d.join("outfile")).unwrap();
    symlink(&s.sentinel.path, d.join("abs")).unwrap();
    symlink("dir", d.join("in")).unwrap();
}

fn assert_confined(s: &Scratch, opts: &UnpackOptions) {
    let parent = s.root.parent().unwrap();
    assert_eq!(
        names(parent),
        ["r"],
        "something appeared beside the scratch root ({opts:?})"
    );
    assert_eq!(
        names(&s.root),
        ["dest", "sentinel"],
        "something appeared beside dest ({opts:?})"
    );
    s.sentinel.assert_unchanged(opts);
}

fuzz_target!(|data: &[u8]| {
    let s = scratch();
    for opts in [
        UnpackOptions {
            overlay_whiteouts: true,
            same_owner: true,
            ..UnpackOptions::default()
        },
        UnpackOptions {
            overlay_whiteouts: false,
            same_owner: false,
            ..UnpackOptions::default()
        },
    ] {
        fresh_dest(s);
        if let Err(e) = unpack_layer(&mut Cursor::new(data), &s.dest, &opts) {
            let _ = e.to_string();
            assert_not_erofs(&e, &opts);
        }
        assert_confined(s, &opts);
    }
});
