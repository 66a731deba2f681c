//! `pallet doctor`: checks the store's index and, when it is damaged, rebuilds it from what
//! still verifies. The index is read table by table as far as it can be (`cache::salvage`);
//! the image records it lost are taken from their copies beside it (`image_records`); an
//! image record is kept when its manifest and config blobs hash to their digests and each
//! of its layers is here (its diff blob, or the compressed blob a pull kept, hashing to its
//! digest, or a remote cache's descriptor of it); a layer-form record when its blob verifies; a cache record when every layer it
//! names is here; the rest of the cache (memos, step history, URL records) and the blob
//! sources as they were. What is dropped is reported by name: nothing the user can read
//! disappears silently, and the damaged file stays beside the new one.
//!
//! Runs with the store locked exclusively (builds and prunes wait), and opens no `Root`: the
//! index may be too damaged to open.

use super::layer_forms::LayerForm;
use super::{StoreError, StoredImage};
use cache::salvage::{replace, salvage, Salvaged};
use cache::Root;
use sha2::Digest as _;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the doctor found and did.
#[derive(Debug, Default)]
pub struct DoctorReport {
    /// The index read completely and every record verified: nothing was changed.
    pub healthy: bool,
    /// Where the damaged index was kept, when it was replaced.
    pub damaged_index: Option<PathBuf>,
    /// Tables that could not be read to their end, and why.
    pub cut_short: Vec<(String, String)>,
    pub images_kept: Vec<String>,
    /// Images the damaged index had lost, restored from their records beside it.
    pub images_restored: Vec<String>,
    /// Image names dropped, and why.
    pub images_dropped: Vec<(String, String)>,
    pub cache_kept: usize,
    pub cache_dropped: usize,
    /// Blobs whose content does not match their digest.
    pub bad_blobs: Vec<String>,
}

/// Checks the index of the store at `root_path`; rebuilds it when it is damaged.
pub fn doctor(root_path: &Path) -> Result<DoctorReport, StoreError> {
    let _lock = Root::lock_exclusive_at(root_path)?;
    let index_path = root_path.join("index.redb");
    let salvaged = salvage(&index_path);
    let mut report = DoctorReport::default();
    if let Some(why) = &salvaged.unopenable {
        report
            .cut_short
            .push(("the whole index".to_string(), why.clone()));
    }
    for (name, table) in &salvaged.tables {
        if let Some(why) = &table.cut_short {
            report.cut_short.push((name.to_string(), why.clone()));
        }
    }
    let mut blobs = BlobCheck::new(root_path);
    let beside = super::image_records::read_all(root_path);
    let records = verified_records(&salvaged, &beside, &mut blobs, &mut report);
    // Every kept image has its record beside the index (stores made before there were any).
    for (name, value) in records.get("tags").into_iter().flatten() {
        if !beside.iter().any(|(n, v)| n == name && v == value) {
            super::image_records::write(root_path, name, value).map_err(|source| {
                StoreError::Io {
                    what: format!("keeping the record of image {name} beside the index"),
                    source,
                }
            })?;
        }
    }
    report.bad_blobs = blobs.bad();
    let damaged = !report.cut_short.is_empty()
        || !report.images_dropped.is_empty()
        || report.cache_dropped > 0;
    if !damaged && index_path.exists() {
        report.healthy = true;
        return Ok(report);
    }
    report.damaged_index = Some(replace(&index_path, &records)?);
    Ok(report)
}

/// The records to keep, by table; fills in the report's kept and dropped counts.
fn verified_records(
    salvaged: &Salvaged,
    beside: &[(String, Vec<u8>)],
    blobs: &mut BlobCheck,
    report: &mut DoctorReport,
) -> BTreeMap<&'static str, Vec<(String, Vec<u8>)>> {
    let forms: HashMap<&str, LayerForm> = salvaged
        .table("layer_forms")
        .iter()
        .filter_map(|(diff_id, v)| Some((diff_id.as_str(), serde_json::from_slice(v).ok()?)))
        .filter(|(_, form): &(&str, LayerForm)| blobs.verifies(&form.blob))
        .collect();
    // Layers a remote build cache or a lazy pull holds for the store (`remote_forms`): here
    // for an image, their bytes fetched when needed.
    let remote: std::collections::HashSet<&str> = salvaged
        .table("cache")
        .iter()
        .filter_map(|(key, _)| key.strip_prefix("remote/"))
        .collect();
    let mut layer_here = |blobs: &mut BlobCheck, diff_id: &str| {
        forms.contains_key(diff_id) || blobs.verifies(diff_id) || remote.contains(diff_id)
    };
    let mut tags = Vec::new();
    for (name, value) in salvaged.table("tags") {
        match image_problem(value, blobs, &mut layer_here) {
            None => {
                report.images_kept.push(name.clone());
                tags.push((name.clone(), value.clone()));
            }
            Some(why) => report.images_dropped.push((name.clone(), why)),
        }
    }
    // A damaged index may have lost tags: their records beside it bring them back (a name the
    // index still has keeps the index's record, the newer one).
    let lost_some =
        salvaged.unopenable.is_some() || salvaged.tables.values().any(|t| t.cut_short.is_some());
    if lost_some {
        let in_index: std::collections::HashSet<&str> = salvaged
            .table("tags")
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        for (name, value) in beside
            .iter()
            .filter(|(n, _)| !in_index.contains(n.as_str()))
        {
            match image_problem(value, blobs, &mut layer_here) {
                None => {
                    report.images_restored.push(name.clone());
                    report.images_kept.push(name.clone());
                    tags.push((name.clone(), value.clone()));
                }
                Some(why) => report.images_dropped.push((name.clone(), why)),
            }
        }
        tags.sort();
    }
    let mut cache = Vec::new();
    for (key, value) in salvaged.table("cache") {
        if cache_record_holds(value, blobs, &mut layer_here) {
            report.cache_kept += 1;
            cache.push((key.clone(), value.clone()));
        } else {
            report.cache_dropped += 1;
        }
    }
    let kept_forms = salvaged
        .table("layer_forms")
        .iter()
        .filter(|(diff_id, _)| forms.contains_key(diff_id.as_str()))
        .cloned()
        .collect();
    BTreeMap::from([
        ("tags", tags),
        ("cache", cache),
        ("layer_forms", kept_forms),
        ("blob_sources", salvaged.table("blob_sources").to_vec()),
    ])
}

/// Why an image record cannot be kept, if it cannot.
fn image_problem(
    value: &[u8],
    blobs: &mut BlobCheck,
    layer_here: &mut dyn FnMut(&mut BlobCheck, &str) -> bool,
) -> Option<String> {
    let image: StoredImage = match serde_json::from_slice(value) {
        Ok(image) => image,
        Err(e) => return Some(format!("its record is unreadable ({e})")),
    };
    // A multi-platform image needs its index and every platform's image.
    if let Some(index) = &image.index {
        if !blobs.verifies(&index.digest) {
            return Some(format!(
                "its index blob {} is missing or damaged",
                index.digest
            ));
        }
        for child in &index.children {
            let bytes = serde_json::to_vec(child).expect("image record serializes");
            if let Some(why) = image_problem(&bytes, blobs, layer_here) {
                return Some(format!("its {} image: {why}", super::image_platform(child)));
            }
        }
    }
    for (what, digest) in [
        ("manifest", &image.manifest_digest),
        ("config", &image.config_digest),
    ] {
        if !blobs.verifies(digest) {
            return Some(format!("its {what} blob {digest} is missing or damaged"));
        }
    }
    let missing: Vec<&String> = image
        .layers
        .iter()
        .filter(|d| !layer_here(blobs, d))
        .collect();
    missing.first().map(|first| {
        format!(
            "{} of its layers are missing or damaged ({first}...)",
            missing.len()
        )
    })
}

/// Whether a solver cache record (`{"layers": [{"diff_id": ...}]}`) still has its layers;
/// records of other shapes (memos, history) are kept as they are.
fn cache_record_holds(
    value: &[u8],
    blobs: &mut BlobCheck,
    layer_here: &mut dyn FnMut(&mut BlobCheck, &str) -> bool,
) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(value) else {
        return true;
    };
    let Some(layers) = json.get("layers").and_then(|l| l.as_array()) else {
        return true;
    };
    layers.iter().all(|l| {
        l.get("diff_id")
            .and_then(|d| d.as_str())
            .is_some_and(|d| layer_here(blobs, d))
    })
}

/// Hashes each blob at most once.
struct BlobCheck {
    dir: PathBuf,
    seen: HashMap<String, bool>,
}

impl BlobCheck {
    fn new(root: &Path) -> BlobCheck {
        BlobCheck {
            dir: root.join("blobs").join("sha256"),
            seen: HashMap::new(),
        }
    }

    /// Whether blob `digest` is here and its content hashes to it.
    fn verifies(&mut self, digest: &str) -> bool {
        if let Some(ok) = self.seen.get(digest) {
            return *ok;
        }
        let ok = digest
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .is_some_and(|hex| hashes_to(&self.dir.join(hex), hex));
        self.seen.insert(digest.to_string(), ok);
        ok
    }

    /// Blobs that are here but whose content does not match their name.
    fn bad(&self) -> Vec<String> {
        let mut bad: Vec<String> = self
            .seen
            .iter()
            .filter(|(d, ok)| !**ok && self.dir.join(&d["sha256:".len().min(d.len())..]).exists())
            .map(|(d, _)| d.clone())
            .collect();
        bad.sort();
        bad
    }
}

fn hashes_to(path: &Path, hex: &str) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    hex::encode(hasher.finalize()) == hex
}
