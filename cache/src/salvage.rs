//! Reading what can still be read of a damaged index, and putting a fresh one in its place.
//! redb checksums its pages but, in 4.6, some damage makes it panic instead of returning an
//! error; the salvage reads table by table, each in its own read-only transaction, keeps every
//! entry read before a table's iteration fails, and says which tables were cut short. The
//! meaning of the records (which still verify) is the caller's business: this module copies
//! bytes.

use crate::index::{self, Index};
use crate::CacheError;
use redb::{ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One table's readable entries.
#[derive(Debug, Default, Clone)]
pub struct SalvagedTable {
    /// (key, value) in key order; values as bytes (text tables as UTF-8).
    pub entries: Vec<(String, Vec<u8>)>,
    /// Why the table could not be read to its end, if it could not.
    pub cut_short: Option<String>,
}

/// What could be read of an index file, by table name (`cache`, `tags`, `blob_sources`,
/// `layer_forms`).
#[derive(Debug, Default, Clone)]
pub struct Salvaged {
    pub tables: BTreeMap<&'static str, SalvagedTable>,
    /// Why the file could not be opened at all (then every table is empty).
    pub unopenable: Option<String>,
}

impl Salvaged {
    pub fn table(&self, name: &str) -> &[(String, Vec<u8>)] {
        self.tables.get(name).map_or(&[], |t| t.entries.as_slice())
    }
}

/// Reads every table of the index at `path` as far as it can, without writing to it.
pub fn salvage(path: &Path) -> Salvaged {
    // The panics caught below are expected here: not a word of them on stderr.
    index::quiet_redb_panics();
    let opened = catch_unwind(AssertUnwindSafe(|| {
        redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open_read_only(path)
    }));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => {
            return Salvaged {
                unopenable: Some(e.to_string()),
                ..Salvaged::default()
            }
        }
        Err(_) => {
            return Salvaged {
                unopenable: Some("redb stopped on an inconsistent page while opening".into()),
                ..Salvaged::default()
            }
        }
    };
    let mut out = Salvaged::default();
    for (name, table) in index::BYTE_TABLES {
        out.tables.insert(name, read_bytes_table(&db, *table));
    }
    out.tables.insert(
        index::BLOB_SOURCES_NAME,
        read_text_table(&db, index::BLOB_SOURCES),
    );
    out
}

fn read_bytes_table(db: &ReadOnlyDatabase, def: TableDefinition<&str, &[u8]>) -> SalvagedTable {
    let mut table = SalvagedTable::default();
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        for entry in t.iter().map_err(|e| e.to_string())? {
            let (k, v) = entry.map_err(|e| e.to_string())?;
            table
                .entries
                .push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(())
    }));
    table.cut_short = cut_short(result);
    table
}

fn read_text_table(db: &ReadOnlyDatabase, def: TableDefinition<&str, &str>) -> SalvagedTable {
    let mut table = SalvagedTable::default();
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        for entry in t.iter().map_err(|e| e.to_string())? {
            let (k, v) = entry.map_err(|e| e.to_string())?;
            table
                .entries
                .push((k.value().to_string(), v.value().as_bytes().to_vec()));
        }
        Ok(())
    }));
    table.cut_short = cut_short(result);
    table
}

fn cut_short(result: std::thread::Result<Result<(), String>>) -> Option<String> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some("redb stopped on an inconsistent page".into()),
    }
}

/// Writes `records` (by table name, as [`Salvaged`] gives them) into a new index file and puts
/// it in place of the one at `path`, which is kept beside it as `index.redb.damaged-<secs>`
/// (returned). Call with the store locked exclusively ([`crate::Root::lock_exclusive_at`]).
pub fn replace(
    path: &Path,
    records: &BTreeMap<&'static str, Vec<(String, Vec<u8>)>>,
) -> Result<PathBuf, CacheError> {
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| CacheError::Io {
            what,
            path: p,
            source,
        }
    };
    let fresh = path.with_extension("redb.rebuilding");
    let _ = std::fs::remove_file(&fresh);
    {
        let index = Index::open(&fresh)?;
        index.put_records(records)?;
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = path.with_extension(format!("redb.damaged-{secs}"));
    if path.exists() {
        std::fs::rename(path, &aside).map_err(io("keeping the damaged index as", &aside))?;
    }
    std::fs::rename(&fresh, path).map_err(io("putting the rebuilt index in place at", path))?;
    Ok(aside)
}
