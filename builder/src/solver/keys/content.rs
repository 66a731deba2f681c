//! Content-based cache keys (BuildKit's "slow" keys): a step that reads another stage's (or
//! an image's) result at selected paths (`COPY --from`, `RUN --mount=from=...`, a cache mount
//! seeded `from=` a stage) also has a key made of what it reads there, not of how that stage
//! was made. A stage rebuilt with the same output at those paths then leaves the step cached.
//!
//! The key is blake3 of the op's digest, the base input's key (the tree the step runs on or
//! copies into), the other inputs read in full by their keys, the context files it reads, and
//! for each input read at selected paths the checksum of those paths in the input's merged
//! tree: the selected entry's parents' modes and owners, then for every entry below it,
//! sorted, its relative path, type and mode, owner, the xattrs that travel in layers, a
//! symlink's target, a device's numbers and a file's bytes; never times.
//! A COPY's selection is found by the copy's own code (`fileop::selected_sources`: wildcards,
//! `--exclude`, symlinks followed as the copy follows them); the whole tree below each
//! selected entry is hashed (a superset of what `--exclude`/`--parents` keep below it).
//!
//! A checksum over layers already in the store is remembered in the index by their diff ids
//! and the selection (`content/blake3:...`), so a step that misses for another reason does not
//! hash the same tree twice. The solver asks for this key only after the definition key
//! missed: a no-op rebuild never computes it.

use super::{op_digest, CacheKey, KEY_VERSION};
use crate::exec::fileop::selected_sources;
use crate::exec::rootpath;
use crate::snapshot::whiteout::is_private_xattr;
use crate::solver::layer_writer::Layer;
use crate::solver::ops::run::lowers;
use crate::solver::scheduler::Done;
use crate::solver::{Output, SolveOptions};
use crate::store::step_dir;
use graph::{CopyAction, FileAction, MountKind, Op, Vertex};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, Read as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What the checksum covers ([`hash_reads`]): part of every content key and memo key, changed
/// when the checksum changes (so a memo or record of the old kind is never taken for it).
const CHECKSUM_VERSION: &str = "content.v1\0";

/// How a step reads one input at selected paths.
#[derive(Debug, serde::Serialize)]
enum Read<'a> {
    /// A COPY action's sources.
    Copy(&'a CopyAction),
    /// A bind mount's source (or a cache mount's seed), resolved through symlinks.
    Path(&'a str),
}

/// The inputs `v` reads only at selected paths (never its base: a file op's input 0 when it
/// applies to it, a RUN's root), with what it reads of each. Empty: `v` has no content key.
fn selections(v: &Vertex) -> BTreeMap<usize, Vec<Read<'_>>> {
    let mut out: BTreeMap<usize, Vec<Read>> = BTreeMap::new();
    match &v.op {
        Op::File(f) => {
            for a in &f.actions {
                if let FileAction::Copy(c) = a {
                    if !(f.on_input && c.input == 0) {
                        out.entry(c.input).or_default().push(Read::Copy(c));
                    }
                }
            }
        }
        Op::Exec(e) => {
            for m in &e.mounts {
                let read = match &m.kind {
                    MountKind::Input { input, source, .. } => (*input, source.as_str()),
                    MountKind::Cache {
                        from: Some((input, path)),
                        ..
                    } => (*input, path.as_str()),
                    _ => continue,
                };
                if read.0 != 0 {
                    out.entry(read.0).or_default().push(Read::Path(read.1));
                }
            }
        }
        Op::Source(_) | Op::Merge => {}
    }
    out
}

/// Whether `v` can have a content key: it reads some input at selected paths. Cheap (the
/// graph only); the inputs' results decide the rest.
pub(in crate::solver) fn applies(v: &Vertex) -> bool {
    !selections(v).is_empty()
}

/// The inputs of `v` that [`content_key`] reads the trees of (those that are layers), by index.
pub(in crate::solver) fn read_inputs(v: &Vertex, inputs: &[Done]) -> Vec<usize> {
    selections(v)
        .into_keys()
        .filter(|i| matches!(inputs.get(*i), Some((Output::Layers(_), _))))
        .collect()
}

/// What working out a content key read: entries and file bytes hashed, checksums found in
/// the memo (reported in the step's log: the cost of a content key).
#[derive(Debug, Default)]
pub(in crate::solver) struct Hashed {
    pub entries: u64,
    pub bytes: u64,
    pub remembered: usize,
}

/// Why a content key could not be worked out (the step then runs, and reports what is wrong
/// with its sources itself).
#[derive(Debug, thiserror::Error)]
pub(in crate::solver) enum ContentKeyError {
    #[error("mounting a view of input {input}: {source}")]
    View {
        input: usize,
        #[source]
        source: io::Error,
    },
    #[error("selecting the sources: {0}")]
    Select(String),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The input's layers could not be found or unpacked.
    #[error(transparent)]
    Layers(Box<crate::solver::StepError>),
}

/// The content key of `v` given its inputs' results, or None when it reads no stage's tree at
/// selected paths. `context`: the digest of the context files it reads.
pub(in crate::solver) fn content_key(
    v: &Vertex,
    inputs: &[Done],
    context: Option<&str>,
    opts: &SolveOptions,
    stats: &mut Hashed,
) -> Result<Option<CacheKey>, ContentKeyError> {
    let selections = selections(v);
    let mut checksums: BTreeMap<usize, String> = BTreeMap::new();
    for (input, reads) in &selections {
        let Some((Output::Layers(layers), _)) = inputs.get(*input) else {
            continue;
        };
        checksums.insert(*input, checksum(opts, *input, layers, reads, stats)?);
    }
    if checksums.is_empty() {
        return Ok(None);
    }
    let mut h = blake3::Hasher::new();
    h.update(KEY_VERSION.as_bytes());
    h.update(CHECKSUM_VERSION.as_bytes());
    h.update(op_digest(v).as_bytes());
    for (i, (_, key)) in inputs.iter().enumerate() {
        match checksums.get(&i) {
            Some(sum) => {
                h.update(b"\0read\0");
                h.update(sum.as_bytes());
            }
            None => {
                h.update(b"\0input\0");
                h.update(key.as_bytes());
            }
        }
    }
    if let Some(c) = context {
        h.update(b"\0context\0");
        h.update(c.as_bytes());
    }
    Ok(Some(CacheKey(format!(
        "step/blake3:{}",
        h.finalize().to_hex()
    ))))
}

/// The checksum of what `reads` select in the tree of `layers`: remembered by the layers'
/// diff ids when all are stored, else hashed from a read-only view of their merged tree.
fn checksum(
    opts: &SolveOptions,
    input: usize,
    layers: &[Layer],
    reads: &[Read],
    stats: &mut Hashed,
) -> Result<String, ContentKeyError> {
    let memo = memo_key(layers, reads);
    if let Some(key) = &memo {
        if let Ok(Some(bytes)) = opts.root.index.get_cache(key) {
            if let Ok(sum) = String::from_utf8(bytes) {
                stats.remembered += 1;
                return Ok(sum);
            }
        }
    }
    let step = step_dir(opts.root)?;
    let mnt = step.path().join("view");
    std::fs::create_dir_all(&mnt).map_err(|source| ContentKeyError::Read {
        path: mnt.display().to_string(),
        source,
    })?;
    let lower_dirs = lowers(opts, layers).map_err(|e| ContentKeyError::Layers(Box::new(e)))?;
    let sum = {
        let view = opts
            .snapshotter
            .view(&lower_dirs, &mnt)
            .map_err(|source| ContentKeyError::View { input, source })?;
        hash_reads(view.root(), reads, stats)?
        // The view is unmounted here, before its directory goes.
    };
    if let Some(key) = &memo {
        // Only a hint: a failure to remember it costs the next build a hash.
        let _ = opts.root.index.put_cache(key, sum.as_bytes());
    }
    Ok(sum)
}

/// The memo key of a checksum: the stored layers' diff ids and the selection. None when a
/// layer was made by this build (its diff id is not known yet).
fn memo_key(layers: &[Layer], reads: &[Read]) -> Option<String> {
    let mut h = blake3::Hasher::new();
    h.update(KEY_VERSION.as_bytes());
    h.update(CHECKSUM_VERSION.as_bytes());
    h.update(b"memo\0");
    for l in layers {
        let Layer::Stored(r) = l else { return None };
        h.update(r.diff_id.as_bytes());
        h.update(b"\0");
    }
    h.update(&serde_json::to_vec(reads).expect("reads serialize"));
    Some(format!("content/blake3:{}", h.finalize().to_hex()))
}

/// The checksum of each read's selection in the tree at `root`, in order.
fn hash_reads(root: &Path, reads: &[Read], stats: &mut Hashed) -> Result<String, ContentKeyError> {
    let mut h = blake3::Hasher::new();
    for read in reads {
        match read {
            Read::Copy(c) => {
                let sources = selected_sources(root, c)
                    .map_err(|e| ContentKeyError::Select(e.to_string()))?;
                h.update(b"copy\0");
                for (named, resolved) in sources {
                    h.update(named.as_bytes());
                    h.update(b"\0");
                    hash_entry(&mut h, root, &resolved, stats)?;
                }
            }
            Read::Path(p) => {
                let resolved = rootpath::resolve(root, OsStr::new(p), true)
                    .map_err(|e| ContentKeyError::Select(e.to_string()))?;
                h.update(b"path\0");
                hash_entry(&mut h, root, &resolved, stats)?;
            }
        }
        h.update(b"\0end\0");
    }
    Ok(format!("blake3:{}", h.finalize().to_hex()))
}

/// One selected entry: where it resolved (relative to the root), then it and everything below
/// it. A missing entry is hashed as missing (the step fails on it when it runs).
fn hash_entry(
    h: &mut blake3::Hasher,
    root: &Path,
    path: &Path,
    stats: &mut Hashed,
) -> Result<(), ContentKeyError> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    h.update(b"at\0");
    h.update(rel.as_os_str().as_bytes());
    h.update(b"\0");
    // Its parents' modes and owners (what `COPY --parents` recreates), a stat each.
    let mut parent = path.parent();
    while let Some(p) = parent.filter(|p| p.starts_with(root)) {
        if let Ok(md) = p.symlink_metadata() {
            h.update(&md.mode().to_le_bytes());
            h.update(&md.uid().to_le_bytes());
            h.update(&md.gid().to_le_bytes());
        }
        if p == root {
            break;
        }
        parent = p.parent();
    }
    match path.symlink_metadata() {
        Ok(_) => hash_tree(h, path, Path::new(""), stats),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            h.update(b"missing\0");
            Ok(())
        }
        Err(source) => Err(read_error(path, source)),
    }
}

fn read_error(path: &Path, source: io::Error) -> ContentKeyError {
    ContentKeyError::Read {
        path: path.display().to_string(),
        source,
    }
}

/// `base`/`rel` and, for a directory, everything below it: each entry's metadata in name
/// order, depth first, then the files' bytes hashed on the rayon pool (the walk is stat
/// calls; the reads are most of the time), then all of it fed to `h` in walk order.
fn hash_tree(
    h: &mut blake3::Hasher,
    base: &Path,
    rel: &Path,
    stats: &mut Hashed,
) -> Result<(), ContentKeyError> {
    let mut entries = Vec::new();
    walk(base, rel, &mut entries, stats)?;
    let hashes = entries
        .par_iter()
        .map(|(_, file)| file.as_deref().map(file_hash).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    for ((meta, _), hash) in entries.iter().zip(hashes) {
        let len = meta.len() + if hash.is_some() { 32 } else { 0 };
        h.update(&(len as u64).to_le_bytes());
        h.update(meta);
        if let Some(hash) = hash {
            h.update(hash.as_bytes());
        }
    }
    Ok(())
}

/// One walked entry: its encoded metadata, and its path when it is a regular file (whose
/// bytes' hash follows the metadata).
type Walked = (Vec<u8>, Option<std::path::PathBuf>);

/// Appends `base`/`rel` and everything below it to `out`, in name order, depth first.
fn walk(
    base: &Path,
    rel: &Path,
    out: &mut Vec<Walked>,
    stats: &mut Hashed,
) -> Result<(), ContentKeyError> {
    // `base` itself for the selected entry (joining "" would add a '/', wrong for a file).
    let path = if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    let md = path.symlink_metadata().map_err(|e| read_error(&path, e))?;
    stats.entries += 1;
    let mut entry = Vec::with_capacity(96);
    entry.extend_from_slice(rel.as_os_str().as_bytes());
    entry.push(0);
    entry.extend_from_slice(&md.mode().to_le_bytes());
    entry.extend_from_slice(&md.uid().to_le_bytes());
    entry.extend_from_slice(&md.gid().to_le_bytes());
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(&path).map_err(|e| read_error(&path, e))?;
        entry.push(b'L');
        entry.extend_from_slice(target.as_os_str().as_bytes());
    } else if ft.is_file() {
        entry.push(b'F');
        entry.extend_from_slice(&md.len().to_le_bytes());
        stats.bytes += md.len();
    } else if ft.is_block_device() || ft.is_char_device() {
        entry.push(b'N');
        entry.extend_from_slice(&md.rdev().to_le_bytes());
    } else if ft.is_dir() {
        entry.push(b'D');
    } else {
        entry.push(b'O');
    }
    // The xattrs that travel in layers (file capabilities, user.*), sorted.
    if let Ok(names) = xattr::list(&path) {
        let mut names: Vec<_> = names.filter(|n| !is_private_xattr(n.as_bytes())).collect();
        names.sort();
        for n in names {
            if let Ok(Some(value)) = xattr::get(&path, &n) {
                entry.push(b'X');
                entry.extend_from_slice(n.as_bytes());
                entry.push(0);
                entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
                entry.extend_from_slice(&value);
            }
        }
    }
    entry.push(0xff);
    let is_dir = ft.is_dir();
    out.push((entry, ft.is_file().then(|| path.clone())));
    if is_dir {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&path).map_err(|e| read_error(&path, e))? {
            names.push(e.map_err(|e| read_error(&path, e))?.file_name());
        }
        names.sort();
        for name in names {
            walk(base, &rel.join(name), out, stats)?;
        }
    }
    Ok(())
}

/// blake3 of a file's bytes.
fn file_hash(path: &Path) -> Result<blake3::Hash, ContentKeyError> {
    let mut f = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
    let mut h = blake3::Hasher::new();
    thread_local! {
        // One read buffer per thread: a fresh 64 KiB each (zeroed) costs more than a small
        // file's read.
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 * 1024]);
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        loop {
            let n = f.read(&mut buf).map_err(|e| read_error(path, e))?;
            if n == 0 {
                return Ok(h.finalize());
            }
            h.update(&buf[..n]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn copy(src: &str) -> CopyAction {
        CopyAction {
            follow_symlinks: true,
            allow_wildcard: true,
            ..CopyAction::new(1, src, "/dst/")
        }
    }

    fn sum(root: &Path, c: &CopyAction) -> String {
        hash_reads(root, &[Read::Copy(c)], &mut Hashed::default()).unwrap()
    }

    #[test]
    fn what_changes_the_copy_changes_the_checksum_and_times_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("out/sub")).unwrap();
        std::fs::write(root.join("out/foo"), b"foo").unwrap();
        std::fs::write(root.join("out/sub/bar"), b"bar").unwrap();
        std::fs::write(root.join("other"), b"x").unwrap();
        let c = copy("/out");
        let first = sum(root, &c);
        // Times and files outside the selection: the same checksum.
        let t = filetime::FileTime::from_unix_time(1_600_000_000, 0);
        filetime::set_file_mtime(root.join("out/foo"), t).unwrap();
        std::fs::write(root.join("other"), b"changed").unwrap();
        assert_eq!(sum(root, &c), first);
        // Bytes, mode, a new file, a symlink's target: each changes it.
        std::fs::write(root.join("out/foo"), b"fo0").unwrap();
        let bytes = sum(root, &c);
        assert_ne!(bytes, first);
        // A parent's mode (COPY --parents recreates the parents).
        let deep = copy("/out/sub/bar");
        let before = sum(root, &deep);
        let sub = root.join("out/sub");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(sum(root, &deep), before);
        let foo = root.join("out/foo");
        std::fs::set_permissions(&foo, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mode = sum(root, &c);
        assert_ne!(mode, bytes);
        std::os::unix::fs::symlink("foo", root.join("out/link")).unwrap();
        let link = sum(root, &c);
        assert_ne!(link, mode);
        std::fs::remove_file(root.join("out/link")).unwrap();
        std::os::unix::fs::symlink("sub", root.join("out/link")).unwrap();
        assert_ne!(sum(root, &c), link);
    }

    #[test]
    fn wildcards_hash_the_matched_set_and_a_followed_symlink_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.py"), b"a").unwrap();
        std::fs::write(root.join("src/b.txt"), b"b").unwrap();
        let c = copy("/src/*.py");
        let first = sum(root, &c);
        std::fs::write(root.join("src/b.txt"), b"changed").unwrap();
        assert_eq!(sum(root, &c), first, "an unmatched file is not read");
        std::fs::write(root.join("src/c.py"), b"c").unwrap();
        assert_ne!(sum(root, &c), first, "a newly matched file is");
        // One file, not a directory.
        let c = copy("/src/a.py");
        let first = sum(root, &c);
        std::fs::write(root.join("src/a.py"), b"a2").unwrap();
        assert_ne!(sum(root, &c), first);

        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/x"), b"1").unwrap();
        std::os::unix::fs::symlink("real", root.join("via")).unwrap();
        let c = copy("/via");
        let first = sum(root, &c);
        std::fs::write(root.join("real/x"), b"2").unwrap();
        assert_ne!(sum(root, &c), first, "the followed target's content counts");
    }

    #[test]
    fn only_inputs_read_at_paths_have_selections() {
        let mut g = graph::Graph::default();
        let copy_op = Op::File(graph::FileOp {
            on_input: true,
            actions: vec![
                FileAction::Copy(CopyAction::new(0, "/a", "/b")),
                FileAction::Copy(CopyAction::new(2, "/out", "/out")),
            ],
        });
        let d = g.add(copy_op, vec![], Default::default());
        let v = g.get(&d).unwrap();
        assert_eq!(selections(v).into_keys().collect::<Vec<_>>(), [2]);
        let d = g.add(Op::Merge, vec![], Default::default());
        assert!(!applies(g.get(&d).unwrap()));
    }
}
