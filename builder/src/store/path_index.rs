//! A layer's *path index*: every path of its snapshot with its type, and for directories the
//! metadata a COPY copies up (mode, owner, the xattrs that travel in layers, the opaque
//! marker); whiteouts as their own type. A remote cache carries one per layer (written at
//! export, from the snapshot), so a fresh runner can answer "is this path in that layer, and
//! what are its parents" without downloading the layer (`solver::ops::direct_copy`).
//!
//! The blob is gzip'd JSON, deterministic (paths sorted, xattrs sorted, no gzip time or name):
//!
//! ```json
//! {"version":1,"entries":[{"p":"etc","t":"d","m":493,"u":0,"g":0},{"p":"etc/passwd","t":"f"},
//!   {"p":"opt/gone","t":"w"},{"p":"srv","t":"d","m":448,"u":0,"g":0,"x":[["user.a",[1]]],"o":true}]}
//! ```
//!
//! Read only by [`parse`]: sizes and counts capped, every path relative and plain (no `..`,
//! no empty or `.` component, no NUL), no duplicates. Anything else is an error, which the
//! solver turns into one warning and a fetch of the layer.

use crate::snapshot::whiteout::{is_private_xattr, overlay_xattr_names};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The media type of a path index blob in a cache manifest.
pub const MEDIA_TYPE: &str = "application/vnd.pallet.cache.pathindex.v1+json+gzip";
/// The largest compressed index read.
pub const BLOB_LIMIT: u64 = 32 << 20;
/// The largest uncompressed index read.
const JSON_LIMIT: u64 = 256 << 20;
const MAX_ENTRIES: usize = 4_000_000;
const MAX_PATH: usize = 4096;
const MAX_XATTRS: usize = 64;
const MAX_XATTR_NAME: usize = 255;
const MAX_XATTR_VALUE: usize = 64 << 10;
const VERSION: u32 = 1;

/// What a path is in a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "d")]
    Dir,
    #[serde(rename = "f")]
    File,
    #[serde(rename = "l")]
    Symlink,
    /// An overlay whiteout (the path is deleted below).
    #[serde(rename = "w")]
    Whiteout,
}

/// One path of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(rename = "p")]
    pub path: String,
    #[serde(rename = "t")]
    pub kind: Kind,
    /// Permission bits (directories only).
    #[serde(rename = "m", default, skip_serializing_if = "is_zero")]
    pub mode: u32,
    #[serde(rename = "u", default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    #[serde(rename = "g", default, skip_serializing_if = "is_zero")]
    pub gid: u32,
    /// The xattrs a copy keeps (directories only), sorted by name.
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// The directory hides what lower layers have below it.
    #[serde(rename = "o", default, skip_serializing_if = "is_false")]
    pub opaque: bool,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Serialize, Deserialize)]
struct Doc {
    version: u32,
    entries: Vec<Entry>,
}

/// A parsed index, by path.
#[derive(Debug, Default)]
pub struct PathIndex {
    entries: HashMap<String, Entry>,
}

impl PathIndex {
    /// The entry at `rel` (relative, no leading slash), if the layer has one.
    pub fn get(&self, rel: &str) -> Option<&Entry> {
        self.entries.get(rel)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every entry, in no order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why an index cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path index: {0}")]
pub struct IndexError(pub String);

fn bad(m: impl Into<String>) -> IndexError {
    IndexError(m.into())
}

/// The index of the snapshot dir `dir` (overlay form: whiteouts are char 0/0 devices, opaque
/// directories carry the overlay xattr), as the blob's bytes.
pub fn build(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut entries = Vec::new();
    walk(dir, "", &mut entries)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let doc = Doc {
        version: VERSION,
        entries,
    };
    let json = serde_json::to_vec(&doc).expect("a path index serializes");
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&json)?;
    gz.finish()
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> std::io::Result<()> {
    for d in std::fs::read_dir(dir)? {
        let d = d?;
        let name = d.file_name();
        let Some(name) = name.to_str() else {
            // A name that is not UTF-8 cannot be in the JSON: mark the index unusable by
            // refusing to build it (the layer is then fetched on the other side).
            return Err(std::io::Error::other(format!(
                "{} has a name that is not UTF-8",
                dir.display()
            )));
        };
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let p = d.path();
        let md = p.symlink_metadata()?;
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_char_device() && md.rdev() == 0 {
            Kind::Whiteout
        } else {
            Kind::File
        };
        let mut e = Entry {
            path: path.clone(),
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
            opaque: false,
        };
        if kind == Kind::Dir {
            e.mode = md.mode() & 0o7777;
            e.uid = md.uid();
            e.gid = md.gid();
            e.opaque = overlay_xattr_names("opaque")
                .iter()
                .any(|n| matches!(xattr::get(&p, n), Ok(Some(v)) if v == b"y"));
            if let Ok(names) = xattr::list(&p) {
                for n in names {
                    if is_private_xattr(n.as_bytes()) {
                        continue;
                    }
                    let (Some(name), Ok(Some(value))) = (n.to_str(), xattr::get(&p, &n)) else {
                        continue;
                    };
                    e.xattrs.push((name.to_string(), value));
                }
            }
            e.xattrs.sort();
            out.push(e);
            walk(&p, &path, out)?;
        } else {
            out.push(e);
        }
    }
    Ok(())
}

/// The index blob of local layer `diff_id` (built from its snapshot once, then remembered),
/// None when the store has no snapshot of it or it cannot be indexed.
pub fn local_index(root: &cache::Root, diff_id: &str) -> Option<cache::BlobInfo> {
    let key = format!("path-index/{diff_id}");
    if let Ok(Some(bytes)) = root.index.get_cache(&key) {
        if let Ok(info) = serde_json::from_slice::<cache::BlobInfo>(&bytes) {
            if root.blobs.contains(&info.digest) {
                return Some(info);
            }
        }
    }
    let dir = super::snapshot_path(root, diff_id);
    if !dir.is_dir() {
        return None;
    }
    let blob = build(&dir).ok()?;
    let info = root.blobs.put_bytes(&blob).ok()?;
    let bytes = serde_json::to_vec(&info).expect("blob info serializes");
    root.index.put_cache(&key, &bytes).ok()?;
    Some(info)
}

/// Reads and checks an index blob.
pub fn parse(blob: &[u8]) -> Result<PathIndex, IndexError> {
    if blob.len() as u64 > BLOB_LIMIT {
        return Err(bad("the blob is larger than 32 MiB"));
    }
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(blob)
        .take(JSON_LIMIT + 1)
        .read_to_end(&mut json)
        .map_err(|e| bad(format!("not gzip: {e}")))?;
    if json.len() as u64 > JSON_LIMIT {
        return Err(bad("it decompresses to more than 256 MiB"));
    }
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let v: Versioned = serde_json::from_slice(&json).map_err(|e| bad(format!("not valid: {e}")))?;
    if v.version != VERSION {
        return Err(bad(format!(
            "version {} (this pallet reads version {VERSION})",
            v.version
        )));
    }
    let doc: Doc = serde_json::from_slice(&json).map_err(|e| bad(format!("not valid: {e}")))?;
    if doc.entries.len() > MAX_ENTRIES {
        return Err(bad("too many entries"));
    }
    let mut entries = HashMap::with_capacity(doc.entries.len());
    for e in doc.entries {
        check_path(&e.path)?;
        if e.mode > 0o7777 {
            return Err(bad(format!("{}: mode {:o}", e.path, e.mode)));
        }
        if e.xattrs.len() > MAX_XATTRS
            || e.xattrs.iter().any(|(n, v)| {
                n.is_empty()
                    || n.len() > MAX_XATTR_NAME
                    || n.contains('\0')
                    || is_private_xattr(n.as_bytes())
                    || v.len() > MAX_XATTR_VALUE
            })
        {
            return Err(bad(format!("{}: bad xattrs", e.path)));
        }
        if e.kind != Kind::Dir && (!e.xattrs.is_empty() || e.opaque) {
            return Err(bad(format!("{}: only a directory has xattrs", e.path)));
        }
        let path = e.path.clone();
        if entries.insert(path, e).is_some() {
            return Err(bad("a path is listed twice"));
        }
    }
    Ok(PathIndex { entries })
}

fn check_path(p: &str) -> Result<(), IndexError> {
    if p.is_empty()
        || p.len() > MAX_PATH
        || p.contains('\0')
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad(format!("path {p:?} is not a plain relative path")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_snapshot_round_trips_deterministically() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("srv/app")).unwrap();
        std::fs::set_permissions(d.join("srv/app"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::os::unix::fs::lchown(d.join("srv/app"), Some(1000), Some(1001)).unwrap();
        xattr::set(d.join("srv/app"), "user.note", b"kept").unwrap();
        xattr::set(d.join("srv/app"), "trusted.overlay.opaque", b"y").unwrap();
        std::fs::write(d.join("srv/file"), b"x").unwrap();
        std::os::unix::fs::symlink("/tmp", d.join("link")).unwrap();
        let wh = std::ffi::CString::new(d.join("gone").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; creates an overlay whiteout (char 0/0).
        assert_eq!(unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR, 0) }, 0);
        let blob = build(d).unwrap();
        assert_eq!(blob, build(d).unwrap(), "deterministic");
        let i = parse(&blob).unwrap();
        assert_eq!(i.len(), 5);
        let app = i.get("srv/app").unwrap();
        assert_eq!(
            (app.kind, app.mode, app.uid, app.gid, app.opaque),
            (Kind::Dir, 0o750, 1000, 1001, true)
        );
        assert_eq!(
            app.xattrs,
            vec![("user.note".to_string(), b"kept".to_vec())]
        );
        assert_eq!(i.get("srv/file").unwrap().kind, Kind::File);
        assert_eq!(i.get("link").unwrap().kind, Kind::Symlink);
        assert_eq!(i.get("gone").unwrap().kind, Kind::Whiteout);
        assert!(i.get("nothing").is_none());
    }

    fn blob_of(json: &str) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.as_bytes()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn hostile_indexes_are_refused() {
        for (what, json) in [
            (
                "dotdot",
                r#"{"version":1,"entries":[{"p":"../etc","t":"d"}]}"#,
            ),
            (
                "absolute",
                r#"{"version":1,"entries":[{"p":"/etc","t":"d"}]}"#,
            ),
            (
                "empty component",
                r#"{"version":1,"entries":[{"p":"a//b","t":"f"}]}"#,
            ),
            (
                "twice",
                r#"{"version":1,"entries":[{"p":"a","t":"f"},{"p":"a","t":"d"}]}"#,
            ),
            (
                "mode",
                r#"{"version":1,"entries":[{"p":"a","t":"d","m":99999}]}"#,
            ),
            ("kind", r#"{"version":1,"entries":[{"p":"a","t":"q"}]}"#),
            ("version", r#"{"version":2,"entries":[]}"#),
            (
                "private xattr",
                r#"{"version":1,"entries":[{"p":"a","t":"d","x":[["trusted.overlay.opaque",[121]]]}]}"#,
            ),
            (
                "file opaque",
                r#"{"version":1,"entries":[{"p":"a","t":"f","o":true}]}"#,
            ),
        ] {
            assert!(parse(&blob_of(json)).is_err(), "{what}");
        }
        assert!(parse(b"not gzip").is_err());
        assert!(parse(&blob_of("{")).is_err());
    }
}
