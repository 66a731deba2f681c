//! `pallet doctor`: checks the store's index and rebuilds it from what still verifies when it
//! is damaged ([`crate::store::doctor`]); prints what was kept and, by name, what was dropped.

use super::{CliError, Context};
use crate::store::{doctor, DoctorReport};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

pub(super) fn run(root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let path = root.unwrap_or_else(cache::Root::default_path);
    if !path.join("index.redb").exists() && !path.join("blobs").exists() {
        return Err(
            CliError::msg(format!("no store at {}: nothing to check", path.display()))
                .with_help("pass --root DIR or set PALLET_ROOT to the store to check"),
        );
    }
    let report =
        doctor(&path).with_context(|| format!("checking the store at {}", path.display()))?;
    print!("{}", describe(&report));
    Ok(ExitCode::SUCCESS)
}

/// The report as `pallet doctor` prints it.
fn describe(r: &DoctorReport) -> String {
    let mut out = String::new();
    if r.healthy {
        let _ = writeln!(
            out,
            "the index is healthy: {} image(s), {} cache record(s), every one verified",
            r.images_kept.len(),
            r.cache_kept
        );
        return out;
    }
    for (table, why) in &r.cut_short {
        let _ = writeln!(out, "damaged: {table}: {why}");
    }
    let _ = writeln!(
        out,
        "rebuilt the index: kept {} image(s) and {} cache record(s); dropped {} cache record(s) whose layers are gone",
        r.images_kept.len(),
        r.cache_kept,
        r.cache_dropped
    );
    if !r.images_restored.is_empty() {
        let _ = writeln!(
            out,
            "restored from their records beside the index: {}",
            r.images_restored.join(", ")
        );
    }
    for (name, why) in &r.images_dropped {
        let _ = writeln!(out, "dropped image {name}: {why}");
    }
    for blob in &r.bad_blobs {
        let _ = writeln!(
            out,
            "damaged blob {blob}: its content does not match its digest"
        );
    }
    if let Some(aside) = &r.damaged_index {
        let _ = writeln!(out, "the damaged index is kept at {}", aside.display());
    }
    out
}
