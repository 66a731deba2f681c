//! The compression of a layer blob: algorithm and level, as `--compression` and `-o
//! compression=` spell them, the media type each gives, and the encoder that applies it.

use std::fmt;
use std::io::{self, Read, Write};

pub const MEDIA_OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// containerd's `MediaTypeDockerSchema2LayerZstd` (not part of Docker's schema 2 spec).
pub const MEDIA_DOCKER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// gzip level when none is given. BuildKit and buildah say 6 (Go's `DefaultCompression`), but
/// their Go deflate at 6 is about as fast as zlib's 4. Measured on the ../shared/peers workload's
/// 102 MB venv layer, with block_gzip on 2 cores: level 6 took 0.72 s for 63.0 MB, level 4 took
/// 0.46 s for 63.6 MB (+0.9%), and level 1 took 0.26 s for 68.9 MB. `--compression gzip,level=6`
/// chooses 6 again.
pub const DEFAULT_GZIP_LEVEL: u32 = 4;
/// zstd level when none is given (BuildKit's `zstd.SpeedDefault`, the zstd CLI's default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// libzstd worker threads per layer (the machines this runs on have 2 cores).
const ZSTD_WORKERS: u32 = 2;
/// Read buffer of the compression loop (fixed: memory does not grow with the layer).
pub const CHUNK: usize = 256 * 1024;

/// An invalid `--compression` / `compression=` value; the message names the value and the
/// accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompressionSpecError(String);

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip, level 0 (stored) to 9.
    Gzip { level: u32 },
    /// zstd, level 1 to 22.
    Zstd { level: i32 },
    /// The stored diffs as they are.
    Uncompressed,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip {
            level: DEFAULT_GZIP_LEVEL,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Gzip { level } => write!(f, "gzip,level={level}"),
            Compression::Zstd { level } => write!(f, "zstd,level={level}"),
            Compression::Uncompressed => f.write_str("uncompressed"),
        }
    }
}

impl Compression {
    /// Reads `gzip`, `zstd`, `uncompressed`, or `gzip,level=N` / `zstd,level=N`.
    pub fn parse(spec: &str) -> Result<Compression, CompressionSpecError> {
        Self::parse_spec(spec.trim()).map_err(CompressionSpecError)
    }

    fn parse_spec(spec: &str) -> Result<Compression, String> {
        let (name, rest) = match spec.split_once(',') {
            Some((n, r)) => (n.trim(), Some(r.trim())),
            None => (spec, None),
        };
        let level = match rest {
            None => None,
            Some(opt) => {
                let value = opt.strip_prefix("level=").ok_or_else(|| {
                    format!(
                        "invalid compression \"{spec}\": expected level=N after the algorithm \
                         (e.g. zstd,level=3), not \"{opt}\""
                    )
                })?;
                Some(value.trim().parse::<i64>().map_err(|_| {
                    format!("invalid compression \"{spec}\": level \"{value}\" is not a number")
                })?)
            }
        };
        let out_of_range = |lo: i64, hi: i64| {
            format!("invalid compression \"{spec}\": the {name} level must be {lo} to {hi}")
        };
        match name {
            "gzip" => {
                let level = level.unwrap_or(DEFAULT_GZIP_LEVEL as i64);
                if !(0..=9).contains(&level) {
                    return Err(out_of_range(0, 9));
                }
                Ok(Compression::Gzip {
                    level: level as u32,
                })
            }
            "zstd" => {
                let level = level.unwrap_or(DEFAULT_ZSTD_LEVEL as i64);
                if !(1..=22).contains(&level) {
                    return Err(out_of_range(1, 22));
                }
                Ok(Compression::Zstd {
                    level: level as i32,
                })
            }
            "uncompressed" if level.is_some() => Err(format!(
                "invalid compression \"{spec}\": uncompressed takes no level"
            )),
            "uncompressed" => Ok(Compression::Uncompressed),
            "estargz" => Err(format!(
                "invalid compression \"{spec}\": estargz is not supported (use gzip, zstd or uncompressed)"
            )),
            _ => Err(format!(
                "invalid compression \"{spec}\": unknown algorithm \"{name}\" (use gzip, zstd or \
                 uncompressed, optionally with ,level=N)"
            )),
        }
    }

    /// The algorithm's name (`gzip`, `zstd`, `uncompressed`).
    pub fn algorithm(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => "gzip",
            Compression::Zstd { .. } => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }

    /// The layer media type: OCI's (`oci`), else Docker's v2 (zstd: containerd's docker zstd
    /// type, as BuildKit writes).
    pub fn media_type(&self, oci: bool) -> &'static str {
        match (self, oci) {
            (Compression::Gzip { .. }, true) => MEDIA_OCI_GZIP,
            (Compression::Zstd { .. }, true) => MEDIA_OCI_ZSTD,
            (Compression::Uncompressed, true) => MEDIA_OCI_TAR,
            (Compression::Gzip { .. }, false) => MEDIA_DOCKER_GZIP,
            (Compression::Zstd { .. }, false) => MEDIA_DOCKER_ZSTD,
            (Compression::Uncompressed, false) => MEDIA_DOCKER_TAR,
        }
    }

    /// A short name for the algorithm and level, stable across versions (`gzip` for gzip at
    /// the default level, `gzip-9`, `zstd-3`, `none`): what a store keys remembered blobs by.
    pub fn label(&self) -> String {
        match self {
            Compression::Gzip {
                level: DEFAULT_GZIP_LEVEL,
            } => "gzip".to_string(),
            Compression::Gzip { level } => format!("gzip-{level}"),
            Compression::Zstd { level } => format!("zstd-{level}"),
            Compression::Uncompressed => "none".to_string(),
        }
    }

    /// Compresses `input` (`size` bytes, when known) into `out` and returns `out`. gzip runs
    /// in blocks on every core; zstd on two libzstd workers; uncompressed copies.
    pub fn encode<W: Write>(
        &self,
        input: &mut dyn Read,
        size: Option<u64>,
        mut out: W,
    ) -> io::Result<W> {
        match *self {
            Compression::Gzip { level } => {
                // One layer on every core (block_gzip); a big layer no longer waits on one.
                let mut input = io::BufReader::with_capacity(CHUNK, input);
                crate::block_gzip::gzip_blocks(&mut input, &mut out, level)?;
                Ok(out)
            }
            Compression::Zstd { level } => {
                let mut z = zstd::stream::write::Encoder::new(out, level)?;
                // Without zstdmt support in the linked libzstd this fails: one thread then.
                let _ = z.multithread(ZSTD_WORKERS);
                z.set_pledged_src_size(size)?;
                pump(input, &mut z)?;
                z.finish()
            }
            Compression::Uncompressed => {
                pump(input, &mut out)?;
                Ok(out)
            }
        }
    }
}

/// Copies `input` to `out` through a fixed buffer.
fn pump(input: &mut dyn Read, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
    }
}
