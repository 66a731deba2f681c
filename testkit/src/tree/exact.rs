//! The exact view of a file tree, for tests of layers and snapshots that must keep everything:
//! type, permission bits, owner, mtime (seconds), link count of non-directories, device
//! number, content, symlink target and xattrs (those of overlayfs and SELinux left out: the
//! host adds them). Sockets are skipped, as layers do not carry them.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Everything observable about one file.
#[derive(Debug, PartialEq)]
pub struct Node {
    /// The `S_IFMT` bits of the mode.
    pub kind: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Link count (files only: overlayfs reports 1 for merged directories).
    pub nlink: u64,
    pub rdev: u64,
    /// sha256 (hex) of a regular file's content, else empty.
    pub content: String,
    pub link: Option<PathBuf>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// The tree under `root` (root itself excluded), sockets skipped, by relative path.
pub fn scan(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    scan_into(root, root, &mut out);
    out
}

fn scan_into(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let m = fs::symlink_metadata(&path).unwrap();
        let kind = m.mode() & libc::S_IFMT;
        if kind == libc::S_IFSOCK {
            continue;
        }
        let content = if m.is_file() {
            hex::encode(Sha256::digest(fs::read(&path).unwrap()))
        } else {
            String::new()
        };
        let xattrs = xattr::list(&path)
            .unwrap()
            .filter(|n| !n.to_string_lossy().contains("overlay.") && n != "security.selinux")
            .map(|n| {
                (
                    n.to_string_lossy().into_owned(),
                    xattr::get(&path, &n).unwrap().unwrap_or_default(),
                )
            })
            .collect();
        let node = Node {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.mtime(),
            nlink: if m.is_dir() { 0 } else { m.nlink() },
            rdev: m.rdev(),
            content,
            link: m.is_symlink().then(|| fs::read_link(&path).unwrap()),
            xattrs,
        };
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.insert(rel, node);
        if m.is_dir() {
            scan_into(root, &path, out);
        }
    }
}

/// Panics unless the trees under `left` and `right` are exactly the same.
pub fn assert_same_tree(left: &Path, right: &Path) {
    assert_same_nodes(scan(left), scan(right));
}

/// Panics unless both scans have the same paths and the same node at each.
pub fn assert_same_nodes(l: BTreeMap<String, Node>, r: BTreeMap<String, Node>) {
    assert_eq!(
        l.keys().collect::<Vec<_>>(),
        r.keys().collect::<Vec<_>>(),
        "same paths"
    );
    for (path, node) in &l {
        assert_eq!(node, &r[path], "{path}");
    }
}
