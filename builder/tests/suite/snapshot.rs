//! Layers and snapshots on real files: write_layer / unpack_layer round trips, determinism,
//! mtime clamping, overlayfs upper dirs (real mounts, needs root), GNU tar interop, and layers
//! built to escape their destination.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use pallet::snapshot::{
    unpack_layer, write_layer, LayerStats, Privilege, UnpackError, UnpackOptions, WriteOptions,
};
use tempfile::TempDir;
use testkit::gate::is_root;
use testkit::run::ok as run;
use testkit::self_exec;
use testkit::tree::exact::{assert_same_nodes, assert_same_tree, scan};

const Y2000: i64 = 946_684_800;
const PLAIN: UnpackOptions = UnpackOptions {
    overlay_whiteouts: false,
    same_owner: true,
    privilege: Privilege::Root,
};
const OVERLAY: UnpackOptions = UnpackOptions {
    overlay_whiteouts: true,
    same_owner: true,
    privilege: Privilege::Root,
};

// ---------------------------------------------------------------------------------------------
// Helpers

fn layer(dir: &Path, opts: &WriteOptions) -> (Vec<u8>, LayerStats) {
    let mut out = Vec::new();
    let stats = write_layer(dir, &mut out, opts).expect("write_layer");
    (out, stats)
}

fn unpack(bytes: &[u8], dest: &Path, opts: &UnpackOptions) -> Result<u64, UnpackError> {
    unpack_layer(&mut &bytes[..], dest, opts)
}

fn assert_err<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>, text: &str) {
    let err = result.unwrap_err().to_string();
    assert!(err.contains(text), "{err:?} should say {text:?}");
}

/// Copies a tree with everything (`cp -a`).
fn copy_tree(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from.join(".")).arg(to));
}

/// Creates the named directories under `root`.
fn dirs<const N: usize>(root: &Path, names: [&str; N]) -> [PathBuf; N] {
    names.map(|name| {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn opaque(dir: &Path) -> Option<Vec<u8>> {
    xattr::get(dir, "trusted.overlay.opaque").unwrap()
}

/// (path, type byte, mode, uid, gid, mtime, link, pax records) of each entry, in order.
#[derive(Debug, Clone)]
struct Listed {
    path: String,
    kind: u8,
    mode: u32,
    uid: u64,
    mtime: u64,
    link: Option<String>,
    pax: Vec<String>,
    uname: Vec<u8>,
}

fn list(bytes: &[u8]) -> Vec<Listed> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        // The tar crate splits PAX records at '\n', so binary xattr values read as malformed.
        let pax = match e.pax_extensions().unwrap() {
            Some(p) => p
                .filter_map(Result::ok)
                .map(|r| r.key().unwrap().to_owned())
                .collect(),
            None => Vec::new(),
        };
        let h = e.header();
        out.push(Listed {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            mtime: h.mtime().unwrap(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            pax,
            uname: h.username_bytes().unwrap_or_default().to_vec(),
        });
    }
    out
}

fn paths(bytes: &[u8]) -> Vec<String> {
    list(bytes).into_iter().map(|e| e.path).collect()
}

fn set_mtime(path: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 0);
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

fn mkfifo(path: &Path, mode: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), mode) }, 0);
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// security.capability for cap_net_bind_service+ep (vfs_cap_data revision 2).
fn capability() -> Vec<u8> {
    let mut v = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

/// A tree with every kind of entry a layer carries, in the given creation order of the
/// top-level files (so two builds differ in inode order, not in content).
fn build_tree(root: &Path, reverse: bool) {
    let mut steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            fs::create_dir_all(root.join("bin")).unwrap();
            fs::write(root.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
            fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
            fs::hard_link(root.join("bin/tool"), root.join("bin/tool-again")).unwrap();
            xattr::set(root.join("bin/tool"), "security.capability", &capability()).unwrap();
        }),
        Box::new(|| {
            fs::create_dir_all(root.join("etc")).unwrap();
            fs::write(root.join("etc/conf"), b"key=value\n").unwrap();
            xattr::set(root.join("etc/conf"), "user.test", b"hello").unwrap();
            // Binary values and odd names: PAX records must be split by length, not at '\n'.
            fs::write(root.join("etc/new\nline"), b"").unwrap();
            xattr::set(root.join("etc/new\nline"), "user.bin", b"a\nb\0\xff").unwrap();
            set_mtime(&root.join("etc/conf"), Y2000);
            symlink("conf", root.join("etc/conf.link")).unwrap();
            symlink("/nonexistent/absolute", root.join("etc/dangling")).unwrap();
        }),
        Box::new(|| {
            mkfifo(&root.join("fifo"), 0o640);
            fs::create_dir(root.join("tmp")).unwrap();
            fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
            fs::create_dir(root.join("empty")).unwrap();
            fs::write(root.join("owned"), b"x").unwrap();
            std::os::unix::fs::chown(root.join("owned"), Some(1234), Some(5678)).unwrap();
            std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
        }),
        Box::new(|| {
            let deep = root.join("long").join("d".repeat(90)).join("e".repeat(90));
            fs::create_dir_all(&deep).unwrap();
            fs::write(deep.join("f".repeat(120)), vec![7u8; 70_000]).unwrap();
            symlink("t".repeat(150), root.join("long/link")).unwrap();
        }),
    ];
    if reverse {
        steps.reverse();
    }
    for step in &steps {
        step();
    }
    // Directory mtimes last: creating children changed them.
    for dir in ["bin", "etc", "tmp", "empty", "long"] {
        set_mtime(&root.join(dir), Y2000 + 60);
    }
}

// ---------------------------------------------------------------------------------------------
// Writing and reading back

#[test]
fn round_trip_preserves_everything() {
    assert!(is_root(), "needs root (owners, security.capability)");
    let src = TempDir::new().unwrap();
    build_tree(src.path(), false);
    let (bytes, stats) = layer(src.path(), &WriteOptions::default());

    let entries = list(&bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert!(names
        .iter()
        .all(|p| !p.starts_with('/') && !p.starts_with("./")));
    assert!(!names.contains(&"socket"), "sockets are skipped");
    assert!(
        entries.iter().all(|e| e.uname.is_empty()),
        "numeric owners only"
    );
    let show = |path: &str| {
        let e = entries.iter().find(|e| e.path == path).unwrap();
        let (kind, link) = (e.kind as char, e.link.as_deref().unwrap_or("-"));
        format!(
            "{kind} {:o} {} {} {link} {}",
            e.mode,
            e.uid,
            e.mtime,
            e.pax.join(",")
        )
    };
    let cap = "SCHILY.xattr.security.capability";
    assert!(show("bin/tool").starts_with("0 4755 0 "));
    assert!(show("bin/tool").ends_with(&format!(" - {cap}")));
    assert!(show("bin/tool-again").starts_with("1 4755 0 "));
    assert!(show("bin/tool-again").ends_with(&format!(" bin/tool {cap}")));
    assert_eq!(
        show("etc/conf"),
        "0 644 0 946684800 - SCHILY.xattr.user.test"
    );
    assert_eq!(show("tmp/"), "5 1777 0 946684860 - ");
    assert!(show("owned").starts_with("0 644 1234 "));
    assert!(show("fifo").starts_with("6 640 0 "));
    assert!(show("long/link").ends_with(&format!(" {} linkpath", "t".repeat(150))));
    assert_eq!(stats.entries, entries.len() as u64);
    assert_eq!(stats.content_bytes, 20 + 10 + 1 + 70_000);

    let dest = TempDir::new().unwrap();
    let count = unpack(&bytes, dest.path(), &PLAIN).unwrap();
    assert_eq!(count, entries.len() as u64);
    assert_same_tree(src.path(), dest.path());
    let ino = |p: &str| fs::metadata(dest.path().join(p)).unwrap().ino();
    assert_eq!(ino("bin/tool"), ino("bin/tool-again"));

    // Unpacking onto the result again replaces every entry with an equal one.
    unpack(&bytes, dest.path(), &PLAIN).unwrap();
    assert_same_tree(src.path(), dest.path());
}

#[test]
fn same_tree_gives_same_bytes_in_walk_order() {
    let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    build_tree(a.path(), false);
    build_tree(b.path(), true);
    // A file whose name sorts between a directory and its children ('.' < '/').
    for root in [a.path(), b.path()] {
        fs::write(root.join("bin.txt"), b"").unwrap();
        set_mtime(&root.join("bin.txt"), Y2000);
    }
    let opts = WriteOptions {
        clamp_mtime: Some(Y2000 + 3600),
    };
    let (first, _) = layer(a.path(), &opts);
    assert_eq!(first, layer(a.path(), &opts).0, "same dir twice");
    assert_eq!(
        first,
        layer(b.path(), &opts).0,
        "same tree built in another order"
    );

    let long_dir = format!("long/{}/", "d".repeat(90));
    let long_file = format!("{long_dir}{}/{}", "e".repeat(90), "f".repeat(120));
    let expected = [
        "bin/",
        "bin/tool",
        "bin/tool-again",
        "bin.txt",
        "empty/",
        "etc/",
        "etc/conf",
        "etc/conf.link",
        "etc/dangling",
        "etc/new\nline",
        "fifo",
        "long/",
        &long_dir,
        &format!("{long_dir}{}/", "e".repeat(90)),
        &long_file,
        "long/link",
        "owned",
        "tmp/",
    ];
    assert_eq!(paths(&first), expected);
}

#[test]
fn clamp_limits_every_mtime() {
    let src = TempDir::new().unwrap();
    build_tree(src.path(), false);
    let epoch = 1_000_000_000; // 2001-09-09: after etc/conf, before everything created now.
    let opts = WriteOptions {
        clamp_mtime: Some(epoch),
    };
    let entries = list(&layer(src.path(), &opts).0);
    assert!(entries.iter().all(|e| e.mtime <= epoch as u64));
    let conf = entries.iter().find(|e| e.path == "etc/conf").unwrap();
    assert_eq!(conf.mtime, Y2000 as u64, "older mtimes are kept");
    assert!(entries
        .iter()
        .filter(|e| e.path == "fifo" || e.path == "owned")
        .all(|e| e.mtime == epoch as u64));
}

#[test]
fn gzip_is_detected_and_zstd_is_refused() {
    let src = TempDir::new().unwrap();
    build_tree(src.path(), false);
    let (bytes, _) = layer(src.path(), &WriteOptions::default());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    let dest = TempDir::new().unwrap();
    unpack(&gz, dest.path(), &PLAIN).unwrap();
    assert_same_tree(src.path(), dest.path());

    // Without same_owner, files belong to the caller.
    let mine = TempDir::new().unwrap();
    let opts = UnpackOptions {
        same_owner: false,
        ..PLAIN
    };
    unpack(&gz, mine.path(), &opts).unwrap();
    assert_eq!(fs::metadata(mine.path().join("owned")).unwrap().uid(), 0);

    let zstd = [0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0];
    assert_err(
        unpack(&zstd, dest.path(), &PLAIN),
        "zstd layers are not supported yet",
    );
    assert_eq!(unpack(&[], dest.path(), &PLAIN).unwrap(), 0, "empty");
}

/// An xattr value that looks like PAX records when split at newlines must stay a value: the
/// entry keeps its name (GNU tar agrees) and the value comes back byte for byte.
#[test]
fn xattr_values_cannot_forge_pax_records() {
    let src = TempDir::new().unwrap();
    let value = b"\n9 path=x\n16 size=99999999\n";
    fs::write(src.path().join("real-name"), b"content").unwrap();
    xattr::set(src.path().join("real-name"), "user.forged", value).unwrap();
    let (bytes, _) = layer(src.path(), &WriteOptions::default());

    let dest = TempDir::new().unwrap();
    unpack(&bytes, dest.path(), &PLAIN).unwrap();
    assert_eq!(fs::read(dest.path().join("real-name")).unwrap(), b"content");
    let restored = xattr::get(dest.path().join("real-name"), "user.forged").unwrap();
    assert_eq!(restored.as_deref(), Some(&value[..]));
    assert!(!dest.path().join("x").exists());

    let tar_path = src.path().join("forged.tar");
    fs::write(&tar_path, &bytes).unwrap();
    assert_eq!(
        run(Command::new("tar").arg("-tf").arg(&tar_path)),
        "real-name\n"
    );
}

fn vm_hwm_kb() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs in a child process of its own (peak RSS is per process, and other tests run in
/// parallel threads): writes and unpacks a 256 MB file with the peak growing well below that.
#[test]
fn large_files_stream_in_constant_memory() {
    const SIZE: u64 = 256 << 20;
    if std::env::var_os("PALLET_SNAPSHOT_STREAM_CHILD").is_none() {
        let child = self_exec::test(module_path!(), "large_files_stream_in_constant_memory")
            .env("PALLET_SNAPSHOT_STREAM_CHILD", "1")
            .output()
            .unwrap();
        self_exec::assert_passed(&child, "large_files_stream_in_constant_memory");
        return;
    }
    let src = TempDir::new().unwrap();
    let big = fs::File::create(src.path().join("big")).unwrap();
    big.set_len(SIZE).unwrap();
    let layer_dir = TempDir::new().unwrap();
    let layer_path = layer_dir.path().join("layer.tar");
    let before = vm_hwm_kb();
    let mut out = std::io::BufWriter::new(fs::File::create(&layer_path).unwrap());
    let stats = write_layer(src.path(), &mut out, &WriteOptions::default()).unwrap();
    out.flush().unwrap();
    assert_eq!(stats.content_bytes, SIZE);
    let dest = TempDir::new().unwrap();
    let mut input = fs::File::open(&layer_path).unwrap();
    unpack_layer(&mut input, dest.path(), &PLAIN).unwrap();
    assert_eq!(fs::metadata(dest.path().join("big")).unwrap().len(), SIZE);
    let grown_mb = (vm_hwm_kb() - before) / 1024;
    assert!(
        grown_mb < 16,
        "peak RSS grew {grown_mb} MB for a {} MB file",
        SIZE >> 20
    );
}

// ---------------------------------------------------------------------------------------------
// GNU tar

#[test]
fn gnu_tar_lists_and_extracts_our_layers() {
    let src = TempDir::new().unwrap();
    build_tree(src.path(), false);
    let dir = TempDir::new().unwrap();
    let tar_path = dir.path().join("layer.tar");
    fs::write(&tar_path, layer(src.path(), &WriteOptions::default()).0).unwrap();

    let listed = Command::new("tar")
        .arg("-tvf")
        .arg(&tar_path)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&listed.stdout), &listed.stderr);
    assert!(listed.status.success() && stderr.is_empty(), "{stderr:?}");
    assert!(stdout.contains("-rwsr-xr-x 0/0 "), "{stdout}");
    assert!(
        stdout.contains("bin/tool-again link to bin/tool"),
        "{stdout}"
    );

    let [dest] = dirs(dir.path(), ["x"]);
    let flags = [
        "--numeric-owner",
        "--same-owner",
        "-p",
        "--xattrs",
        "--xattrs-include=*",
    ];
    run(Command::new("tar")
        .args(flags)
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(&dest));
    assert_same_tree(src.path(), &dest);
}

#[test]
fn layers_made_by_gnu_tar_unpack() {
    let src = TempDir::new().unwrap();
    build_tree(src.path(), false);
    let dir = TempDir::new().unwrap();
    let tar_path = dir.path().join("gnu.tar");
    // GNU format (the default; GNU long names, no xattrs) and POSIX (PAX records, xattrs).
    for (format, xattrs) in [
        ("--format=gnu", "--no-xattrs"),
        ("--format=posix", "--xattrs-include=*"),
    ] {
        let flags = ["--numeric-owner", "--xattrs", xattrs, format, "-cf"];
        run(Command::new("tar")
            .args(flags)
            .arg(&tar_path)
            .arg("-C")
            .arg(src.path())
            .arg("."));
        let dest = TempDir::new().unwrap();
        unpack_layer(&mut fs::File::open(&tar_path).unwrap(), dest.path(), &PLAIN).unwrap();
        let (mut want, mut got) = (scan(src.path()), scan(dest.path()));
        if xattrs == "--no-xattrs" {
            want.values_mut()
                .chain(got.values_mut())
                .for_each(|n| n.xattrs.clear());
        }
        assert_same_nodes(want, got);
    }
}

// ---------------------------------------------------------------------------------------------
// overlayfs

struct Mount(PathBuf);

impl Mount {
    fn overlay(options: &str, target: &Path) -> Mount {
        run(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", options])
            .arg(target));
        Mount(target.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn overlay_upper_dir_becomes_a_layer_and_back() {
    assert!(is_root(), "overlay mounts need root");
    let t = TempDir::new().unwrap();
    let names = [
        "lower", "upper", "work", "merged", "expected", "plain", "snap", "stacked",
    ];
    let [lower, upper, work, merged, expected, plain, snap, stacked] = dirs(t.path(), names);
    fs::write(lower.join("keep"), b"keep").unwrap();
    fs::write(lower.join("deleted"), b"gone").unwrap();
    fs::create_dir_all(lower.join("dir/sub")).unwrap();
    fs::write(lower.join("dir/a"), b"a").unwrap();
    fs::write(lower.join("dir/sub/b"), b"b").unwrap();
    fs::create_dir(lower.join("other")).unwrap();
    fs::write(lower.join("other/x"), b"x").unwrap();

    {
        let (l, u, w) = (lower.display(), upper.display(), work.display());
        let _m = Mount::overlay(&format!("lowerdir={l},upperdir={u},workdir={w}"), &merged);
        fs::remove_file(merged.join("deleted")).unwrap();
        fs::remove_dir_all(merged.join("dir")).unwrap();
        fs::create_dir(merged.join("dir")).unwrap();
        fs::write(merged.join("dir/new"), b"new").unwrap();
        fs::write(merged.join("added"), b"added").unwrap();
        fs::write(merged.join("other/y"), b"y").unwrap();
        copy_tree(&merged, &expected);
    }

    let (bytes, _) = layer(&upper, &WriteOptions::default());
    // BuildKit's order: the upper dir's names sorted, a whiteout where the deleted name was.
    let want = "added .wh.deleted dir/ dir/.wh..wh..opq dir/new other/ other/y";
    assert_eq!(paths(&bytes).join(" "), want);
    let whiteout = &list(&bytes)[1];
    assert_eq!((whiteout.kind, whiteout.mode, whiteout.mtime), (b'0', 0, 0));

    // Applied onto a plain copy of the lower dir: the merged view.
    copy_tree(&lower, &plain);
    unpack(&bytes, &plain, &PLAIN).unwrap();
    assert_same_tree(&expected, &plain);

    // Unpacked as a snapshot and stacked on the lower dir: the merged view again.
    unpack(&bytes, &snap, &OVERLAY).unwrap();
    let wh = fs::symlink_metadata(snap.join("deleted")).unwrap();
    assert_eq!((wh.mode() & libc::S_IFMT, wh.rdev()), (libc::S_IFCHR, 0));
    assert_eq!(opaque(&snap.join("dir")).as_deref(), Some(&b"y"[..]));
    {
        let (s, l) = (snap.display(), lower.display());
        let _m = Mount::overlay(&format!("lowerdir={s}:{l}"), &stacked);
        assert_same_tree(&expected, &stacked);
    }
    // And a snapshot writes back the very same layer.
    assert_eq!(layer(&snap, &WriteOptions::default()).0, bytes);
}

#[test]
fn overlay_metacopy_upper_is_refused() {
    assert!(is_root(), "overlay mounts need root");
    let t = TempDir::new().unwrap();
    let [lower, upper, work, merged] = dirs(t.path(), ["lower", "upper", "work", "merged"]);
    fs::write(lower.join("f"), b"data lives in the lower dir").unwrap();
    {
        let (l, u, w) = (lower.display(), upper.display(), work.display());
        let opts = format!("lowerdir={l},upperdir={u},workdir={w},redirect_dir=on,metacopy=on");
        let _m = Mount::overlay(&opts, &merged);
        fs::set_permissions(merged.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_err(
        write_layer(&upper, &mut Vec::new(), &WriteOptions::default()),
        "metacopy",
    );
}

// ---------------------------------------------------------------------------------------------
// Layers that try to escape

/// A raw tar entry: names are written as bytes, unchecked; uid, gid and device fields are left
/// blank (NUL), as some tools write them.
fn raw(out: &mut Vec<u8>, path: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    let old = h.as_old_mut();
    old.name[..path.len()].copy_from_slice(path.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_entry_type(kind);
    h.set_mtime(Y2000 as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

use tar::EntryType::{Directory as DIR, Link as LINK, Regular as FILE, Symlink as SYMLINK};

/// A parent dir holding `dest/` plus whatever the test plants outside.
struct Jail {
    parent: TempDir,
}

impl Jail {
    fn new() -> Jail {
        let parent = TempDir::new().unwrap();
        fs::create_dir(parent.path().join("dest")).unwrap();
        fs::write(parent.path().join("victim"), b"precious").unwrap();
        fs::create_dir(parent.path().join("outside")).unwrap();
        Jail { parent }
    }
    fn dest(&self) -> PathBuf {
        self.parent.path().join("dest")
    }
    fn outside(&self) -> String {
        self.parent.path().join("outside").display().to_string()
    }
    fn unpack(
        &self,
        entries: &[(&str, tar::EntryType, &str)],
        opts: &UnpackOptions,
    ) -> Result<u64, UnpackError> {
        let mut bytes = Vec::new();
        for &(path, kind, link) in entries {
            let data: &[u8] = if kind == FILE { b"evil" } else { b"" };
            raw(&mut bytes, path, kind, link, data);
        }
        bytes.extend_from_slice(&[0; 1024]);
        unpack(&bytes, &self.dest(), opts)
    }
    /// Asserts the layer is refused as unsafe, naming its last entry.
    fn refuses(&self, entries: &[(&str, tar::EntryType, &str)], opts: &UnpackOptions) {
        let last = entries.last().unwrap().0;
        match self.unpack(entries, opts) {
            Err(UnpackError::Unsafe { entry, reason }) => assert_eq!(entry, last, "{reason}"),
            other => panic!("expected {last} to be refused, got {other:?}"),
        }
    }
    /// Nothing outside dest changed: only dest, victim (intact) and an empty outside/.
    fn assert_untouched(&self) {
        let listing = |dir: &Path| {
            let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name());
            let mut names: Vec<_> = names.map(|n| n.into_string().unwrap()).collect();
            names.sort();
            names.join(" ")
        };
        let (parent, victim) = (self.parent.path(), self.parent.path().join("victim"));
        assert_eq!(listing(parent), "dest outside victim");
        assert_eq!(listing(&parent.join("outside")), "");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1);
    }
}

#[test]
fn dotdot_is_refused() {
    let jail = Jail::new();
    jail.refuses(&[("../evil", FILE, "")], &PLAIN);
    jail.refuses(&[("a/../../evil", FILE, "")], &PLAIN);
    jail.refuses(&[("../victim", FILE, "")], &OVERLAY);
    jail.assert_untouched();
}

#[test]
fn absolute_names_land_inside_dest() {
    let jail = Jail::new();
    let name = format!("/pallet-snapshot-test-{}/path", std::process::id());
    jail.unpack(&[(&name, FILE, "")], &PLAIN).unwrap();
    assert!(!Path::new(&name).exists());
    assert_eq!(fs::read(jail.dest().join(&name[1..])).unwrap(), b"evil");
    jail.assert_untouched();
}

#[test]
fn symlink_to_absolute_path_is_not_followed() {
    let jail = Jail::new();
    let outside = jail.outside();
    let entries = [("a", SYMLINK, outside.as_str()), ("a/file", FILE, "")];
    jail.refuses(&entries, &PLAIN);
    assert_eq!(
        fs::read_link(jail.dest().join("a")).unwrap(),
        Path::new(&jail.outside())
    );
    // Also not when the symlink is deeper and the entry is a directory.
    let entries = [
        ("d/", DIR, ""),
        ("d/s", SYMLINK, "/"),
        ("d/s/etc/", DIR, ""),
    ];
    jail.refuses(&entries, &OVERLAY);
    jail.assert_untouched();
}

#[test]
fn relative_symlink_out_is_not_followed() {
    let jail = Jail::new();
    jail.refuses(&[("a", SYMLINK, "../.."), ("a/x", FILE, "")], &PLAIN);
    jail.refuses(&[("b", SYMLINK, ".."), ("b/victim", FILE, "")], &OVERLAY);
    jail.assert_untouched();
}

#[test]
fn file_over_symlink_replaces_the_link() {
    let jail = Jail::new();
    let victim = jail.parent.path().join("victim").display().to_string();
    jail.unpack(&[("v", SYMLINK, &victim), ("v", FILE, "")], &PLAIN)
        .unwrap();
    assert!(fs::symlink_metadata(jail.dest().join("v"))
        .unwrap()
        .is_file());
    jail.unpack(&[("o", SYMLINK, &jail.outside()), ("o/", DIR, "")], &PLAIN)
        .unwrap();
    assert!(fs::symlink_metadata(jail.dest().join("o"))
        .unwrap()
        .is_dir());
    jail.assert_untouched();
}

#[test]
fn hardlinks_out_of_dest_are_refused() {
    let jail = Jail::new();
    // "/etc/passwd" means dest/etc/passwd, which does not exist.
    let err = jail
        .unpack(&[("passwd", LINK, "/etc/passwd")], &PLAIN)
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!jail.dest().join("passwd").exists());
    jail.refuses(&[("v", LINK, "../victim")], &PLAIN);
    jail.refuses(&[("s", SYMLINK, ".."), ("v", LINK, "s/victim")], &PLAIN);
    // A link inside dest is fine, including to an absolute-looking name.
    jail.unpack(
        &[
            ("etc/", DIR, ""),
            ("etc/passwd", FILE, ""),
            ("p", LINK, "/etc/passwd"),
        ],
        &PLAIN,
    )
    .unwrap();
    assert_eq!(fs::metadata(jail.dest().join("p")).unwrap().nlink(), 2);
    jail.assert_untouched();
}

#[test]
fn whiteouts_cannot_reach_outside() {
    let jail = Jail::new();
    for opts in [&PLAIN, &OVERLAY] {
        jail.refuses(&[("../.wh.victim", FILE, "")], opts);
        jail.refuses(&[(".wh...", FILE, "")], opts);
        jail.refuses(&[(".wh..", FILE, "")], opts);
        jail.refuses(&[("x/.wh...", FILE, "")], opts);
        let parent = jail.parent.path().display().to_string();
        jail.refuses(&[("a", SYMLINK, &parent), ("a/.wh.victim", FILE, "")], opts);
        jail.refuses(&[("b", SYMLINK, ".."), ("b/.wh..wh..opq", FILE, "")], opts);
    }
    jail.assert_untouched();
}

#[test]
fn whiteouts_remove_lower_files_but_not_this_layers() {
    let jail = Jail::new();
    let dest = jail.dest();
    fs::create_dir_all(dest.join("d/sub")).unwrap();
    fs::write(dest.join("d/sub/old"), b"").unwrap();
    fs::write(dest.join("gone"), b"").unwrap();
    let entries = [
        (".wh.gone", FILE, ""),
        ("d/sub/kept", FILE, ""),
        ("d/.wh..wh..opq", FILE, ""),
        ("new", FILE, ""),
        (".wh.new", FILE, ""),
    ];
    jail.unpack(&entries, &PLAIN).unwrap();
    let tree: Vec<_> = scan(&dest).into_keys().collect();
    assert_eq!(tree, ["d", "d/sub", "d/sub/kept", "new"]);
    jail.assert_untouched();
}

#[test]
fn directory_over_a_whiteout_is_opaque_in_a_snapshot() {
    let jail = Jail::new();
    jail.unpack(&[(".wh.d", FILE, ""), ("d/", DIR, "")], &OVERLAY)
        .unwrap();
    let opaque = xattr::get(jail.dest().join("d"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    jail.assert_untouched();
}

/// A PAX record with its length prefix.
fn pax(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let len = (1..)
        .map(|d| body + d)
        .find(|n| n.to_string().len() == n - body)
        .unwrap();
    format!("{len} {key}={value}\n").into_bytes()
}

#[test]
fn corrupt_layers_are_errors_not_panics() {
    let src = TempDir::new().unwrap();
    fs::write(src.path().join("f"), vec![1u8; 5000]).unwrap();
    let (bytes, _) = layer(src.path(), &WriteOptions::default());
    let dest = TempDir::new().unwrap();

    let err = unpack(&bytes[..512 + 1000], dest.path(), &PLAIN).unwrap_err();
    assert!(
        err.to_string().contains("\"f\"") && err.to_string().contains("truncated"),
        "{err}"
    );
    let mut bad = bytes.clone();
    bad[0] ^= 1;
    let err = unpack(&bad, dest.path(), &PLAIN).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");

    let with_pax = |records: &[u8]| {
        let mut tar = Vec::new();
        raw(
            &mut tar,
            "PaxHeaders.0/g",
            tar::EntryType::XHeader,
            "",
            records,
        );
        raw(&mut tar, "g", FILE, "", b"evil");
        tar.extend_from_slice(&[0; 1024]);
        unpack(&tar, dest.path(), &PLAIN)
    };
    let err = with_pax(&pax("size", &u64::MAX.to_string())).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = with_pax(b"99 path=g\n").unwrap_err();
    assert!(err.to_string().contains("malformed PAX record"), "{err}");
    // Times the filesystem cannot store are clamped by the kernel, not a panic.
    with_pax(&pax("mtime", &i64::MAX.to_string())).unwrap();
    with_pax(&pax("mtime", "-1.5")).unwrap();
    let g = fs::metadata(dest.path().join("g")).unwrap();
    assert_eq!((g.mtime(), g.mtime_nsec()), (-2, 500_000_000));
}
