//! Reading layer blobs back: the codec of a media type, a decompressing reader, and a writer
//! that decompresses what is written to it (a download unpacked as it arrives).

use std::io::{self, Read, Write};

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
