//! ADD's archive extraction: `pallet::exec::fileop::copy` with `attempt_unpack` (what
//! `ADD archive.tar /dest/` runs) over arbitrary bytes as the context's archive.
//!
//! The destination root is not empty: it holds a "lower layer" with files, a directory and
//! symlinks that point out of it (`../sentinel`, the sentinel's absolute path) and within it,
//! so that entry names through symlinks, hardlinks to them and replaced entries have
//! something to hit; each input is extracted twice, into a plain directory and through the
//! in-root symlink. Beside it lie the context (holding the archive) and the sentinel, which
//! the extraction must never touch.
//!
//! Invariants: never a panic; after each input the scratch directory holds exactly the
//! context, the destination and the sentinel; the sentinel and the archive are unchanged;
//! no error is EROFS (bench/fuzz.sh runs this target, like `unpack`, with the filesystem
//! read-only except its scratch, corpus and artifact directories).
#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::OnceLock;

use graph::CopyAction;
use libfuzzer_sys::fuzz_target;

#[path = "shared/confined.rs"]
mod confined;
use confined::{assert_not_erofs, names, Sentinel};

struct Scratch {
    _dir: tempfile::TempDir,
    /// `<tmp>/r`: holds `ctx`, `dest` and `sentinel`, nothing else.
    root: PathBuf,
    ctx: PathBuf,
    dest: PathBuf,
    sentinel: Sentinel,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pallet-fuzz-add-")
            .tempdir()
            .expect("a scratch directory (TMPDIR)");
        let root = dir.path().join("r");
        let sentinel = Sentinel::make(root.join("sentinel"));
        let ctx = root.join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        Scratch {
            dest: root.join("dest"),
            ctx,
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
    fs::write(d.join("dir/sub/file"), b"lower").unwrap();
    fs::write(d.join("dir/a"), b"a").unwrap();
    symlink("../sentinel", d.join("out")).unwrap();
    symlink("../sentinel/keep", d.join("outfile")).unwrap();
    symlink(&s.sentinel.path, d.join("abs")).unwrap();
    symlink("dir", d.join("in")).unwrap();
}

fn assert_confined(s: &Scratch, archive: &[u8], dest: &str) {
    let parent = s.root.parent().unwrap();
    assert_eq!(
        names(parent),
        ["r"],
        "something appeared beside the scratch root ({dest})"
    );
    assert_eq!(
        names(&s.root),
        ["ctx", "dest", "sentinel"],
        "something appeared beside dest ({dest})"
    );
    assert_eq!(names(&s.ctx), ["a.tar"], "the context changed ({dest})");
    assert_eq!(
        fs::read(s.ctx.join("a.tar")).unwrap(),
        archive,
        "the archive was written ({dest})"
    );
    s.sentinel.assert_unchanged(&dest);
}

fuzz_target!(|data: &[u8]| {
    let s = scratch();
    fs::write(s.ctx.join("a.tar"), data).unwrap();
    for dest in ["/x/", "/in/sub/"] {
        fresh_dest(s);
        // As the frontend lowers `ADD a.tar <dest>`.
        let action = CopyAction {
            follow_symlinks: true,
            allow_wildcard: true,
            allow_empty_wildcard: true,
            attempt_unpack: true,
            ..CopyAction::new(0, "/a.tar", dest)
        };
        if let Err(e) = pallet::exec::fileop::copy(&s.ctx, &s.dest, &action, None, None) {
            let _ = e.to_string();
            assert_not_erofs(&e, &dest);
        }
        assert_confined(s, data, dest);
    }
});
