//! `--cache-from`: at the start of a build, each cache's manifest and config only (no layer
//! bytes), checked by our parser; then the solver asks [`Imported::lookup`] on a local miss.
//! A hit records its layers in the store by descriptor (`store::record_remote`): their bytes
//! are fetched only when a step runs on top of them or an output writes them.
//!
//! A ref whose manifest is an image's is read for an inline cache (its manifest annotation).
//!
//! Never worse than no cache: a cache that is missing, refused (401/403), unreachable, damaged
//! or of another format is one warning, and the build goes on without it.

use super::blobs::CacheStore;
use super::format::{
    cache_config_of, inline_config_of, parse_config, CacheConfig, IndexBlob, CONFIG_LIMIT,
};
use super::mounts;
use super::spec::{CacheFrom, Location};
use crate::events::Event;
use crate::store::mount_pack::MountManifest;
use crate::store::{record_remote, LayerRecord, RemoteLayer, RemoteSource, StoreError};
use cache::Root;
use registry::Client;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The caches of `--cache-from`, as maps from cache key to layers.
#[derive(Default)]
pub struct Imported {
    caches: Vec<Loaded>,
    /// Key -> (cache, record index): the first cache that has a key answers it.
    keys: HashMap<String, (usize, usize)>,
    /// Cache mount key -> (cache, mount entry index), the first cache's (`mounts=true`).
    mounts: HashMap<String, (usize, usize)>,
    /// Per mount key: whether a restore was tried (once a build). Its lock is held while one
    /// restores, so two steps that mount the same cache at once restore it once (and steps
    /// mounting other caches do not wait).
    restored: Mutex<HashMap<String, Arc<Mutex<bool>>>>,
}

struct Loaded {
    label: String,
    source: RemoteSource,
    /// Where its blobs are (a local directory canonicalized).
    location: Location,
    config: CacheConfig,
}

/// The progress step of the import.
const STEP: &str = "[internal] importing cache";

impl Imported {
    /// Reads each cache's manifest and config (in flag order); a cache that cannot be read is
    /// a warning in progress.
    pub fn load(
        client: Option<&Client>,
        froms: &[CacheFrom],
        events: &(dyn Fn(Event) + Sync),
    ) -> Imported {
        let mut imported = Imported::default();
        if froms.is_empty() {
            return imported;
        }
        events(Event::Started { name: STEP.into() });
        let started = std::time::Instant::now();
        for from in froms {
            let label = from.location.to_string();
            match load_one(client, &from.location) {
                Ok(Some((source, location, config, gone))) => {
                    if let Some(gone) = gone {
                        events(Event::Log {
                            name: STEP.into(),
                            line: format!("warning: {label}: {gone}"),
                        });
                    }
                    let i = imported.caches.len();
                    for (r, record) in config.records.iter().enumerate() {
                        imported.keys.entry(record.key.clone()).or_insert((i, r));
                    }
                    for (m, entry) in config.mounts.iter().enumerate() {
                        imported.mounts.entry(entry.key.clone()).or_insert((i, m));
                    }
                    let mounts = if config.mounts.is_empty() {
                        String::new()
                    } else {
                        format!(", {} cache mounts", config.mounts.len())
                    };
                    events(Event::Log {
                        name: STEP.into(),
                        line: format!(
                            "{label}: {} keys, {} layers{mounts}",
                            config.records.len(),
                            config.layers.len()
                        ),
                    });
                    imported.caches.push(Loaded {
                        label,
                        source,
                        location,
                        config,
                    });
                }
                Ok(None) => events(Event::Log {
                    name: STEP.into(),
                    line: format!("warning: {label}: no cache there yet; building without it"),
                }),
                Err(why) => events(Event::Log {
                    name: STEP.into(),
                    line: format!("warning: {label}: {why}; building without it"),
                }),
            }
        }
        events(Event::Done {
            name: STEP.into(),
            seconds: started.elapsed().as_secs_f64(),
        });
        imported
    }

    /// How many keys the caches answer.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys and no cache mounts: nothing to ask.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.mounts.is_empty()
    }

    /// The manifest of cache mount `key` in the first cache that has it (what an export packs
    /// against); None when none has it or it cannot be read.
    pub fn mount_manifest(&self, client: Option<&Client>, key: &str) -> Option<MountManifest> {
        let &(c, m) = self.mounts.get(key)?;
        let cache = &self.caches[c];
        let store = store_of(client, &cache.location).ok()?;
        mounts::fetch_manifest(&store, &cache.config.mounts[m]).ok()
    }

    /// The cache mount entries (the first cache's for each key) whose keys are not in `used`:
    /// what an export carries over for the mounts this build did not run.
    pub(super) fn mount_entries_except(
        &self,
        used: &[mounts::UsedMount],
    ) -> Vec<super::format::MountEntry> {
        let mut keys: Vec<_> = self
            .mounts
            .iter()
            .filter(|(k, _)| !used.iter().any(|u| &u.id == *k))
            .collect();
        keys.sort();
        keys.into_iter()
            .map(|(_, &(c, m))| self.caches[c].config.mounts[m].clone())
            .collect()
    }

    /// Restores cache mount `key` into `dest` when a cache has it, `dest` is absent or empty
    /// and no restore of it was tried in this build. Some(Ok(line)): what was restored, for
    /// progress; Some(Err(line)): a warning (nothing was restored, the mount stays empty).
    pub fn restore_mount(
        &self,
        client: Option<&Client>,
        key: &str,
        dest: &Path,
    ) -> Option<Result<String, String>> {
        let &(c, m) = self.mounts.get(key)?;
        let slot = self
            .restored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut tried = slot.lock().unwrap_or_else(|e| e.into_inner());
        if std::mem::replace(&mut *tried, true) {
            return None;
        }
        let empty = match std::fs::read_dir(dest) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if !empty {
            return None;
        }
        let cache = &self.caches[c];
        let result = store_of(client, &cache.location)
            .and_then(|store| mounts::restore(&store, &cache.config.mounts[m], dest));
        drop(tried);
        Some(match result {
            Ok(r) => Ok(format!(
                "restored cache mount {key} from {}: {} files, {} bytes ({} bytes fetched)",
                cache.label, r.files, r.bytes, r.fetched
            )),
            Err(e) => Err(format!(
                "warning: cache mount {key} from {} not restored: {e}; the step runs with an \
                 empty mount",
                cache.label
            )),
        })
    }

    /// The uncompressed size of every layer the caches know, by diff id.
    pub fn diff_sizes(&self) -> HashMap<String, u64> {
        self.caches
            .iter()
            .flat_map(|c| &c.config.layers)
            .map(|l| (l.diff_id.clone(), l.diff_size))
            .collect()
    }

    /// The path index blob of layer `diff_id` in the first cache that has one, and where the
    /// cache is.
    pub fn path_index(&self, diff_id: &str) -> Option<(&IndexBlob, &RemoteSource)> {
        self.caches.iter().find_map(|c| {
            c.config
                .layers
                .iter()
                .find(|l| l.diff_id == diff_id)
                .and_then(|l| l.path_index.as_ref())
                .map(|i| (i, &c.source))
        })
    }

    /// The layers of `key` from the first cache that has it, that cache's label, and the key
    /// the steps after it are keyed by when not `key` (`CacheRecord::downstream`); the layers
    /// the store lacks are recorded as remote (no bytes move).
    pub fn lookup(&self, root: &Root, key: &str) -> Result<Option<Found<'_>>, StoreError> {
        let Some(&(c, r)) = self.keys.get(key) else {
            return Ok(None);
        };
        let cache = &self.caches[c];
        let record = &cache.config.records[r];
        let mut layers = Vec::with_capacity(record.layers.len());
        for entry in &record.layers {
            let l = &cache.config.layers[entry.layer];
            {
                record_remote(
                    root,
                    &l.diff_id,
                    &RemoteLayer {
                        blob: l.digest.clone(),
                        blob_size: l.size,
                        media_type: l.media_type.clone(),
                        compression: l.compression.clone(),
                        diff_size: l.diff_size,
                        source: cache.source.clone(),
                    },
                )?;
            }
            layers.push(LayerRecord {
                diff_id: l.diff_id.clone(),
                size: l.diff_size,
                created: entry.created.clone(),
            });
        }
        Ok(Some(Found {
            layers,
            from: &cache.label,
            downstream: record.downstream.as_deref(),
        }))
    }
}

/// A step an imported cache has.
pub struct Found<'a> {
    pub layers: Vec<LayerRecord>,
    /// The cache's label (`type=registry ref=...`).
    pub from: &'a str,
    /// The key the steps after it are keyed by, when not its own (`CacheRecord::downstream`).
    pub downstream: Option<&'a str>,
}

/// One cache's config (without the records whose layers it no longer has, and then a note
/// saying so), None when the ref or directory has none.
#[allow(clippy::type_complexity)]
fn load_one(
    client: Option<&Client>,
    location: &Location,
) -> Result<Option<(RemoteSource, Location, CacheConfig, Option<String>)>, String> {
    let Some((store, source, mut config)) = read_config(client, location)? else {
        return Ok(None);
    };
    let gone = drop_missing(&store, &mut config)?;
    let location = match &store {
        CacheStore::Layout { dir } => Location::Local(dir.clone()),
        CacheStore::Registry { .. } => location.clone(),
    };
    Ok(Some((source, location, config, gone)))
}

/// The store of a cache already loaded.
fn store_of<'a>(client: Option<&'a Client>, location: &Location) -> Result<CacheStore<'a>, String> {
    match location {
        Location::Registry(reference) => Ok(CacheStore::Registry {
            client: client.ok_or("no registry client is configured")?,
            reference: reference.clone(),
        }),
        Location::Local(dir) => Ok(CacheStore::Layout { dir: dir.clone() }),
        Location::Inline => Err("an inline cache carries no cache mounts".into()),
    }
}

/// Blobs checked at once.
const CHECK_CONCURRENCY: usize = 8;

/// Drops the records naming a layer the cache lacks (a registry's garbage collection, a
/// blob deleted from a directory): a hit on them would fail when its bytes are needed. One
/// HEAD per layer, several at once.
fn drop_missing(store: &CacheStore, config: &mut CacheConfig) -> Result<Option<String>, String> {
    let descriptors: Vec<Option<registry::manifest::Descriptor>> = config
        .layers
        .iter()
        .map(|l| {
            Some(registry::manifest::Descriptor {
                media_type: l.media_type.clone(),
                digest: registry::Digest::parse(&l.digest).ok()?,
                size: l.size,
                platform: None,
                annotations: None,
            })
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let present = std::sync::Mutex::new(vec![false; descriptors.len()]);
    let failure = std::sync::Mutex::new(None::<String>);
    std::thread::scope(|threads| {
        for _ in 0..CHECK_CONCURRENCY.min(descriptors.len()) {
            threads.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= descriptors.len() || failure.lock().expect("lock").is_some() {
                    return;
                }
                let Some(d) = &descriptors[i] else { continue };
                match store.has_blob(d) {
                    Ok(here) => present.lock().expect("lock")[i] = here,
                    Err(e) => {
                        failure
                            .lock()
                            .expect("lock")
                            .get_or_insert(format!("checking its layers: {e}"));
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }
    let present = present.into_inner().expect("lock");
    let missing = present.iter().filter(|p| !**p).count();
    if missing == 0 {
        return Ok(None);
    }
    let before = config.records.len();
    config
        .records
        .retain(|r| r.layers.iter().all(|e| present[e.layer]));
    Ok(Some(format!(
        "{missing} of its {} layers are gone; {} of its {before} keys are not used",
        present.len(),
        before - config.records.len()
    )))
}

/// The cache's home and config, None when there is none.
fn read_config<'a>(
    client: Option<&'a Client>,
    location: &Location,
) -> Result<Option<(CacheStore<'a>, RemoteSource, CacheConfig)>, String> {
    let (store, source) = match location {
        Location::Registry(reference) => {
            let client = client.ok_or("no registry client is configured")?;
            (
                CacheStore::Registry {
                    client,
                    reference: reference.clone(),
                },
                RemoteSource::Registry {
                    repository: reference.name(),
                },
            )
        }
        Location::Inline => return Err("an inline cache is read from its image".into()),
        Location::Local(dir) => {
            let dir = std::fs::canonicalize(dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            (
                CacheStore::Layout { dir: dir.clone() },
                RemoteSource::Layout { dir },
            )
        }
    };
    let Some(manifest) = store.get_manifest().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    // An index (several platforms, or an attested image): its first image's manifest
    // carries the inline cache (every platform's manifest carries the whole cache).
    let manifest = match index_image(&manifest) {
        Some(d) => store
            .get_manifest_at(&d)
            .map_err(|e| format!("reading its image manifest {}: {e}", d.digest))?,
        None => manifest,
    };
    let config = match cache_config_of(&manifest) {
        Ok(config) => config,
        Err(e) => {
            // An image may carry an inline cache (`--cache-to type=inline`).
            return match inline_config_of(&manifest) {
                Some(Ok(config)) => Ok(Some((store, source, config))),
                Some(Err(inline)) => Err(format!("its inline cache is not valid: {inline}")),
                None => Err(format!("not a pallet cache: {e}")),
            };
        }
    };
    let bytes = store
        .fetch_bytes(&config, CONFIG_LIMIT)
        .map_err(|e| format!("reading its config: {e}"))?;
    let config = parse_config(&bytes).map_err(|e| format!("not a pallet cache: {e}"))?;
    Ok(Some((store, source, config)))
}

/// The first image of an image index (not an attestation manifest,
/// `vnd.docker.reference.type=attestation-manifest`); None for anything else.
fn index_image(manifest: &[u8]) -> Option<registry::manifest::Descriptor> {
    let index: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    let entries = index["manifests"].as_array()?;
    let is_attestation = |m: &&serde_json::Value| {
        m["annotations"]["vnd.docker.reference.type"].as_str() == Some("attestation-manifest")
    };
    let image = entries.iter().find(|m| !is_attestation(m))?;
    Some(registry::manifest::Descriptor {
        media_type: image["mediaType"].as_str()?.to_string(),
        digest: registry::Digest::parse(image["digest"].as_str()?).ok()?,
        size: image["size"].as_u64()?,
        platform: None,
        annotations: None,
    })
}
