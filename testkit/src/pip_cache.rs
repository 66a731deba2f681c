//! A synthetic pip cache for tests and benches of cache-mount transport: pip's layout
//! (`http-v2/a/b/c/d/e/<hash>` bodies, `wheels/xx/yy/zz/<hash>/<name>.whl` built wheels),
//! random (incompressible, like wheels) contents, and a pip-like mix of sizes: by count 91%
//! small files (300 B-32 KiB), 8% medium (32 KiB-1 MiB), 1% wheels (1 MiB up to a cap).
//! Everything is a function of the seed: names, sizes, contents and mtimes, so two calls give
//! equal trees.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::rng::Rng;

/// What [`generate`] made.
#[derive(Debug, Clone, Default)]
pub struct PipCache {
    pub files: usize,
    pub bytes: u64,
    /// The wheels (1 MB and more), relative to the root.
    pub wheels: Vec<PathBuf>,
}

/// Fixed mtime of generated files (2026-01-01), so trees made at different times are equal.
pub const MTIME: i64 = 1_767_225_600;

/// Fills `root` with about `total` bytes of pip cache. `max_wheel` caps one wheel's size.
pub fn generate(root: &Path, seed: u64, total: u64, max_wheel: u64) -> PipCache {
    let mut rng = Rng::new(seed);
    let mut out = PipCache::default();
    fs::create_dir_all(root.join("selfcheck")).unwrap();
    while out.bytes < total {
        let roll = rng.range(0, 1000);
        let (rel, size) = if roll < 10 {
            // A built wheel, 1 MB to max_wheel.
            let size = rng.range(1 << 20, max_wheel.max((1 << 20) + 1));
            (wheel_path(&mut rng), size)
        } else if roll < 90 {
            (http_path(&mut rng), rng.range(32 << 10, 1 << 20))
        } else {
            (http_path(&mut rng), rng.range(300, 32 << 10))
        };
        let size = size.min(total - out.bytes).max(1);
        write_random(&root.join(&rel), &mut rng, size);
        if size >= 1 << 20 {
            out.wheels.push(rel);
        }
        out.files += 1;
        out.bytes += size;
    }
    settle_mtimes(root);
    out
}

/// Adds one wheel of `size` bytes (a new package in the cache); returns its relative path.
pub fn add_wheel(root: &Path, seed: u64, size: u64) -> PathBuf {
    let mut rng = Rng::new(seed ^ 0x5eed_00f0_a0e1);
    let rel = wheel_path(&mut rng);
    write_random(&root.join(&rel), &mut rng, size);
    rel
}

fn http_path(rng: &mut Rng) -> PathBuf {
    let h = rng.hex(56);
    let b = h.as_bytes();
    let mut p = PathBuf::from("http-v2");
    for c in &b[..5] {
        p.push((*c as char).to_string());
    }
    p.push(if rng.range(0, 2) == 0 {
        h.clone()
    } else {
        format!("{h}.body")
    });
    p
}

fn wheel_path(rng: &mut Rng) -> PathBuf {
    let h = rng.hex(56);
    let name = format!(
        "pkg_{}-{}.{}.{}-py3-none-any.whl",
        rng.hex(6),
        rng.range(0, 9),
        rng.range(0, 30),
        rng.range(0, 9)
    );
    PathBuf::from("wheels")
        .join(&h[..2])
        .join(&h[2..4])
        .join(&h[4..6])
        .join(&h[6..])
        .join(name)
}

/// Random bytes that files are cut from: 4 MiB, more than deflate's 32 KiB window and zstd's
/// 2 MiB at its default level, so contents stay incompressible to both.
const POOL: usize = 4 << 20;

fn pool() -> &'static [u8] {
    static POOL_BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    POOL_BYTES.get_or_init(|| {
        let mut rng = Rng::new(0x9001);
        let mut pool = Vec::with_capacity(POOL);
        while pool.len() < POOL {
            pool.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        pool
    })
}

/// Writes `size` random bytes to `path` (parents made), with the fixed mtime: the pool from
/// a random offset (wrapping), the first 16 bytes from `rng`, so every file differs.
pub fn write_random(path: &Path, rng: &mut Rng, size: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path).unwrap());
    let pool = pool();
    let mut at = rng.range(0, POOL as u64) as usize;
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    head[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    let first = size.min(16) as usize;
    f.write_all(&head[..first]).unwrap();
    let mut left = size - first as u64;
    while left > 0 {
        let n = (left.min((POOL - at) as u64)) as usize;
        f.write_all(&pool[at..at + n]).unwrap();
        left -= n as u64;
        at = (at + n) % POOL;
    }
    f.flush().unwrap();
    drop(f);
    set_mtime(path, MTIME);
}

/// Sets every directory's mtime under `root` (root included) to [`MTIME`]: what creating
/// files changed, made equal again.
pub fn settle_mtimes(root: &Path) {
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            settle_mtimes(&entry.path());
        }
    }
    set_mtime(root, MTIME);
}

/// Sets a path's mtime (and atime), not following a symlink.
pub fn set_mtime(path: &Path, secs: i64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: NUL-terminated path and two timespecs.
    let ret = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(ret, 0, "setting the mtime of {}", path.display());
}
