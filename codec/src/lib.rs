//! Layer codecs: how layer blobs are compressed (gzip, zstd or none, at a level), their media
//! types, and the decoders that read compressed layers back (by media type, as a reader or as
//! a writer that decompresses what is written to it, for downloads).
//!
//! Compression streams with a fixed buffer: memory does not grow with the layer. gzip runs in
//! 1 MiB blocks on every core (block_gzip, one ordinary gzip stream, incompressible blocks
//! stored), zstd across two worker threads (libzstd's multithreaded mode: its frames are
//! ordinary zstd frames any decoder reads).
//!
//! Defaults: gzip at level 4 (see [`DEFAULT_GZIP_LEVEL`] for why not BuildKit's 6), zstd at
//! level 3 (BuildKit's `zstd.SpeedDefault`). Media types are OCI's, or Docker's v2 ones
//! (`oci-mediatypes=false`): for zstd that is `application/vnd.docker.image.rootfs.diff.tar.zstd`,
//! which is what BuildKit writes (its `toDockerLayerType`; docker 23+ and containerd read it,
//! skopeo's docker schema 2 code does not). OCI media types are the portable choice for zstd.
//!
//! Knows bytes and media types; not layers, stores, images, manifests or the CLI (BuildKit's
//! `util/compression` is the model).

mod block_gzip;
mod compression;
mod decode;

pub use block_gzip::gzip_blocks;
pub use compression::*;
pub use decode::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

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
            let e = e.to_string();
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
    fn labels_differ_per_algorithm_and_level() {
        let labels: std::collections::HashSet<String> = [
            Compression::default(),
            Compression::Gzip { level: 9 },
            Compression::Zstd { level: 3 },
            Compression::Zstd { level: 19 },
            Compression::Uncompressed,
        ]
        .iter()
        .map(Compression::label)
        .collect();
        assert_eq!(labels.len(), 5);
        // The label earlier versions keyed default-level gzip blobs by.
        assert_eq!(Compression::default().label(), "gzip");
    }

    #[test]
    fn encoded_layers_decode_to_their_input() {
        let input: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
        for c in [
            Compression::default(),
            Compression::Zstd { level: 3 },
            Compression::Uncompressed,
        ] {
            let blob = c
                .encode(&mut &input[..], Some(input.len() as u64), Vec::new())
                .unwrap();
            let mut back = Vec::new();
            decompressor(c.media_type(true), &blob[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == input, "{c} does not round-trip");
            let mut w = decompressing_writer(c.media_type(false), Vec::new()).unwrap();
            w.write_all(&blob).unwrap();
            assert!(
                w.finish().unwrap() == input,
                "{c} (writer) does not round-trip"
            );
        }
    }
}
