//! Image records kept beside the index, one file per name: `ROOT/images/<sha256 of the
//! name>.json`, holding the same bytes as the index's tag record. The index stays the truth;
//! these are what `pallet doctor` restores a tag from when the index's tags table (or the
//! whole file) is damaged, so that no image that still verifies is lost with the index (issue
//! 13, defect 5).
//!
//! Order makes a crash harmless: a tag is written to the index first, then to its file (a
//! crash between leaves the file one version behind, used only if the index is damaged); a
//! tag is removed from its file first, then from the index (a crash between leaves the tag
//! listed, so nothing removed comes back). Files are renamed into place, not fsynced: a lost
//! file costs nothing while the index is whole.

use sha2::Digest as _;
use std::io;
use std::path::{Path, PathBuf};

/// `ROOT/images`.
fn dir(root_path: &Path) -> PathBuf {
    root_path.join("images")
}

fn file(root_path: &Path, name: &str) -> PathBuf {
    let hex = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    dir(root_path).join(format!("{hex}.json"))
}

/// Writes (or replaces) the record of image `name`.
pub(super) fn write(root_path: &Path, name: &str, record: &[u8]) -> io::Result<()> {
    let dir = dir(root_path);
    std::fs::create_dir_all(&dir)?;
    let path = file(root_path, name);
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), path_name(&path)));
    std::fs::write(&tmp, record)?;
    std::fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn path_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes the record of image `name` (none is fine).
pub(super) fn remove(root_path: &Path, name: &str) -> io::Result<()> {
    match std::fs::remove_file(file(root_path, name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Every record that reads as an image record: (name, bytes). Unreadable files are skipped
/// (the doctor verifies what it restores anyway).
pub(super) fn read_all(root_path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir(root_path)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| {
            let bytes = std::fs::read(e.path()).ok()?;
            let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            let name = json.get("name")?.as_str()?.to_string();
            // A record lives in the file its name hashes to: anything else is not ours.
            (file(root_path, &name) == e.path()).then_some((name, bytes))
        })
        .collect();
    out.sort();
    out
}
