//! File trees compared path by path, as image tests compare them: what is at each path (type,
//! permission bits with setuid/setgid/sticky, numeric owner, symlink target, device numbers,
//! content hash), not when it was made. A [`Tree`] comes from a directory on disk
//! ([`from_dir`]) or from image layers applied in order with their whiteouts
//! ([`layers::apply`]); [`compare`] lists the paths where two trees differ.
//!
//! [`exact`] is the stricter view of the snapshot tests: times, link counts and xattrs too.

pub mod exact;
pub mod layers;

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Paths relative to the root, without a leading or trailing slash; the root itself is "".
pub type Tree = BTreeMap<String, Node>;

/// What kind of file a path is, with what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File { size: u64, sha256: String },
    Symlink(String),
    CharDevice(u64, u64),
    BlockDevice(u64, u64),
    Fifo,
    Socket,
}

impl Kind {
    /// A regular file with this content.
    pub fn file(content: &[u8]) -> Kind {
        let (size, sha256) = hash(content);
        Kind::File { size, sha256 }
    }
}

/// One path of a file tree, as compared: everything but times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (0777 for symlinks, whose mode is moot).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Dir => "dir".to_string(),
            Kind::File { size, sha256 } => format!("file {size}B sha256:{}", &sha256[..16]),
            Kind::Symlink(t) => format!("symlink -> {t}"),
            Kind::CharDevice(ma, mi) => format!("char device {ma}:{mi}"),
            Kind::BlockDevice(ma, mi) => format!("block device {ma}:{mi}"),
            Kind::Fifo => "fifo".to_string(),
            Kind::Socket => "socket".to_string(),
        };
        write!(
            f,
            "{kind} mode {:04o} owner {}:{}",
            self.mode, self.uid, self.gid
        )
    }
}

/// The size and sha256 (hex) of everything `r` reads.
pub fn hash(mut r: impl Read) -> (u64, String) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    (size, hex::encode(h.finalize()))
}

/// The tree under `root` (root itself excluded), symlinks not followed.
pub fn from_dir(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, tree: &mut Tree) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            let rdev = meta.rdev();
            let dev = (
                ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
                (rdev & 0xff) | ((rdev >> 12) & !0xff),
            );
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink(fs::read_link(&path).unwrap().to_string_lossy().into_owned())
            } else if ft.is_file() {
                let (size, sha256) = hash(File::open(&path).unwrap());
                Kind::File { size, sha256 }
            } else if ft.is_char_device() {
                Kind::CharDevice(dev.0, dev.1)
            } else if ft.is_block_device() {
                Kind::BlockDevice(dev.0, dev.1)
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                Kind::Socket
            };
            let mode = if ft.is_symlink() {
                0o777
            } else {
                meta.mode() & 0o7777
            };
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let is_dir = kind == Kind::Dir;
            tree.insert(
                rel,
                Node {
                    kind,
                    mode,
                    uid: u64::from(meta.uid()),
                    gid: u64::from(meta.gid()),
                },
            );
            if is_dir {
                walk(root, &path, tree);
            }
        }
    }
    let mut tree = Tree::new();
    walk(root, root, &mut tree);
    tree
}

/// A path where two trees differ: the node each has there (None: the path is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    pub left: Option<Node>,
    pub right: Option<Node>,
}

impl Difference {
    /// What differs when both sides have the path ("type", "content", "target", "device",
    /// "mode", "owner", comma-separated); None when one side lacks it.
    pub fn delta(&self) -> Option<String> {
        let (a, b) = (self.left.as_ref()?, self.right.as_ref()?);
        let mut what = Vec::new();
        if std::mem::discriminant(&a.kind) != std::mem::discriminant(&b.kind) {
            what.push("type");
        } else if a.kind != b.kind {
            what.push(match a.kind {
                Kind::File { .. } => "content",
                Kind::Symlink(_) => "target",
                _ => "device",
            });
        }
        if a.mode != b.mode {
            what.push("mode");
        }
        if (a.uid, a.gid) != (b.uid, b.gid) {
            what.push("owner");
        }
        Some(what.join(", "))
    }
}

/// Every path whose node differs between the two trees, or that only one has, in path order.
pub fn compare(left: &Tree, right: &Tree) -> Vec<Difference> {
    let paths: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    paths
        .into_iter()
        .filter(|p| left.get(*p) != right.get(*p))
        .map(|p| Difference {
            path: p.clone(),
            left: left.get(p).cloned(),
            right: right.get(p).cloned(),
        })
        .collect()
}
