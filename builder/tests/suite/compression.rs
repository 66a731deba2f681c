//! Layer compression end to end: gzip and zstd at several levels, remembered per (diff id,
//! algorithm, level); the blobs read back by pallet's own decoders (reader and writer side) and
//! by the `gzip` and `zstd` CLIs; truncated streams rejected. Then a zstd OCI layout pallet
//! writes is unpacked by umoci and copied by skopeo (which decompresses
//! it to plain layers whose digests must be the diff ids), and a zstd layout skopeo writes is
//! imported by pallet.
//!
//! Tool versions this was checked with (Debian 12): skopeo 1.9.3 reads and writes zstd OCI
//! layers (`--dest-compress-format zstd`); umoci 0.4.7 refuses them ("blob is not correct
//! mediatype": zstd arrived in umoci 0.5), so umoci unpacks skopeo's decoded copy unless the
//! installed umoci unpacks zstd itself. skopeo 1.9.3 cannot copy zstd layers into a
//! docker-archive at all (its schema 2 conversion refuses zstd, even with --dest-decompress).
//!
//! The layout tests need root (snapshots keep owners), skopeo, umoci, zstd and busybox-static;
//! they fail under CI=true when something is missing. `throughput` (ignored) measures MB/s on
//! ~200 MB of real files:
//! `cargo test --release -p pallet-builder --test suite compression::throughput -- --ignored --nocapture`.

use cache::{BlobInfo, Root};
use codec::{
    decompressing_writer, decompressor, Compression, MEDIA_DOCKER_ZSTD, MEDIA_OCI_GZIP,
    MEDIA_OCI_ZSTD,
};
use pallet::export::docker::{self, ArchiveOptions, ImageOptions, MediaTypes};
use pallet::store::LayerRecord;
use pallet::store::{compress_layer, compress_layers};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use testkit::busybox::Rootfs;
use testkit::run::{ok, skopeo};
use testkit::{require, text, Need::*};

/// A few MB that compress like a layer: text, repeated binary, and incompressible bytes.
fn layer_bytes(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut n = 0u64;
    while out.len() < size {
        n += 1;
        match n % 3 {
            0 => out.extend_from_slice(
                format!("line {n}: the quick brown fox jumps over the lazy dog\n").as_bytes(),
            ),
            1 => out.extend_from_slice(&[(n % 251) as u8; 97]),
            _ => {
                for _ in 0..8 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    out.truncate(size);
    out
}

fn store_with_layer(dir: &Path, data: &[u8]) -> (Root, LayerRecord) {
    let root = Root::open(&dir.join("root")).unwrap();
    let info = root.blobs.put_bytes(data).unwrap();
    let layer = LayerRecord {
        diff_id: info.digest,
        size: info.size,
        created: None,
    };
    (root, layer)
}

fn read_all(mut r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

/// `tool -dc` on `data`.
fn cli_decompress(tool: &str, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success(), "{tool} -dc: {}", text(&out.stderr));
    out.stdout
}

#[test]
fn every_algorithm_and_level_round_trips_and_is_remembered() {
    if !require("compression round trip", &[Tool("gzip"), Tool("zstd")]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = layer_bytes(6 << 20);
    let (root, layer) = store_with_layer(tmp.path(), &data);
    let mut digests = std::collections::HashSet::new();
    for spec in [
        "gzip",
        "gzip,level=1",
        "gzip,level=9",
        "zstd",
        "zstd,level=1",
        "zstd,level=19",
    ] {
        let c = Compression::parse(spec).unwrap();
        let blobs = compress_layers(&root, std::slice::from_ref(&layer), &c).unwrap();
        let BlobInfo { digest, size } = blobs[0].clone();
        assert!(size < data.len() as u64 / 2, "{spec}: {size} bytes");
        assert!(
            digests.insert(digest.clone()),
            "{spec} made a blob another level made"
        );
        let blob = root.blobs.read(&digest).unwrap();
        let media = c.media_type(true);
        let tool = c.algorithm();
        assert_eq!(cli_decompress(tool, &blob), data, "{tool} -dc of {spec}");
        let back = read_all(decompressor(media, blob.as_slice()).unwrap()).unwrap();
        assert_eq!(back, data, "decompressor({media}) of {spec}");
        // Write side, in uneven pieces as a download would arrive.
        let mut w = decompressing_writer(media, Vec::new()).unwrap();
        for piece in blob.chunks(4093) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.finish().unwrap(), data, "decompressing_writer of {spec}");

        // Remembered: the same blob, not written again.
        let path = root.blobs.path(&digest).unwrap();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let again = compress_layer(&root, &layer, &c).unwrap();
        assert_eq!(again.digest, digest, "{spec}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        // And remembered across processes: the memo lives in the store's index.
        drop(again);
    }
    // zstd's blob is a zstd frame, gzip's a gzip member.
    let z = compress_layer(&root, &layer, &Compression::Zstd { level: 3 }).unwrap();
    assert!(root
        .blobs
        .read(&z.digest)
        .unwrap()
        .starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
    let g = compress_layers(&root, std::slice::from_ref(&layer), &Compression::default()).unwrap();
    assert!(root
        .blobs
        .read(&g[0].digest)
        .unwrap()
        .starts_with(&[0x1f, 0x8b]));
    assert_eq!(
        g[0],
        compress_layer(&root, &layer, &Compression::default()).unwrap()
    );
    // Uncompressed is the diff itself.
    let u = compress_layer(&root, &layer, &Compression::Uncompressed).unwrap();
    assert_eq!(u.digest, layer.diff_id);
    // A memo whose blob was deleted is recompressed.
    std::fs::remove_file(root.blobs.path(&z.digest).unwrap()).unwrap();
    let z2 = compress_layer(&root, &layer, &Compression::Zstd { level: 3 }).unwrap();
    assert_eq!(z2.digest, z.digest);
    assert!(root.blobs.contains(&z.digest));
}

#[test]
fn decoders_reject_truncated_and_unknown_streams() {
    let data = layer_bytes(1 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let (root, layer) = store_with_layer(tmp.path(), &data);
    for c in [Compression::default(), Compression::Zstd { level: 3 }] {
        let blob = compress_layer(&root, &layer, &c).unwrap();
        let bytes = root.blobs.read(&blob.digest).unwrap();
        let cut = &bytes[..bytes.len() - 10];
        let media = c.media_type(true);
        let mut w = decompressing_writer(media, Vec::new()).unwrap();
        w.write_all(cut).unwrap();
        let e = w.finish().unwrap_err();
        assert!(e.to_string().contains("truncated"), "{c}: {e}");
        assert!(
            read_all(decompressor(media, cut).unwrap()).is_err(),
            "{c}: a truncated stream read to the end"
        );
    }
    let e = decompressor("application/vnd.oci.image.layer.v1.tar+lz4", &b""[..])
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("unsupported layer media type"),
        "{e}"
    );
    assert!(decompressing_writer("", Vec::new()).is_err());
    // Two zstd frames and two gzip members in a row are one stream (zstdmt, pigz).
    let mut two = zstd::encode_all(&b"one "[..], 3).unwrap();
    two.extend(zstd::encode_all(&b"two"[..], 3).unwrap());
    let got = read_all(decompressor(MEDIA_OCI_ZSTD, two.as_slice()).unwrap()).unwrap();
    assert_eq!(got, b"one two");
    let mut w = decompressing_writer(MEDIA_DOCKER_ZSTD, Vec::new()).unwrap();
    w.write_all(&two).unwrap();
    assert_eq!(w.finish().unwrap(), b"one two");
    let gz = |s: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(s).unwrap();
        e.finish().unwrap()
    };
    let mut two = gz(b"one ");
    two.extend(gz(b"two"));
    let got = read_all(decompressor(MEDIA_OCI_GZIP, two.as_slice()).unwrap()).unwrap();
    assert_eq!(got, b"one two");
    let mut w = decompressing_writer(MEDIA_OCI_GZIP, Vec::new()).unwrap();
    w.write_all(&two).unwrap();
    assert_eq!(w.finish().unwrap(), b"one two");
}

/// A store with busybox imported (one layer) and a second layer on top, as an image.
fn busybox_store(dir: &Path) -> (Root, Vec<u8>, Vec<LayerRecord>) {
    let rootfs = dir.join("busybox-rootfs.tar");
    Rootfs::new().write_tar(&rootfs);
    let root = Root::open(&dir.join("root")).unwrap();
    let mut input = std::fs::File::open(&rootfs).unwrap();
    let image = pallet::store::import_rootfs(
        &root,
        &mut input,
        "busybox-rootfs.tar",
        "docker.io/library/busybox:latest",
        &graph::Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        },
        "2024-01-01T00:00:00Z",
    )
    .unwrap();
    let mut layers = docker::stored_layers(&root, &image).unwrap();
    // A second layer: one text file, so the image has two differently sized zstd blobs.
    let mut tar = tar::Builder::new(Vec::new());
    let body = layer_bytes(300_000);
    let mut h = tar::Header::new_ustar();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    tar.append_data(&mut h, "data/mixed.bin", body.as_slice())
        .unwrap();
    let diff = tar.into_inner().unwrap();
    let info = root.blobs.put_bytes(&diff).unwrap();
    layers.push(LayerRecord {
        diff_id: info.digest.clone(),
        size: info.size,
        created: None,
    });
    let mut config = image.config.clone();
    config.rootfs.diff_ids.push(info.digest);
    let config = serde_json::to_vec(&config).unwrap();
    (root, config, layers)
}

fn image_options(c: Compression, media_types: MediaTypes) -> ImageOptions {
    ImageOptions {
        names: vec!["docker.io/library/app:latest".into()],
        media_types,
        compression: c.into(),
        annotations: Default::default(),
    }
}

#[test]
fn zstd_oci_layout_is_read_by_umoci_and_skopeo_and_imported_back() {
    if !require(
        "zstd layout test",
        &[
            Root,
            Busybox,
            Tool("skopeo"),
            Tool("umoci"),
            Tool("zstd"),
            Tool("tar"),
        ],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (root, config, layers) = busybox_store(tmp.path());
    let opts = image_options(Compression::Zstd { level: 3 }, MediaTypes::Oci);
    let img = docker::store_image(&root, &config, &layers, &opts).unwrap();
    let layout = tmp.path().join("layout");
    let archive = ArchiveOptions {
        names: &opts.names,
        docker_manifest: false,
        mtime: 0,
    };
    docker::write_archive_dir(&root, &img, &archive, &layout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&root.blobs.read(&img.blobs.manifest.digest).unwrap()).unwrap();
    for (l, diff) in manifest["layers"].as_array().unwrap().iter().zip(&layers) {
        assert_eq!(l["mediaType"], MEDIA_OCI_ZSTD);
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let blob = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
        assert!(
            blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            "not a zstd frame"
        );
        assert_eq!(blob.len() as u64, l["size"].as_u64().unwrap());
        // The CLI decompresses it to the diff whose digest the config names.
        let plain = cli_decompress("zstd", &blob);
        assert_eq!(plain.len() as u64, diff.size);
    }

    // skopeo reads it, and recompresses it to gzip, decoding our zstd frames (umoci checks the
    // result against the config's diff ids below). (skopeo 1.9.3 cannot write it to a
    // docker-archive: "zstd compression is not supported for docker images", even with
    // --dest-decompress; a containers/image limitation of that version.)
    let inspect = skopeo(&["inspect", &format!("oci:{}:latest", layout.display())]);
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let plain = tmp.path().join("regzip");
    skopeo(&[
        "copy",
        "--dest-compress",
        "--dest-compress-format",
        "gzip",
        &format!("oci:{}:latest", layout.display()),
        &format!("oci:{}:latest", plain.display()),
    ]);
    let copy = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:latest", plain.display()),
    ]);
    let copy: serde_json::Value = serde_json::from_str(&copy).unwrap();
    for l in copy["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], MEDIA_OCI_GZIP, "skopeo wrote {l}");
    }
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();

    // umoci unpacks it (checking each layer against the config's diff ids). umoci before 0.5
    // (Debian 12 has 0.4.7) knows no zstd media type: then it unpacks skopeo's gzip copy.
    let bundle = tmp.path().join("bundle");
    let direct = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    if !direct.status.success() {
        let err = text(&direct.stderr);
        assert!(
            err.contains("not correct mediatype: application/vnd.oci.image.layer.v1.tar+zstd"),
            "umoci failed for another reason than zstd support: {err}"
        );
        let _ = std::fs::remove_dir_all(&bundle);
        ok(Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest", plain.display()))
            .arg(&bundle));
    }
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    assert_eq!(
        std::fs::read(bundle.join("rootfs/data/mixed.bin")).unwrap(),
        layer_bytes(300_000)
    );

    // pallet imports its own zstd layout back: same diff ids, unpacked snapshots.
    let root2 = Root::open(&tmp.path().join("root2")).unwrap();
    let back =
        pallet::store::import_oci_layout(&root2, &layout, Some("latest"), "docker.io/library/x:1")
            .unwrap();
    assert_eq!(back.layers, diff_ids);
    let snap = pallet::store::snapshot_path(&root2, &diff_ids[1]);
    assert_eq!(
        std::fs::read(snap.join("data/mixed.bin")).unwrap(),
        layer_bytes(300_000)
    );
}

#[test]
fn zstd_layout_written_by_skopeo_is_imported() {
    if !require(
        "zstd import test",
        &[Root, Busybox, Tool("skopeo"), Tool("tar")],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (root, config, layers) = busybox_store(tmp.path());
    let opts = image_options(Compression::default(), MediaTypes::Oci);
    let img = docker::store_image(&root, &config, &layers, &opts).unwrap();
    let gzip_layout = tmp.path().join("gzip");
    let archive = ArchiveOptions {
        names: &opts.names,
        docker_manifest: false,
        mtime: 0,
    };
    docker::write_archive_dir(&root, &img, &archive, &gzip_layout).unwrap();
    let zstd_layout = tmp.path().join("zstd");
    skopeo(&[
        "copy",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{}:latest", gzip_layout.display()),
        &format!("oci:{}:latest", zstd_layout.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(zstd_layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(zstd_layout.join("blobs/sha256").join(&m[7..])).unwrap(),
    )
    .unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], MEDIA_OCI_ZSTD, "skopeo wrote {l}");
    }
    let root2 = Root::open(&tmp.path().join("root2")).unwrap();
    let back =
        pallet::store::import_oci_layout(&root2, &zstd_layout, None, "docker.io/library/y:1")
            .unwrap();
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    assert_eq!(back.layers, diff_ids);
    assert!(pallet::store::snapshot_path(&root2, &diff_ids[0])
        .join("bin/busybox")
        .is_file());
}

#[test]
fn docker_media_types_with_zstd_follow_buildkit() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, layer) = store_with_layer(tmp.path(), &layer_bytes(100_000));
    let config = br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#;
    for (c, oci, want) in [
        (Compression::Zstd { level: 3 }, false, MEDIA_DOCKER_ZSTD),
        (Compression::Zstd { level: 3 }, true, MEDIA_OCI_ZSTD),
        (
            Compression::Gzip { level: 1 },
            false,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        (
            Compression::Uncompressed,
            true,
            "application/vnd.oci.image.layer.v1.tar",
        ),
    ] {
        let types = if oci {
            MediaTypes::Oci
        } else {
            MediaTypes::Docker
        };
        let img = docker::store_image(
            &root,
            config,
            std::slice::from_ref(&layer),
            &image_options(c, types),
        )
        .unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&root.blobs.read(&img.blobs.manifest.digest).unwrap()).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], want, "{c} oci={oci}");
        assert_eq!(
            m["layers"][0]["digest"],
            img.blobs.layers[0].digest.as_str()
        );
    }
    // The shorthands the output parser uses mean the defaults.
    assert_eq!(
        docker::Compression::Gzip.layers(),
        Compression::Gzip {
            level: codec::DEFAULT_GZIP_LEVEL
        }
    );
    assert_eq!(
        docker::Compression::Uncompressed.layers(),
        Compression::Uncompressed
    );
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds this process used (all threads, user + system).
fn cpu_secs() -> f64 {
    // SAFETY: rusage is plain integers, for which all-zero bytes are a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// ~`limit` bytes of real files (binaries, libraries, text) from /usr as one tar layer.
fn usr_layer(root: &Root, limit: u64) -> LayerRecord {
    let mut w = root.blobs.writer().unwrap();
    {
        let mut tar = tar::Builder::new(&mut w);
        tar.follow_symlinks(false);
        let mut total = 0u64;
        let mut stack = vec![std::path::PathBuf::from("/usr")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let Ok(t) = e.file_type() else { continue };
                let p = e.path();
                if t.is_dir() {
                    stack.push(p);
                } else if t.is_file() && total < limit {
                    let Ok(mut f) = std::fs::File::open(&p) else {
                        continue;
                    };
                    let name = p.strip_prefix("/").unwrap();
                    if tar.append_file(name, &mut f).is_ok() {
                        total += e.metadata().map(|m| m.len()).unwrap_or(0);
                    }
                }
            }
        }
        tar.finish().unwrap();
    }
    let info = w.commit().unwrap();
    LayerRecord {
        diff_id: info.digest,
        size: info.size,
        created: None,
    }
}

#[test]
#[ignore = "measurement: cargo test --release -p pallet-builder --test suite compression::throughput -- --ignored --nocapture"]
fn throughput() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = Root::open(&tmp.path().join("root")).unwrap();
    let small = usr_layer(&root, 50 << 20);
    let layer = usr_layer(&root, 200 << 20);
    let mb = layer.size as f64 / 1e6;
    eprintln!(
        "layer: {mb:.0} MB of /usr files (and a {:.0} MB one)",
        small.size as f64 / 1e6
    );
    let rss0 = peak_rss_kib();
    for spec in [
        "zstd,level=1",
        "zstd",
        "zstd,level=9",
        "gzip,level=1",
        "gzip",
    ] {
        let c = Compression::parse(spec).unwrap();
        // The small layer first: the peak memory must not grow with the layer size.
        compress_layer(&root, &small, &c).unwrap();
        let rss_small = peak_rss_kib();
        let (t, cpu) = (std::time::Instant::now(), cpu_secs());
        let blob = compress_layer(&root, &layer, &c).unwrap();
        let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
        let rss_big = peak_rss_kib();
        let (t, dcpu) = (std::time::Instant::now(), cpu_secs());
        let n = std::io::copy(
            &mut decompressor(c.media_type(true), root.blobs.open(&blob.digest).unwrap()).unwrap(),
            &mut std::io::sink(),
        )
        .unwrap();
        let (dsecs, dcpu) = (t.elapsed().as_secs_f64(), cpu_secs() - dcpu);
        assert_eq!(n, layer.size);
        eprintln!(
            "{spec:>14}: compress {:6.1} MB/s wall, {:6.1} MB/CPU-s ({:5.1} s), ratio {:.3}; \
             decompress {:6.1} MB/s wall, {:6.1} MB/CPU-s; peak RSS after 50 MB {} MiB, \
             after 200 MB {} MiB (start {} MiB)",
            mb / secs,
            mb / cpu,
            secs,
            blob.size as f64 / layer.size as f64,
            mb / dsecs,
            mb / dcpu,
            rss_small / 1024,
            rss_big / 1024,
            rss0 / 1024,
        );
    }
    // zstd -3 on one thread (what compress_layer would do without libzstd's workers), into the
    // store the same way (hashing the output).
    let (t, cpu) = (std::time::Instant::now(), cpu_secs());
    let mut z = zstd::stream::write::Encoder::new(root.blobs.writer().unwrap(), 3).unwrap();
    std::io::copy(&mut root.blobs.open(&layer.diff_id).unwrap(), &mut z).unwrap();
    z.finish().unwrap().commit().unwrap();
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
    eprintln!(
        "zstd 1 thread : compress {:6.1} MB/s wall, {:6.1} MB/CPU-s",
        mb / secs,
        mb / cpu
    );
}
