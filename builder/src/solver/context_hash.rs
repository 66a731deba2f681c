//! Content hashes of the context files a step reads (COPY sources, RUN bind mounts from the
//! context): the part of a cache key that changes when the user edits a file. Files are the
//! context's after `.dockerignore`; the selection uses the step's paths with the same matching
//! rules (a path selects itself and everything below it; wildcards allowed).

use crate::frontend::dockerignore::{walk_context, Matcher};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// blake3 over (relative path, type, mode, content or link target) of each selected file, in
/// sorted order.
pub(super) fn hash_paths(
    context: &Path,
    paths: &[String],
    ignore: Option<&Matcher>,
) -> Result<String, String> {
    let select_all = paths
        .iter()
        .any(|p| p.trim_start_matches('/').is_empty() || p == "/.");
    let patterns: Vec<String> = paths
        .iter()
        .map(|p| p.trim_start_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let selection = Matcher::new(&patterns).map_err(|e| format!("selecting context files: {e}"))?;
    let none = Matcher::new(&[]).expect("empty matcher");
    let files = walk_context(context, ignore.unwrap_or(&none))
        .map_err(|e| format!("reading the build context {}: {e}", context.display()))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    for rel in files {
        if !select_all && !selection.is_excluded(&rel) {
            continue;
        }
        let path = context.join(&rel);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        h.update(rel.as_bytes());
        h.update(&[0]);
        h.update(&meta.permissions().mode().to_le_bytes());
        h.update(&meta.uid().to_le_bytes());
        h.update(&meta.gid().to_le_bytes());
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            h.update(b"L");
            h.update(target.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            h.update(b"F");
            h.update(&meta.len().to_le_bytes());
            let mut f = std::fs::File::open(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if ft.is_dir() {
            h.update(b"D");
        } else {
            h.update(b"O");
        }
        h.update(&[0]);
    }
    Ok(format!("blake3:{}", h.finalize().to_hex()))
}
