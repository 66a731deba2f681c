//! Image layers (tar diffs, gzip or uncompressed) read as lists of changes, and the tree they
//! make when applied bottom first with the OCI whiteout rules: `.wh.NAME` removes NAME, and
//! `.wh..wh..opq` empties its directory of what the layers below had.

use super::{hash, Kind, Node, Tree};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// One entry of a layer, as it changes the tree below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `.wh.NAME`: the path is removed, with everything under it.
    Whiteout(String),
    /// `.wh..wh..opq`: the directory loses what the layers below put in it.
    Opaque(String),
    /// A file, directory, symlink or device at the path.
    Add(String, Node),
    /// A hard link at the first path to the second.
    HardLink(String, String),
}

/// One layer, parsed: where it was read from and its entries in order.
pub struct Layer {
    pub path: PathBuf,
    pub changes: Vec<Change>,
}

impl Layer {
    /// Reads the layer file at `path`. Entries of a tar type a tree does not hold are left
    /// out, each with a line in `notes`.
    pub fn read(path: &Path, notes: &mut Vec<String>) -> Layer {
        Layer {
            path: path.to_path_buf(),
            changes: read_changes(path, notes),
        }
    }

    /// What the layer touches: paths it adds (directories with a trailing slash), `-path` for
    /// a whiteout, `dir/* (opaque)` for an opaque directory. Metadata is not part of it.
    pub fn touched_paths(&self) -> BTreeSet<String> {
        self.changes
            .iter()
            .map(|c| match c {
                Change::Add(p, n) if n.kind == Kind::Dir => format!("/{p}/"),
                Change::Add(p, _) | Change::HardLink(p, _) => format!("/{p}"),
                Change::Whiteout(p) => format!("-/{p}"),
                Change::Opaque(d) => format!("/{d}/* (opaque)"),
            })
            .collect()
    }
}

/// Reads each layer file in order.
pub fn read_all(paths: &[PathBuf], notes: &mut Vec<String>) -> Vec<Layer> {
    paths.iter().map(|p| Layer::read(p, notes)).collect()
}

/// `a/./b/` as `a/b`: the form tree paths take.
fn normalize_path(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Removes `path` and everything under it ("" is the root: everything).
fn remove_subtree(tree: &mut Tree, path: &str) {
    if path.is_empty() {
        tree.clear();
        return;
    }
    let prefix = format!("{path}/");
    tree.retain(|k, _| k != path && !k.starts_with(&prefix));
}

/// Removes everything under `dir`, keeping `dir`.
fn remove_children(tree: &mut Tree, dir: &str) {
    if dir.is_empty() {
        tree.clear();
        return;
    }
    let prefix = format!("{dir}/");
    tree.retain(|k, _| !k.starts_with(&prefix));
}

/// The layer's bytes, gunzipped when they are gzip.
fn open_layer(path: &Path) -> Box<dyn Read> {
    let mut file =
        BufReader::new(File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).unwrap();
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let stream = head.chain(file);
    match magic {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        [0x28, 0xb5, 0x2f, 0xfd] => panic!("{}: zstd layers are not read here", path.display()),
        _ => Box::new(stream),
    }
}

fn read_changes(path: &Path, notes: &mut Vec<String>) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut archive = tar::Archive::new(open_layer(path));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = normalize_path(&entry.path().unwrap().to_string_lossy());
        let (dir, base) = match name.rsplit_once('/') {
            Some((d, b)) => (d.to_string(), b.to_string()),
            None => (String::new(), name.clone()),
        };
        if base == ".wh..wh..opq" {
            changes.push(Change::Opaque(dir));
            continue;
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            };
            changes.push(Change::Whiteout(target));
            continue;
        }
        let h = entry.header();
        let mode = h.mode().unwrap() & 0o7777;
        let (uid, gid) = (h.uid().unwrap(), h.gid().unwrap());
        let dev = || {
            (
                u64::from(h.device_major().unwrap().unwrap_or(0)),
                u64::from(h.device_minor().unwrap().unwrap_or(0)),
            )
        };
        let link = || {
            entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let (size, sha256) = hash(&mut entry);
                Kind::File { size, sha256 }
            }
            tar::EntryType::Symlink => Kind::Symlink(link()),
            tar::EntryType::Link => {
                changes.push(Change::HardLink(name, normalize_path(&link())));
                continue;
            }
            tar::EntryType::Char => Kind::CharDevice(dev().0, dev().1),
            tar::EntryType::Block => Kind::BlockDevice(dev().0, dev().1),
            tar::EntryType::Fifo => Kind::Fifo,
            other => {
                notes.push(format!(
                    "{}: skipped {name} of tar type {other:?}",
                    path.display()
                ));
                continue;
            }
        };
        let mode = if matches!(kind, Kind::Symlink(_)) {
            0o777
        } else {
            mode
        };
        changes.push(Change::Add(
            name,
            Node {
                kind,
                mode,
                uid,
                gid,
            },
        ));
    }
    changes
}

/// The tree the layers make, applied bottom first: whiteouts and opaque directories remove
/// what the layers below had, then the layer's entries are added in order. A hard link to a
/// path no layer made is left out, with a line in `notes`.
pub fn apply(layers: &[Layer], notes: &mut Vec<String>) -> Tree {
    let mut tree = Tree::new();
    for layer in layers {
        let changes = &layer.changes;
        for change in changes {
            match change {
                Change::Whiteout(p) => remove_subtree(&mut tree, p),
                Change::Opaque(d) => remove_children(&mut tree, d),
                Change::Add(..) | Change::HardLink(..) => {}
            }
        }
        for change in changes {
            match change {
                Change::Add(path, node) => {
                    let replaces_dir = tree.get(path).is_some_and(|n| n.kind == Kind::Dir);
                    if node.kind != Kind::Dir || !replaces_dir {
                        remove_subtree(&mut tree, path);
                    }
                    tree.insert(path.clone(), node.clone());
                }
                Change::HardLink(path, target) => match tree.get(target).cloned() {
                    Some(node) => {
                        remove_subtree(&mut tree, path);
                        tree.insert(path.clone(), node);
                    }
                    None => notes.push(format!(
                        "{}: hard link {path} to missing {target}",
                        layer.path.display()
                    )),
                },
                Change::Whiteout(_) | Change::Opaque(_) => {}
            }
        }
    }
    tree.remove("");
    tree
}
