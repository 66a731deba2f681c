//! A full disk (issue 13, "Faults"): the store on a small loop-mounted ext4 (64 MB), filled
//! but for a few MB by a file beside it, and a command that writes more than fits:
//!
//! - a RUN step that writes more than fits (ENOSPC inside the container);
//! - a RUN whose output fits, but not its layer blob as well (ENOSPC in pallet's own writes);
//! - an export whose archive does not fit;
//! - a pull whose layer does not fit.
//!
//! Each fails with an error that says the disk is full (No space left on device) and names the
//! step or the path; the failed command leaves no pending snapshot, step dir or temp blob
//! behind; and once the filler is removed the store is usable: a small build succeeds, `pallet
//! images` and `pallet du` work, `pallet doctor` is healthy and every blob verifies. The loop
//! device is unmounted and detached in every case (a Drop guard), which the test checks.
//!
//! Needs root, runc, busybox-static, mkfs.ext4, losetup, fallocate and docker-registry; fails
//! under CI=true without them.

use super::faults_kit::{figure, mounts_under, noise, temporaries, verify_store};
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::docker_registry::{Config, Registry};
use testkit::files::{context, temp_dir, TempDir};
use testkit::run::ok;
use testkit::{pallet, require, text, Need::*, Pallet};

/// A small ext4 in a file, loop-mounted; unmounted (with whatever is mounted below it) and its
/// loop device detached on drop.
struct LoopFs {
    dir: TempDir,
    image: PathBuf,
    mount: PathBuf,
}

impl LoopFs {
    fn new(megabytes: u64) -> LoopFs {
        let dir = temp_dir("pallet-faults-disk");
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        ok(Command::new("truncate")
            .arg("-s")
            .arg(format!("{megabytes}M"))
            .arg(&image));
        // No blocks reserved for root: the test runs as root and would use them.
        ok(Command::new("mkfs.ext4")
            .args(["-q", "-m", "0"])
            .arg(&image));
        let fs = LoopFs { dir, image, mount };
        ok(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&fs.image)
            .arg(&fs.mount));
        fs
    }

    /// Bytes free to write.
    fn free(&self) -> u64 {
        let path = std::ffi::CString::new(self.mount.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a zeroed statvfs is a valid value to be filled in; the path is
        // NUL-terminated and both pointers are valid for the call.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(path.as_ptr(), &mut st), 0);
            st.f_bavail as u64 * st.f_frsize as u64
        }
    }

    /// Fills the disk with a file beside the store until `leave` bytes are free.
    fn fill(&self, leave: u64) {
        let filler = self.filler();
        let _ = std::fs::remove_file(&filler);
        let size = self.free().saturating_sub(leave);
        ok(Command::new("fallocate")
            .args(["-l", &size.to_string()])
            .arg(&filler));
    }

    /// Frees the space the filler took.
    fn unfill(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }

    /// The loop devices backed by the image.
    fn devices(&self) -> Vec<String> {
        loop_devices_of(&self.image)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // Whatever a failed run left mounted below the store goes first, deepest first.
        let quiet = |args: &[&std::ffi::OsStr]| {
            Command::new("umount")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mount = self.mount.display().to_string();
        let mut below: Vec<String> = mounts_under(&self.mount)
            .into_iter()
            .filter(|m| *m != mount)
            .collect();
        below.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in below {
            quiet(&["-l".as_ref(), m.as_ref()]);
        }
        // pallet's settle helper (a syncfs after each command) may hold the filesystem for a
        // moment after the command ended: a lazy unmount then would leave the loop device
        // attached until it exits, so wait for it first (at most 10 s).
        let unmounted = testkit::wait::until(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(100),
            || quiet(&[self.mount.as_ref()]),
        );
        if !unmounted {
            quiet(&["-l".as_ref(), self.mount.as_ref()]);
        }
        if let Ok(out) = Command::new("losetup").arg("-j").arg(&self.image).output() {
            for line in text(&out.stdout).lines() {
                if let Some(dev) = line.split(':').next() {
                    let _ = Command::new("losetup").args(["-d", dev]).status();
                }
            }
        }
    }
}

/// The lines of `losetup -a` that name `image` (works when the file is gone too).
fn loop_devices_of(image: &Path) -> Vec<String> {
    let all = ok(Command::new("losetup").arg("-a"));
    let name = image.display().to_string();
    all.lines()
        .filter(|l| l.contains(&name))
        .map(str::to_string)
        .collect()
}

/// What every failed command must show: the disk named full, and `names` (the step or a
/// path) in the error; nothing of it left in the store.
fn assert_full(case: &str, out: &std::process::Output, names: &[&str], root: &Path) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{case}: succeeded:\n{stderr}");
    let error: String = stderr
        .lines()
        .skip_while(|l| !l.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("\n");
    let says_full = ["No space left on device", "disk is full", "no space left"]
        .iter()
        .any(|w| error.to_lowercase().contains(&w.to_lowercase()));
    assert!(
        says_full,
        "{case}: the error does not say the disk is full:\n{stderr}"
    );
    assert!(
        names.iter().any(|n| error.contains(n)),
        "{case}: the error names none of {names:?}:\n{stderr}"
    );
    assert_eq!(
        temporaries(root),
        Vec::<String>::new(),
        "{case}: left behind"
    );
    figure(&format!("full disk, {case}: {error}"));
}

/// With the filler gone: a small build, `images`, `du`, `doctor` and the blob check.
fn assert_usable(case: &str, pallet: &Pallet, root: &Path, ctx: &Path) {
    let out = pallet
        .clone()
        .args(["build", "-t", "small:ok"])
        .arg(ctx)
        .output();
    assert!(
        out.status.success(),
        "{case}: a small build after space was freed:\n{}",
        text(&out.stderr)
    );
    let said = text(&out.stderr);
    assert!(
        !said.contains("leftover"),
        "{case}: the failed command left something the next one swept:\n{said}"
    );
    let listed = pallet.clone().arg("images").ok();
    assert!(listed.contains("small:ok"), "{case}: {listed}");
    pallet.clone().arg("du").succeeds();
    verify_store(pallet, root).unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(temporaries(root), Vec::<String>::new(), "{case}");
    assert_eq!(mounts_under(root), Vec::<String>::new(), "{case}");
}

#[test]
fn a_full_disk_fails_clearly_and_the_store_is_usable_after_space_is_freed() {
    if !require(
        "full-disk test",
        &[
            Root,
            Busybox,
            Tool("runc"),
            Tool("mkfs.ext4"),
            Tool("losetup"),
            Tool("fallocate"),
            Tool("docker-registry"),
        ],
    ) {
        return;
    }
    let Some(reg) = Registry::start(Config::plain()) else {
        return;
    };
    let work = temp_dir("pallet-faults-disk-work");
    let disk = LoopFs::new(64);
    let device = disk.devices();
    assert!(
        !device.is_empty() && !mounts_under(disk.dir.path()).is_empty(),
        "the loop device is not seen while mounted"
    );
    let root = disk.mount.join("root");
    let pallet = pallet!()
        .root(&root)
        .env("DOCKER_CONFIG", work.path().join("docker"))
        .env("PALLET_CONFIG", work.path().join("pallet-config.json"));
    std::fs::write(work.path().join("pallet-config.json"), "{}").unwrap();
    testkit::store::import_busybox(&pallet, &testkit::busybox::Rootfs::new());
    let small = context(
        &work.path().join("small"),
        "FROM busybox\nRUN echo small > /small\n",
        &[],
    );
    let mb = 1_000_000u64;
    let mut cases = 0;

    // A RUN step that writes more than fits: the container's own write fails (dd says why).
    disk.fill(16 * mb);
    let ctx = context(
        &work.path().join("run-too-big"),
        "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1000000 count=40\n",
        &[],
    );
    let out = pallet
        .clone()
        .args(["build", "--progress", "plain"])
        .arg(&ctx)
        .output();
    assert_full("RUN writes 40 MB", &out, &["RUN dd if=/dev/zero"], &root);
    disk.unfill();
    assert_usable("RUN writes 40 MB", &pallet, &root, &small);
    cases += 1;

    // A RUN whose 10 MB fit, but not its layer blob as well: pallet's own write fails.
    disk.fill(16 * mb);
    let ctx = context(
        &work.path().join("layer-too-big"),
        "FROM busybox\nRUN head -c 10000000 /dev/urandom > /data\n",
        &[],
    );
    let out = pallet
        .clone()
        .args(["build", "--progress", "plain"])
        .arg(&ctx)
        .output();
    let root_text = root.display().to_string();
    // The step whose layer did not fit is named (it was "[internal] writing layers").
    assert_full(
        "the layer blob of a 10 MB RUN",
        &out,
        &["[2/2] RUN head -c 10000000"],
        &root,
    );
    disk.unfill();
    assert_usable("the layer blob of a 10 MB RUN", &pallet, &root, &small);
    cases += 1;

    // An export whose archive does not fit (the image itself does).
    let ctx = context(
        &work.path().join("export"),
        "FROM busybox\nCOPY data /data\n",
        &[],
    );
    std::fs::write(ctx.join("data"), noise(5, 8 << 20)).unwrap();
    pallet
        .clone()
        .args(["build", "-t", "export:1"])
        .arg(&ctx)
        .succeeds();
    disk.fill(6 * mb);
    let dest = disk.mount.join("export.tar");
    let out = pallet
        .clone()
        .args(["build", "--progress", "plain", "-o"])
        .arg(format!(
            "type=oci,dest={},compression=uncompressed",
            dest.display()
        ))
        .arg(&ctx)
        .output();
    let dest_text = dest.display().to_string();
    assert_full("an 8 MB export", &out, &[&dest_text, &root_text], &root);
    assert!(
        !dest.exists(),
        "a half-written archive is left at {dest_text}"
    );
    disk.unfill();
    assert_usable("an 8 MB export", &pallet, &root, &small);
    cases += 1;

    // A pull whose layer does not fit.
    let source = work.path().join("source");
    let src = pallet!()
        .root(&source)
        .env("DOCKER_CONFIG", work.path().join("docker"))
        .env("PALLET_CONFIG", work.path().join("pallet-config.json"));
    testkit::store::import_busybox(&src, &testkit::busybox::Rootfs::new());
    let big = context(
        &work.path().join("pull"),
        "FROM busybox\nCOPY data /data\n",
        &[],
    );
    std::fs::write(big.join("data"), noise(6, 12 << 20)).unwrap();
    let image = format!("{}/disk/big:1", reg.host());
    src.clone()
        .args(["build", "-t", &image])
        .arg(&big)
        .succeeds();
    src.clone().args(["push", &image]).succeeds();
    disk.fill(6 * mb);
    let out = pallet
        .clone()
        .args(["pull", "--progress", "plain", &image])
        .output();
    assert_full("a 12 MB pull", &out, &[&root_text, "sha256:"], &root);
    let listed = pallet.clone().arg("images").ok();
    assert!(
        !listed.contains("disk/big"),
        "a failed pull is listed: {listed}"
    );
    disk.unfill();
    assert_usable("a 12 MB pull", &pallet, &root, &small);
    pallet.clone().args(["pull", &image]).succeeds();
    verify_store(&pallet, &root).unwrap();
    cases += 1;

    // The guard unmounts and detaches.
    let (image_file, mount) = (disk.image.clone(), disk.mount.clone());
    drop(disk);
    assert_eq!(mounts_under(&mount), Vec::<String>::new());
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&mount.display().to_string()),
        "{} is still mounted",
        mount.display()
    );
    assert_eq!(
        loop_devices_of(&image_file),
        Vec::<String>::new(),
        "the loop device is still attached"
    );
    figure(&format!(
        "full disk: {cases} of 4 cases failed clearly and left a usable store (RUN too big, \
         layer blob too big, export, pull)"
    ));
}
