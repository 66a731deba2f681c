//! Layer codecs: compression of stored diffs for export (gzip, zstd or none, at a level), and
//! the decoders that read compressed layers back (by media type, as a reader or as a writer
//! that decompresses what is written to it, for downloads).
//!
//! Compression streams from the stored diff into the content store (the blob writer hashes the
//! compressed stream as it is written; the diff id is the stored diff's digest, already known),
//! with a fixed buffer: memory does not grow with the layer. Layers are compressed in parallel
//! (rayon), and so are the blocks of one layer: gzip in 1 MiB blocks (block_gzip, one ordinary
//! gzip stream, incompressible blocks stored), zstd across two worker threads (libzstd's
//! multithreaded mode: its frames are ordinary zstd frames any decoder reads). Each result is remembered in
//! the index per (diff id, algorithm, level), so a second export reuses the blob.
//!
//! Defaults: gzip at level 4 (see [`DEFAULT_GZIP_LEVEL`] for why not BuildKit's 6), zstd at
//! level 3 (BuildKit's `zstd.SpeedDefault`). Media types are OCI's, or Docker's v2 ones (`oci-mediatypes=false`):
//! for zstd that is `application/vnd.docker.image.rootfs.diff.tar.zstd`, which is what BuildKit
//! writes (its `toDockerLayerType`; docker 23+ and containerd read it, skopeo's docker schema 2
//! code does not). OCI media types are the portable choice for zstd.
//!
//! Knows blobs, layers and media types; not images, manifests or the CLI.

use crate::store::{LayerRecord, StoreError};
use cache::{BlobInfo, Root};
use rayon::prelude::*;
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
const CHUNK: usize = 256 * 1024;

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
    pub fn parse(spec: &str) -> Result<Compression, String> {
        let spec = spec.trim();
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

    /// The index key remembering the blob of `diff_id` compressed this way. gzip at the
    /// default level keeps the key earlier versions wrote.
    fn memo_key(&self, diff_id: &str) -> String {
        match self {
            Compression::Gzip {
                level: DEFAULT_GZIP_LEVEL,
            } => format!("compressed/gzip/{diff_id}"),
            Compression::Gzip { level } => format!("compressed/gzip-{level}/{diff_id}"),
            Compression::Zstd { level } => format!("compressed/zstd-{level}/{diff_id}"),
            Compression::Uncompressed => format!("compressed/none/{diff_id}"),
        }
    }
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { what, source }
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

/// Records `blob` as the layer's form under `c`, so exports and pushes reuse it (a pulled
/// layer's own blob is recorded this way too).
pub fn remember(
    root: &Root,
    diff_id: &str,
    c: &Compression,
    blob: &BlobInfo,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(blob).expect("blob info serializes");
    root.index.put_cache(&c.memo_key(diff_id), &bytes)?;
    Ok(())
}

/// The blob an earlier export, push or pull recorded for this layer compressed as `c`, if the
/// store still holds it.
pub fn memoized(
    root: &Root,
    layer: &LayerRecord,
    c: &Compression,
) -> Result<Option<BlobInfo>, StoreError> {
    let Some(bytes) = root.index.get_cache(&c.memo_key(&layer.diff_id))? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<BlobInfo>(&bytes)
        .ok()
        .filter(|info| root.blobs.contains(&info.digest)))
}

/// The blob of one layer compressed as `c`, compressing it only if no earlier export did.
pub fn compress_layer(
    root: &Root,
    layer: &LayerRecord,
    c: &Compression,
) -> Result<BlobInfo, StoreError> {
    if *c == Compression::Uncompressed {
        // Exports hand out the diff blob itself: a pulled layer's is written now.
        crate::store::layer_forms::ensure_diff_blob(root, &layer.diff_id)?;
        return Ok(BlobInfo {
            digest: layer.diff_id.clone(),
            size: layer.size,
        });
    }
    if let Some(info) = memoized(root, layer, c)? {
        return Ok(info);
    }
    let what = || format!("compressing layer {} with {c}", layer.diff_id);
    let mut input = crate::store::layer_forms::open_layer(root, &layer.diff_id)?;
    let writer = root.blobs.writer()?;
    let writer = match *c {
        Compression::Gzip { level } => {
            // One layer on every core (block_gzip); a big layer no longer waits on one.
            let mut writer = writer;
            let mut input = io::BufReader::with_capacity(CHUNK, input);
            super::block_gzip::gzip_blocks(&mut input, &mut writer, level)
                .map_err(io_err(what()))?;
            writer
        }
        Compression::Zstd { level } => {
            let mut z = zstd::stream::write::Encoder::new(writer, level).map_err(io_err(what()))?;
            // Without zstdmt support in the linked libzstd this fails: one thread then.
            let _ = z.multithread(ZSTD_WORKERS);
            z.set_pledged_src_size(Some(layer.size))
                .map_err(io_err(what()))?;
            pump(&mut input, &mut z).map_err(io_err(what()))?;
            z.finish().map_err(io_err(what()))?
        }
        Compression::Uncompressed => unreachable!("returned above"),
    };
    let info = writer.commit()?;
    remember(root, &layer.diff_id, c, &info)?;
    Ok(info)
}

/// Compresses every layer (several at once), reusing blobs earlier exports made.
pub fn compress_layers(
    root: &Root,
    layers: &[LayerRecord],
    c: &Compression,
) -> Result<Vec<BlobInfo>, StoreError> {
    layers
        .par_iter()
        .map(|l| compress_layer(root, l, c))
        .collect()
}

/// The gzip blob (default level) of a layer.
pub fn gzip_layer(root: &Root, layer: &LayerRecord) -> Result<BlobInfo, StoreError> {
    compress_layer(root, layer, &Compression::default())
}

/// Every layer's gzip blob (default level), several at once.
pub fn gzip_layers(root: &Root, layers: &[LayerRecord]) -> Result<Vec<BlobInfo>, StoreError> {
    compress_layers(root, layers, &Compression::default())
}

/// A layer's compression, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Gzip,
    Zstd,
}

/// Why a layer cannot be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("unsupported layer media type \"{0}\" (pallet reads tar layers: plain, gzip or zstd)")]
    UnsupportedMediaType(String),
    #[error("starting the zstd decoder: {0}")]
    Io(#[from] io::Error),
}

impl Codec {
    /// The codec of an OCI or Docker layer media type (non-distributable variants included).
    pub fn of_media_type(media_type: &str) -> Result<Codec, CodecError> {
        let m = media_type.trim();
        let is_layer = m.starts_with("application/vnd.oci.image.layer.")
            || m.starts_with("application/vnd.docker.image.rootfs.");
        let codec = if !is_layer {
            None
        } else if m.ends_with("tar+gzip") || m.ends_with("tar.gzip") {
            Some(Codec::Gzip)
        } else if m.ends_with("tar+zstd") || m.ends_with("tar.zstd") {
            Some(Codec::Zstd)
        } else if m.ends_with(".tar") {
            Some(Codec::Plain)
        } else {
            None
        };
        codec.ok_or_else(|| CodecError::UnsupportedMediaType(media_type.to_string()))
    }
}

/// A reader of the uncompressed tar of a layer blob with `media_type`. gzip members and zstd
/// frames may follow one another (pigz, zstdmt), as decoders elsewhere accept.
pub fn decompressor<'a, R: Read + Send + 'a>(
    media_type: &str,
    reader: R,
) -> Result<Box<dyn Read + Send + 'a>, CodecError> {
    Ok(match Codec::of_media_type(media_type)? {
        Codec::Plain => Box::new(reader),
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(
            reader,
        ))),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// A writer that decompresses what is written to it into `W` (for decompressing a layer while
/// it downloads). Call [`finish`](Self::finish) at the end: it reports a truncated stream and
/// gives `W` back.
pub struct DecompressingWriter<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Plain(W),
    Gzip(Box<flate2::write::MultiGzDecoder<W>>),
    Zstd(zstd::stream::write::Decoder<'static, W>),
}

/// A writer decompressing a layer of `media_type` into `w`.
pub fn decompressing_writer<W: Write>(
    media_type: &str,
    w: W,
) -> Result<DecompressingWriter<W>, CodecError> {
    let inner = match Codec::of_media_type(media_type)? {
        Codec::Plain => Inner::Plain(w),
        Codec::Gzip => Inner::Gzip(Box::new(flate2::write::MultiGzDecoder::new(w))),
        Codec::Zstd => Inner::Zstd(zstd::stream::write::Decoder::new(w)?),
    };
    Ok(DecompressingWriter { inner })
}

impl<W: Write> DecompressingWriter<W> {
    /// Ends the stream: an error if it stopped inside a gzip member or a zstd frame; else the
    /// inner writer, flushed.
    pub fn finish(self) -> io::Result<W> {
        let truncated = |what: &str| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the {what} stream ends early (truncated layer)"),
            )
        };
        let mut w = match self.inner {
            Inner::Plain(w) => w,
            Inner::Gzip(mut d) => {
                d.try_finish().map_err(|_| truncated("gzip"))?;
                d.finish().map_err(|_| truncated("gzip"))?
            }
            Inner::Zstd(d) => d.finish().map_err(|e| {
                if e.to_string().contains("incomplete") {
                    truncated("zstd")
                } else {
                    e
                }
            })?,
        };
        w.flush()?;
        Ok(w)
    }

    /// The writer the decompressed bytes go to.
    pub fn get_ref(&self) -> &W {
        match &self.inner {
            Inner::Plain(w) => w,
            Inner::Gzip(d) => d.get_ref(),
            Inner::Zstd(d) => d.get_ref(),
        }
    }
}

impl<W: Write> Write for DecompressingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(w) => w.write(buf),
            Inner::Gzip(d) => d.write(buf),
            Inner::Zstd(d) => d.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.flush(),
            Inner::Gzip(d) => d.flush(),
            Inner::Zstd(d) => d.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_levels() {
        assert_eq!(Compression::parse("gzip").unwrap(), Compression::default());
        assert_eq!(
            Compression::parse("gzip,level=9").unwrap(),
            Compression::Gzip { level: 9 }
        );
        assert_eq!(
            Compression::parse("zstd").unwrap(),
            Compression::Zstd { level: 3 }
        );
        assert_eq!(
            Compression::parse(" zstd, level=19 ").unwrap(),
            Compression::Zstd { level: 19 }
        );
        assert_eq!(
            Compression::parse("uncompressed").unwrap(),
            Compression::Uncompressed
        );
        for (bad, says) in [
            ("lz4", "unknown algorithm \"lz4\""),
            ("zstd,level=0", "1 to 22"),
            ("zstd,level=23", "1 to 22"),
            ("gzip,level=10", "0 to 9"),
            ("gzip,level=x", "not a number"),
            ("gzip,speed=1", "expected level=N"),
            ("uncompressed,level=1", "takes no level"),
            ("estargz", "not supported"),
            ("", "unknown algorithm"),
        ] {
            let e = Compression::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains(&format!("\"{}\"", bad.trim())), "{bad}: {e}");
        }
        for c in [
            Compression::Gzip { level: 1 },
            Compression::Zstd { level: 7 },
            Compression::Uncompressed,
        ] {
            assert_eq!(Compression::parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn media_types() {
        let gz = Compression::default();
        let zs = Compression::Zstd { level: 3 };
        let none = Compression::Uncompressed;
        assert_eq!(gz.media_type(true), MEDIA_OCI_GZIP);
        assert_eq!(zs.media_type(true), MEDIA_OCI_ZSTD);
        assert_eq!(none.media_type(true), MEDIA_OCI_TAR);
        assert_eq!(gz.media_type(false), MEDIA_DOCKER_GZIP);
        assert_eq!(zs.media_type(false), MEDIA_DOCKER_ZSTD);
        assert_eq!(none.media_type(false), MEDIA_DOCKER_TAR);
        for (m, c) in [
            (MEDIA_OCI_TAR, Codec::Plain),
            (MEDIA_OCI_GZIP, Codec::Gzip),
            (MEDIA_OCI_ZSTD, Codec::Zstd),
            (MEDIA_DOCKER_TAR, Codec::Plain),
            (MEDIA_DOCKER_GZIP, Codec::Gzip),
            (MEDIA_DOCKER_ZSTD, Codec::Zstd),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Codec::Gzip,
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Codec::Gzip,
            ),
        ] {
            assert_eq!(Codec::of_media_type(m).unwrap(), c, "{m}");
        }
        for bad in [
            "",
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "application/vnd.oci.image.config.v1+json",
        ] {
            assert!(Codec::of_media_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memo_keys_differ_per_algorithm_and_level() {
        let d = "sha256:ab";
        let keys: std::collections::HashSet<String> = [
            Compression::default(),
            Compression::Gzip { level: 9 },
            Compression::Zstd { level: 3 },
            Compression::Zstd { level: 19 },
        ]
        .iter()
        .map(|c| c.memo_key(d))
        .collect();
        assert_eq!(keys.len(), 4);
        assert_eq!(
            Compression::default().memo_key(d),
            "compressed/gzip/sha256:ab"
        );
    }
}
