//! Layers off the critical path. A step that made a layer hands its snapshot (already renamed
//! into `snapshots/`, usable as an overlay lower at once) to a background thread that writes
//! its tar blob and diff id, and then the step's cache record. Jobs are taken in the order they
//! were sent, and a step is sent only after the steps it builds on; a record job waits for the
//! diffs of its layers, so a record is in the index only when all its layers' blobs are (a
//! build killed at any point leaves a store the next build uses). Once every step is done, the
//! solver's own thread takes jobs too, so the last layers are written two at a time. With a compression
//! set (the build exports or pushes), each finished diff is compressed on a second thread and
//! remembered per (diff id, algorithm), so export finds it done.
//!
//! Both threads run at a lower CPU priority (nice): on a 2-core machine they would otherwise
//! slow the steps on the critical path; they use the time those leave idle (a RUN waiting, I/O),
//! and once every step is done the rest of the compression queue is shared with the caller's
//! thread, so two layers compress at once as an export would.
//!
//! The diff ids are awaited only where needed: cache records (here) and the image at the end
//! of the solve. Knows layers and cache records, not Dockerfiles.

use super::keys::{self, CacheKey};
use crate::store::{
    compress_layer, ensure_snapshot, settle_snapshot, write_diff, LayerRecord, StoreError,
};
use cache::Root;
use codec::Compression;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

/// Why a layer's diff or a cache record was not written.
#[derive(Debug, thiserror::Error)]
pub enum LayerWriteError {
    /// Writing the tar blob of the layer `step` made failed. Shared: every step that waits
    /// for the diff sees it.
    #[error("{source}")]
    Diff {
        /// The progress name of the step that made the layer.
        step: Arc<str>,
        #[source]
        source: Arc<StoreError>,
    },
    /// Writing a step's cache record failed.
    #[error(transparent)]
    Record(StoreError),
    #[error("the layer writer panicked")]
    Panicked,
}

impl LayerWriteError {
    /// The step whose layer could not be written (a full disk names it).
    pub(crate) fn step(&self) -> Option<&str> {
        match self {
            LayerWriteError::Diff { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// A diff id being written, for the step named `step`.
#[derive(Debug)]
pub(crate) struct PendingDiff {
    step: Arc<str>,
    slot: Mutex<Option<Result<LayerRecord, Arc<StoreError>>>>,
    ready: Condvar,
}

impl PendingDiff {
    fn set(&self, r: Result<LayerRecord, Arc<StoreError>>) {
        *self.slot.lock().expect("diff slot") = Some(r);
        self.ready.notify_all();
    }

    fn wait(&self) -> Result<LayerRecord, LayerWriteError> {
        let mut slot = self.slot.lock().expect("diff slot");
        loop {
            if let Some(r) = slot.as_ref() {
                return r.clone().map_err(|source| LayerWriteError::Diff {
                    step: self.step.clone(),
                    source,
                });
            }
            slot = self.ready.wait(slot).expect("diff slot");
        }
    }
}

/// One layer of a step's result.
#[derive(Debug, Clone)]
pub(crate) enum Layer {
    /// In the store: a diff blob with a snapshot under its diff id (unpacked on demand).
    Stored(LayerRecord),
    /// Made by this build: its snapshot is ready, its diff is being written.
    Fresh {
        snapshot: PathBuf,
        diff: Arc<PendingDiff>,
    },
}

impl Layer {
    /// The layer's unpacked dir (for overlay lowers).
    pub(crate) fn snapshot(&self, root: &Root) -> Result<PathBuf, StoreError> {
        match self {
            Layer::Stored(l) => ensure_snapshot(root, &l.diff_id),
            Layer::Fresh { snapshot, .. } => Ok(snapshot.clone()),
        }
    }

    /// The diff id and size, waiting for the tar if it is still being written.
    pub(crate) fn diff(&self) -> Result<LayerRecord, LayerWriteError> {
        match self {
            Layer::Stored(l) => Ok(l.clone()),
            Layer::Fresh { diff, .. } => diff.wait(),
        }
    }
}

enum Job {
    Commit {
        snapshot: PathBuf,
        diff: Arc<PendingDiff>,
        clamp: Option<i64>,
    },
    Record {
        key: CacheKey,
        layers: Vec<Layer>,
        downstream: Option<CacheKey>,
    },
}

/// What the writer did: pending snapshots to settle, and the first failure.
#[derive(Default)]
struct Outcome {
    written: Vec<(PathBuf, String)>,
    error: Option<LayerWriteError>,
}

/// The steps' side of the writer: send jobs (shared by every step).
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
}

/// The writer's threads, joined by [`Writer::finish`].
pub(crate) struct Threads<'scope> {
    writer: ScopedJoinHandle<'scope, Outcome>,
    /// Runs what is left of the writer's queue on the calling thread (beside the writer).
    help: Help<'scope>,
    compressor: Option<(ScopedJoinHandle<'scope, ()>, Drain<'scope>)>,
}

type Help<'scope> = Box<dyn FnOnce() -> Outcome + Send + 'scope>;

/// Compresses what is left in the queue on the calling thread (alongside the compressor).
type Drain<'scope> = Box<dyn FnOnce() + Send + 'scope>;

/// Nice value of the background threads (0 normal, 19 lowest).
const WRITER_NICE: i32 = 5;
const COMPRESSOR_NICE: i32 = 15;

/// Lowers the calling thread's CPU priority (Linux: nice is per thread). Best effort.
fn lower_priority(nice: i32) {
    // SAFETY: gettid and setpriority have no memory effects; a failure leaves the priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
}

/// The writer's queue, before its threads start.
pub(crate) struct Queue(mpsc::Receiver<Job>);

impl Writer {
    pub(crate) fn new() -> (Writer, Queue) {
        let (tx, rx) = mpsc::channel::<Job>();
        (
            Writer {
                tx: Mutex::new(Some(tx)),
            },
            Queue(rx),
        )
    }
}

impl Queue {
    /// Starts the writer (and, with `compress`, the compressor) on threads of `scope`.
    pub(crate) fn start<'scope, 'env>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        root: &'env Root,
        compress: Option<Compression>,
    ) -> Threads<'scope> {
        let rx = self.0;
        let (ctx, crx) = mpsc::channel::<LayerRecord>();
        let compressor = compress
            .filter(|c| *c != Compression::Uncompressed)
            .map(|c| {
                let queue = Arc::new(Mutex::new(crx));
                // A failure here is not the build's: export compresses again and reports it.
                let work = move |queue: &Mutex<mpsc::Receiver<LayerRecord>>| loop {
                    let next = queue.lock().expect("compression queue").recv();
                    match next {
                        Ok(layer) => drop(compress_layer(root, &layer, &c)),
                        Err(_) => return,
                    }
                };
                let q = queue.clone();
                let thread = scope.spawn(move || {
                    lower_priority(COMPRESSOR_NICE);
                    work(&q)
                });
                let drain: Drain<'scope> = Box::new(move || work(&queue));
                (thread, drain)
            });
        let compress_tx = compressor.as_ref().map(|_| ctx);
        let jobs = Arc::new(Mutex::new(rx));
        let (jobs2, compress_tx2) = (jobs.clone(), compress_tx.clone());
        let thread = scope.spawn(move || {
            lower_priority(WRITER_NICE);
            work(root, &jobs, compress_tx.as_ref())
        });
        let help: Help<'scope> = Box::new(move || work(root, &jobs2, compress_tx2.as_ref()));
        Threads {
            writer: thread,
            help,
            compressor,
        }
    }
}

/// Runs jobs from the queue until it is closed and empty. Taken in the order sent by however
/// many threads share the queue: a record job waits for the diffs of its layers, whose jobs
/// were taken before it, so it never waits on a job nobody runs.
fn work(
    root: &Root,
    jobs: &Mutex<mpsc::Receiver<Job>>,
    compress_tx: Option<&mpsc::Sender<LayerRecord>>,
) -> Outcome {
    let mut out = Outcome::default();
    loop {
        let next = jobs.lock().expect("writer queue").recv();
        let Ok(job) = next else {
            return out;
        };
        match job {
            Job::Commit {
                snapshot,
                diff,
                clamp,
            } => {
                let r = write_diff(root, &snapshot, clamp).map_err(Arc::new);
                match &r {
                    Ok(l) => {
                        out.written.push((snapshot, l.diff_id.clone()));
                        if let Some(tx) = compress_tx {
                            let _ = tx.send(l.clone());
                        }
                    }
                    Err(e) => {
                        out.error.get_or_insert_with(|| LayerWriteError::Diff {
                            step: diff.step.clone(),
                            source: e.clone(),
                        });
                    }
                }
                diff.set(r);
            }
            Job::Record {
                key,
                layers,
                downstream,
            } => {
                let diffs: Result<Vec<LayerRecord>, LayerWriteError> =
                    layers.iter().map(Layer::diff).collect();
                if let Ok(diffs) = diffs {
                    if let Err(e) = keys::record_step(root, &key, &diffs, downstream.as_ref()) {
                        out.error.get_or_insert(LayerWriteError::Record(e));
                    }
                }
            }
        }
    }
}

impl Writer {
    fn send(&self, job: Job) {
        if let Some(tx) = self.tx.lock().expect("writer channel").as_ref() {
            // The thread ends only when the channel closes: a send cannot fail before.
            let _ = tx.send(job);
        }
    }

    /// A finished step's snapshot becomes a layer: usable now, its diff written in the
    /// background. `step` (its progress name) names it if the diff cannot be written.
    pub(crate) fn commit(&self, snapshot: &Path, clamp: Option<i64>, step: &str) -> Layer {
        let diff = Arc::new(PendingDiff {
            step: step.into(),
            slot: Mutex::new(None),
            ready: Condvar::new(),
        });
        self.send(Job::Commit {
            snapshot: snapshot.to_path_buf(),
            diff: diff.clone(),
            clamp,
        });
        Layer::Fresh {
            snapshot: snapshot.to_path_buf(),
            diff,
        }
    }

    /// Records `key -> layers` in the cache once all their diffs are written; `downstream`:
    /// the key the steps after it are keyed by, when not `key` (`keys::Record`).
    pub(crate) fn record(&self, key: &CacheKey, layers: &[Layer], downstream: Option<&CacheKey>) {
        self.send(Job::Record {
            key: key.clone(),
            layers: layers.to_vec(),
            downstream: downstream.cloned(),
        });
    }

    /// Waits for every job (and compression), then gives each written snapshot its diff id's
    /// name: call when nothing of this build mounts a snapshot any more. Returns the first
    /// failure to write a layer or a record.
    pub(crate) fn finish(&self, threads: Threads, root: &Root) -> Result<(), LayerWriteError> {
        drop(self.tx.lock().expect("writer channel").take());
        // Every step is done: the layers still queued are written on two threads.
        let helped = (threads.help)();
        let mut outcome = threads.writer.join().unwrap_or_else(|_| Outcome {
            error: Some(LayerWriteError::Panicked),
            ..Outcome::default()
        });
        outcome.written.extend(helped.written);
        if let Some(e) = helped.error {
            outcome.error.get_or_insert(e);
        }
        if let Some((thread, drain)) = threads.compressor {
            drain();
            let _ = thread.join();
        }
        for (snapshot, diff_id) in &outcome.written {
            // Best effort: an unsettled pending dir costs disk until prune, never correctness
            // (a hit finds the layer by its diff id and unpacks its blob if need be).
            let _ = settle_snapshot(root, snapshot, diff_id);
        }
        outcome.error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{adopt_upper, snapshot_path, PENDING_PREFIX};

    fn layer_dir(root: &Root, content: &[u8]) -> PathBuf {
        let upper = root.tmp_dir().join(format!("upper-{}", content.len()));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(upper.join("f"), content).unwrap();
        adopt_upper(root, &upper).unwrap()
    }

    #[test]
    fn records_follow_their_diffs_and_snapshots_settle_under_the_diff_id() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(&tmp.path().join("root")).unwrap();
        let (a, b) = (layer_dir(&root, b"one"), layer_dir(&root, b"two!"));
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(PENDING_PREFIX));
        let (writer, queue) = Writer::new();
        let (la, lb) = std::thread::scope(|scope| {
            let threads = queue.start(scope, &root, Some(Compression::default()));
            let la = writer.commit(&a, None, "a");
            // Usable at once, before its diff exists.
            assert_eq!(la.snapshot(&root).unwrap(), a);
            let lb = writer.commit(&b, None, "b");
            writer.record(
                &CacheKey::new("step/k".into()),
                &[la.clone(), lb.clone()],
                None,
            );
            writer.finish(threads, &root).unwrap();
            (la.diff().unwrap(), lb.diff().unwrap())
        });
        assert!(root.blobs.contains(&la.diff_id) && root.blobs.contains(&lb.diff_id));
        assert_eq!(
            keys::lookup(&root, &CacheKey::new("step/k".into())).unwrap(),
            Some(vec![la.clone(), lb])
        );
        // Settled: the snapshot now has the diff id's name; no pending dir is left.
        assert!(snapshot_path(&root, &la.diff_id).join("f").is_file());
        let left: Vec<_> = std::fs::read_dir(root.snapshots_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(PENDING_PREFIX))
            .collect();
        assert!(left.is_empty());
        // Compressed in the background: export finds the memo.
        assert!(root
            .index
            .get_cache(&format!("compressed/gzip/{}", la.diff_id))
            .unwrap()
            .is_some());
    }
}
