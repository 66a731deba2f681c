//! The redb index (redb 4.6, multi-writer mode so several pallet processes share one root):
//! cache keys -> solver records, image names -> image records, blob digest -> source
//! repository, layer diff id -> the compressed blob that stands for it. Values are opaque bytes
//! (JSON written by the caller).
//!
//! This module owns `index.redb` and its tables; it never holds blob data and knows nothing of
//! what the records mean. Every method is one short transaction.
//!
//! Sharing: the database is opened in [`redb::ConcurrencyMode::MultiWriter`]. Every process
//! holds a shared lock on the file while it is open; a write transaction takes an exclusive
//! byte-range lock (an OFD `fcntl` lock on Linux) for its duration, so write transactions of
//! all processes are serialized: `begin_write` waits for a peer's transaction to end, then
//! syncs to the peer's latest commit. A read-modify-write inside one write transaction (see
//! [`Index::update_cache`]) is therefore atomic across processes. redb 4.6 reports no
//! conflicts to retry: a blocked writer waits, it does not fail.

use crate::CacheError;
use redb::{
    ConcurrencyMode, Database, DatabaseError, Key, ReadOnlyDatabase, ReadOnlyTable,
    ReadableDatabase, ReadableTable, StorageError, Table, TableDefinition, TableError, Value,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

/// Cache key -> solver record.
const CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("cache");
/// Image name -> image record.
const TAGS: TableDefinition<&str, &[u8]> = TableDefinition::new("tags");
/// Blob digest -> the repository it was pulled from (for cross-repository mounts on push).
pub(crate) const BLOB_SOURCES: TableDefinition<&str, &str> =
    TableDefinition::new(BLOB_SOURCES_NAME);
pub(crate) const BLOB_SOURCES_NAME: &str = "blob_sources";
/// Layer diff id -> record of the compressed blob the store keeps instead of the uncompressed
/// diff (pulled layers). Not build cache: `clear_cache` leaves it.
const LAYER_FORMS: TableDefinition<&str, &[u8]> = TableDefinition::new("layer_forms");

/// The tables whose values are bytes, by name (what a salvage reads and a rebuild writes).
pub(crate) const BYTE_TABLES: &[(&str, TableDefinition<&str, &[u8]>)] = &[
    ("cache", CACHE),
    ("tags", TAGS),
    ("layer_forms", LAYER_FORMS),
];

pub struct Index {
    /// A read-only handle, when the index existed and needed no repair at open: a run that only
    /// reads (a no-op rebuild) then never opens it for writing, which costs redb 5 fsyncs
    /// (marking the file in use at open, its shutdown header at close).
    reader: Option<ReadOnlyDatabase>,
    /// The writable handle, opened at the first write (at once when there is no reader).
    writer: OnceLock<Database>,
    opening_writer: Mutex<()>,
    path: PathBuf,
}

impl Index {
    /// Opens (creating if needed) the index at `path`, shared with other processes.
    pub fn open(path: &Path) -> Result<Index, CacheError> {
        quiet_redb_panics();
        // A damaged file can make redb panic while opening: no reader then, and the writable
        // open below says what is wrong.
        let reader = catch_unwind(|| {
            Database::builder()
                .set_concurrency_mode(ConcurrencyMode::MultiWriter)
                .open_read_only(path)
        })
        .ok()
        .and_then(Result::ok);
        let index = Index {
            writer: OnceLock::new(),
            opening_writer: Mutex::new(()),
            path: path.to_path_buf(),
            reader,
        };
        if index.reader.is_none() {
            // Missing (a new store), or in need of repair: the writable open creates or repairs.
            index.writable()?;
        }
        Ok(index)
    }

    /// The writable handle, opened on first use.
    fn writable(&self) -> Result<&Database, CacheError> {
        if let Some(db) = self.writer.get() {
            return Ok(db);
        }
        let _opening = self
            .opening_writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(db) = self.writer.get() {
            return Ok(db);
        }
        quiet_redb_panics();
        let created = catch_unwind(AssertUnwindSafe(|| {
            Database::builder()
                .set_concurrency_mode(ConcurrencyMode::MultiWriter)
                .create(&self.path)
        }));
        let db = match created {
            Ok(db) => db.map_err(|e| CacheError::Index {
                path: self.path.clone(),
                message: open_message(e),
            })?,
            Err(payload) => {
                return Err(CacheError::Index {
                    path: self.path.clone(),
                    message: format!(
                        "opening: the index is damaged (redb stopped on an inconsistent page: {}){DAMAGED_HINT}",
                        panic_text(payload.as_ref())
                    ),
                })
            }
        };
        Ok(self.writer.get_or_init(|| db))
    }

    /// Where the index lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get_cache(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.read(
            CACHE,
            || format!("reading cache record {key:?}"),
            |t| Ok(t.get(key)?.map(|v| v.value().to_vec())),
        )
    }

    /// Reads several cache records in one read transaction (in the order of `keys`): for
    /// memos consulted per file, such as the context file hashes.
    pub fn get_cache_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.read(
            CACHE,
            || format!("reading {} cache records", keys.len()),
            |t| {
                keys.iter()
                    .map(|k| Ok(t.get(k.as_str())?.map(|v| v.value().to_vec())))
                    .collect::<Result<Vec<_>, StorageError>>()
            },
        )?;
        // No table yet: nothing is recorded.
        Ok(if found.is_empty() {
            vec![None; keys.len()]
        } else {
            found
        })
    }

    pub fn put_cache(&self, key: &str, value: &[u8]) -> Result<(), CacheError> {
        self.write(
            CACHE,
            || format!("writing cache record {key:?}"),
            |t| t.insert(key, value).map(drop),
        )
    }

    /// Deletes every cache record in one transaction; returns how many there were.
    pub fn clear_cache(&self) -> Result<usize, CacheError> {
        let keys: Vec<String> = self.list_cache()?.into_iter().map(|(k, _)| k).collect();
        let n = keys.len();
        if n > 0 {
            self.write(
                CACHE,
                || format!("deleting {n} cache records"),
                |t| {
                    for k in &keys {
                        t.remove(k.as_str())?;
                    }
                    Ok(())
                },
            )?;
        }
        Ok(n)
    }

    /// Writes several cache records in one transaction (one commit, one fsync): for memos
    /// with many small entries, such as the context file hashes.
    pub fn put_cache_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(
            CACHE,
            || format!("writing {} cache records", entries.len()),
            |t| {
                for (k, v) in entries {
                    t.insert(k.as_str(), v.as_slice())?;
                }
                Ok(())
            },
        )
    }

    /// [`put_cache_many`](Self::put_cache_many) of only the entries whose stored value differs
    /// (read first): a build that changed nothing commits nothing (a commit costs fsyncs).
    /// Returns how many were written.
    pub fn put_cache_changed(&self, entries: &[(String, Vec<u8>)]) -> Result<usize, CacheError> {
        let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
        let stored = self.get_cache_many(&keys)?;
        let changed: Vec<(String, Vec<u8>)> = entries
            .iter()
            .zip(stored)
            .filter(|((_, v), old)| old.as_deref() != Some(v.as_slice()))
            .map(|(e, _)| e.clone())
            .collect();
        self.put_cache_many(&changed)?;
        Ok(changed.len())
    }

    /// Reads, changes and writes one cache record in one write transaction, atomically with
    /// respect to every process sharing the index. `change` gets the current value (`None`
    /// if absent) and returns the new one (`None` deletes the record); its result is returned.
    /// `change` runs while the index is locked for writing: keep it short, no I/O.
    pub fn update_cache<F>(&self, key: &str, change: F) -> Result<Option<Vec<u8>>, CacheError>
    where
        F: FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
    {
        self.write(
            CACHE,
            || format!("updating cache record {key:?}"),
            |t| {
                let old = t.get(key)?.map(|v| v.value().to_vec());
                let new = change(old.as_deref());
                match &new {
                    Some(value) => drop(t.insert(key, value.as_slice())?),
                    None => drop(t.remove(key)?),
                }
                Ok(new)
            },
        )
    }

    /// Removes a cache record; whether it was there.
    pub fn delete_cache(&self, key: &str) -> Result<bool, CacheError> {
        self.write(
            CACHE,
            || format!("deleting cache record {key:?}"),
            |t| Ok(t.remove(key)?.is_some()),
        )
    }

    /// All cache records, sorted by key (for gc and `pallet prune`).
    pub fn list_cache(&self) -> Result<Vec<(String, Vec<u8>)>, CacheError> {
        self.list(CACHE, "listing cache records")
    }

    /// Every (key, value) of a string-to-bytes table, sorted by key.
    fn list(
        &self,
        table: TableDefinition<&str, &[u8]>,
        what: &'static str,
    ) -> Result<Vec<(String, Vec<u8>)>, CacheError> {
        self.read(
            table,
            || what.to_string(),
            |t| {
                t.iter()?
                    .map(|entry| {
                        let (k, v) = entry?;
                        Ok((k.value().to_string(), v.value().to_vec()))
                    })
                    .collect()
            },
        )
    }

    pub fn get_tag(&self, name: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.read(
            TAGS,
            || format!("reading tag {name:?}"),
            |t| Ok(t.get(name)?.map(|v| v.value().to_vec())),
        )
    }

    pub fn put_tag(&self, name: &str, value: &[u8]) -> Result<(), CacheError> {
        self.write(
            TAGS,
            || format!("writing tag {name:?}"),
            |t| t.insert(name, value).map(drop),
        )
    }

    pub fn delete_tag(&self, name: &str) -> Result<bool, CacheError> {
        self.write(
            TAGS,
            || format!("deleting tag {name:?}"),
            |t| Ok(t.remove(name)?.is_some()),
        )
    }

    /// All tags, sorted by name.
    pub fn list_tags(&self) -> Result<Vec<(String, Vec<u8>)>, CacheError> {
        self.list(TAGS, "listing tags")
    }

    pub fn set_blob_source(&self, digest: &str, repository: &str) -> Result<(), CacheError> {
        self.write(
            BLOB_SOURCES,
            || format!("recording the source of blob {digest}"),
            |t| t.insert(digest, repository).map(drop),
        )
    }

    pub fn blob_source(&self, digest: &str) -> Result<Option<String>, CacheError> {
        self.read(
            BLOB_SOURCES,
            || format!("reading the source of blob {digest}"),
            |t| Ok(t.get(digest)?.map(|v| v.value().to_string())),
        )
    }

    /// Forgets where a blob came from; whether it was known.
    pub fn delete_blob_source(&self, digest: &str) -> Result<bool, CacheError> {
        self.write(
            BLOB_SOURCES,
            || format!("forgetting the source of blob {digest}"),
            |t| Ok(t.remove(digest)?.is_some()),
        )
    }

    pub fn put_layer_form(&self, diff_id: &str, record: &[u8]) -> Result<(), CacheError> {
        self.write(
            LAYER_FORMS,
            || format!("recording the stored form of layer {diff_id}"),
            |t| t.insert(diff_id, record).map(drop),
        )
    }

    pub fn layer_form(&self, diff_id: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.read(
            LAYER_FORMS,
            || format!("reading the stored form of layer {diff_id}"),
            |t| Ok(t.get(diff_id)?.map(|v| v.value().to_vec())),
        )
    }

    /// Every layer form record, sorted by diff id (for prune).
    pub fn list_layer_forms(&self) -> Result<Vec<(String, Vec<u8>)>, CacheError> {
        self.list(LAYER_FORMS, "listing layer forms")
    }

    /// Forgets a layer's stored form; whether it was known.
    pub fn delete_layer_form(&self, diff_id: &str) -> Result<bool, CacheError> {
        self.write(
            LAYER_FORMS,
            || format!("forgetting the stored form of layer {diff_id}"),
            |t| Ok(t.remove(diff_id)?.is_some()),
        )
    }

    /// Writes salvaged records, by table name, in one transaction (a rebuilt index).
    pub(crate) fn put_records(
        &self,
        records: &std::collections::BTreeMap<&'static str, Vec<(String, Vec<u8>)>>,
    ) -> Result<(), CacheError> {
        let what = || "writing the rebuilt index".to_string();
        let txn = self
            .writable()?
            .begin_write()
            .map_err(|e| self.error(&what, e))?;
        for (name, def) in BYTE_TABLES {
            let mut table = txn.open_table(*def).map_err(|e| self.error(&what, e))?;
            for (k, v) in records.get(name).into_iter().flatten() {
                table
                    .insert(k.as_str(), v.as_slice())
                    .map_err(|e| self.error(&what, e))?;
            }
        }
        {
            let mut table = txn
                .open_table(BLOB_SOURCES)
                .map_err(|e| self.error(&what, e))?;
            for (k, v) in records.get(BLOB_SOURCES_NAME).into_iter().flatten() {
                let v = String::from_utf8_lossy(v);
                table
                    .insert(k.as_str(), v.as_ref())
                    .map_err(|e| self.error(&what, e))?;
            }
        }
        txn.commit().map_err(|e| self.error(&what, e))
    }

    /// One read transaction on one table. A table that was never written reads as empty
    /// (`T::default()`), so opening an index writes nothing.
    fn read<K, V, T>(
        &self,
        table: TableDefinition<K, V>,
        what: impl Fn() -> String,
        f: impl FnOnce(&ReadOnlyTable<K, V>) -> Result<T, StorageError>,
    ) -> Result<T, CacheError>
    where
        K: Key + 'static,
        V: Value + 'static,
        T: Default,
    {
        self.contained(&what, || self.read_unguarded(table, &what, f))
    }

    fn read_unguarded<K, V, T>(
        &self,
        table: TableDefinition<K, V>,
        what: &dyn Fn() -> String,
        f: impl FnOnce(&ReadOnlyTable<K, V>) -> Result<T, StorageError>,
    ) -> Result<T, CacheError>
    where
        K: Key + 'static,
        V: Value + 'static,
        T: Default,
    {
        // The writer once there is one: it sees this process's own commits at once.
        let txn = match (self.writer.get(), &self.reader) {
            (Some(db), _) => db.begin_read(),
            (None, Some(db)) => db.begin_read(),
            (None, None) => unreachable!("an index without a reader opens its writer at once"),
        }
        .map_err(|e| self.error(what, e))?;
        let table = match txn.open_table(table) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(T::default()),
            Err(e) => return Err(self.error(what, e)),
        };
        f(&table).map_err(|e| self.error(what, e))
    }

    /// One write transaction on one table, committed (durably) before returning. Waits while
    /// another process or thread is in a write transaction.
    fn write<K, V, T>(
        &self,
        table: TableDefinition<K, V>,
        what: impl Fn() -> String,
        f: impl FnOnce(&mut Table<'_, K, V>) -> Result<T, StorageError>,
    ) -> Result<T, CacheError>
    where
        K: Key + 'static,
        V: Value + 'static,
    {
        self.contained(&what, || {
            let txn = self
                .writable()?
                .begin_write()
                .map_err(|e| self.error(&what, e))?;
            let result = {
                let mut table = txn.open_table(table).map_err(|e| self.error(&what, e))?;
                f(&mut table).map_err(|e| self.error(&what, e))?
            };
            txn.commit().map_err(|e| self.error(&what, e))?;
            Ok(result)
        })
    }

    /// Runs one transaction, turning a panic inside redb into an error. redb 4.6 panics
    /// (`unreachable!`, failed asserts) on some damaged pages instead of returning
    /// `Corrupted`; the store must answer with a clear error and the way out, not exit 101.
    fn contained<T>(
        &self,
        what: &dyn Fn() -> String,
        transaction: impl FnOnce() -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        quiet_redb_panics();
        catch_unwind(AssertUnwindSafe(transaction)).unwrap_or_else(|payload| {
            Err(CacheError::Index {
                path: self.path.clone(),
                message: format!(
                    "{}: the index is damaged (redb stopped on an inconsistent page: {}){DAMAGED_HINT}",
                    what(),
                    panic_text(payload.as_ref())
                ),
            })
        })
    }

    fn error(&self, what: &dyn Fn() -> String, e: impl Into<redb::Error>) -> CacheError {
        let e: redb::Error = e.into();
        let hint = match &e {
            redb::Error::Corrupted(_) => DAMAGED_HINT,
            redb::Error::Io(_) => "; check the disk and the permissions of the store root",
            _ => "",
        };
        CacheError::Index {
            path: self.path.clone(),
            message: format!("{}: {e}{hint}", what()),
        }
    }
}

/// What to do about a damaged index.
const DAMAGED_HINT: &str = "; run `pallet doctor` to rebuild the index from the image records and \
     blobs that still verify (it keeps the damaged file beside it)";

/// The message of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// Installs (once per process) a panic hook that keeps quiet about panics raised inside
/// redb's own source: [`Index`] catches them and returns an error, so the default hook's
/// "thread panicked at ..." would only be noise before a clear message. Every other panic goes
/// to the hook that was there before.
pub(crate) fn quiet_redb_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_redb = info.location().is_some_and(|l| l.file().contains("/redb-"));
            if !in_redb {
                previous(info);
            }
        }));
    });
}

/// What went wrong opening the index, and what to do.
fn open_message(e: DatabaseError) -> String {
    match e {
        DatabaseError::DatabaseAlreadyOpen => "opening: the index is open in another process in \
            an exclusive mode (a program other than pallet, or a pallet built with redb older \
            than 4.5?); stop it, or use another --root"
            .to_string(),
        DatabaseError::LockProtocolMismatch => "opening: the index is open in a process that \
            uses another version of redb's locking protocol (another pallet version?); stop it, \
            or use another --root"
            .to_string(),
        DatabaseError::UpgradeRequired(v) => format!(
            "opening: the index has file format {v}, which this pallet cannot read; remove it \
             or use another --root"
        ),
        DatabaseError::RepairAborted => {
            "opening: the index needs repair and the repair was aborted".to_string()
        }
        // Not a redb file at all (a damaged header), or pages that fail their checksums.
        DatabaseError::Storage(redb::StorageError::Corrupted(m)) => {
            format!("opening: the index is damaged ({m}){DAMAGED_HINT}")
        }
        DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            format!("opening: the index is damaged ({e}){DAMAGED_HINT}")
        }
        other => format!("opening: {other}"),
    }
}
