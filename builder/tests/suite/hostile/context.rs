//! The build context and the Dockerfile's mounts: COPY through context symlinks and `..`, bind
//! and cache mounts that try to climb, WORKDIR /proc/self/fd (runc CVE-2024-21626), mount
//! targets through image symlinks (BuildKit CVE-2024-23652) and cache mounts holding symlinks.

use super::case;
use super::kit::*;
use std::os::unix::fs::symlink;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// The build context and the Dockerfile
// ---------------------------------------------------------------------------------------------

/// COPY sources resolve inside the context: a symlink to /etc/passwd is the context's own
/// etc/passwd, and symlinks or `..` that point out of it find nothing.
#[test]
fn copy_sources_stay_in_the_context() {
    if !can_run("hostile COPY sources") {
        return;
    }
    let arena = Arena::busybox();
    let ctx = arena.ctx();
    let out = arena.outside();
    testkit::files::write(&ctx.join("etc/passwd"), "ctx-passwd\n");
    symlink("/etc/passwd", ctx.join("passwd-link")).unwrap();
    symlink(out.join("secret"), ctx.join("secret-link")).unwrap();
    symlink(&out, ctx.join("outside-dir")).unwrap();
    symlink("../outside", ctx.join("outside-rel")).unwrap();
    let cases: Vec<(&str, &str, Want)> = vec![
        (
            "copy-context-symlink-etc-passwd",
            "COPY passwd-link /got\n",
            {
                let got = arena.out("0").join("got");
                Want::Succeeds(Box::new(move |_| {
                    assert_eq!(std::fs::read_to_string(&got).unwrap(), "ctx-passwd\n");
                }))
            },
        ),
        (
            "copy-context-symlink-outside",
            "COPY secret-link /got\n",
            fails(&["\"/secret-link\": not found"]),
        ),
        (
            "copy-dotdot-outside",
            "COPY ../outside/secret /got\n",
            fails(&["\"/outside/secret\": not found"]),
        ),
        (
            "copy-dotdot-outside",
            "COPY ../../../../outside /got/\n",
            fails(&["\"/outside\": not found"]),
        ),
        (
            "copy-symlinked-dir-outside",
            "COPY outside-dir/ /got/\n",
            fails(&["\"/outside-dir\": not found"]),
        ),
        (
            "copy-symlinked-dir-outside",
            "COPY outside-dir/secret /got\n",
            fails(&["\"/outside-dir/secret\": not found"]),
        ),
        (
            "copy-symlinked-dir-outside",
            "COPY outside-rel/secret /got\n",
            fails(&["\"/outside-rel/secret\": not found"]),
        ),
    ];
    for (n, (id, copy, want)) in cases.iter().enumerate() {
        let c = case(id);
        arena.dockerfile(&format!("FROM busybox\n{copy}"));
        let dest = format!("type=local,dest={}", arena.out(&n.to_string()).display());
        let ran = arena.build(&["-o", &dest]);
        judge(&arena, c, &ran, want);
    }
}

/// The names in `dir`, sorted, without `Dockerfile` (what a listing of the context shows).
fn context_names(dir: &Path) -> String {
    let mut names = testkit::files::list_dir(dir);
    names.sort();
    names.join("\n") + "\n"
}

/// Bind mounts of the context: `source=../` is the context root (BuildKit cleans the path)
/// and never its parent; `source=/,rw` (buildah CVE-2024-1753) is the context, never the
/// host's root, and its writes reach neither.
#[test]
fn bind_mounts_never_reach_above_the_context() {
    if !can_run("hostile bind mounts") {
        return;
    }
    let arena = Arena::busybox();
    let s = arena.sentinel();
    std::fs::write(arena.ctx().join("a.txt"), "a\n").unwrap();
    arena.dockerfile("FROM busybox\nRUN --mount=type=bind,source=../,target=/x ls /x > /listing\n");
    let dest = arena.out("dotdot");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(
        &arena,
        case("bind-source-dotdot"),
        &ran,
        &Want::Succeeds(Box::new(|_| {})),
    );
    assert_eq!(
        testkit::files::read(&dest.join("listing")),
        context_names(&arena.ctx())
    );

    arena.dockerfile(&format!(
        "FROM busybox\nRUN --mount=type=bind,source=/,target=/host,rw sh -c \
         'ls /host > /listing; echo pwned > /host/{s}; echo pwned > /host/a.txt; \
          cat /host/etc/shadow /host/../outside/secret > /read 2>/dev/null; true'\n"
    ));
    let listed = context_names(&arena.ctx());
    let dest = arena.out("root-rw");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(
        &arena,
        case("bind-source-root-rw"),
        &ran,
        &Want::Succeeds(Box::new(|_| {})),
    );
    assert_eq!(testkit::files::read(&dest.join("listing")), listed);
    assert_eq!(testkit::files::read(&dest.join("read")), "");
    // The writes went to a throwaway tree: the context is as it was.
    assert_eq!(testkit::files::read(&arena.ctx().join("a.txt")), "a\n");
    assert!(!arena.ctx().join(&s).exists());
}

/// Cache mount ids and sources cannot traverse (buildah CVE-2024-9675): an id is a name,
/// whatever its slashes and dots, and a `source=` path stays in the (empty or seeded) cache.
#[test]
fn cache_mount_ids_and_sources_cannot_traverse() {
    if !can_run("hostile cache mounts") {
        return;
    }
    let arena = Arena::busybox();
    let s = arena.sentinel();
    arena.dockerfile(&format!(
        "FROM busybox\n\
         RUN --mount=type=cache,id=../../outside,target=/c sh -c 'echo pwned > /c/{s}; echo x > /c/secret; ls -A /c > /c1'\n\
         RUN --mount=type=cache,id=../../../../../../../../etc,target=/c sh -c 'echo pwned > /c/{s}'\n\
         RUN --mount=type=cache,id=/tmp,target=/c sh -c 'echo pwned > /c/{s}'\n"
    ));
    let dest = arena.out("id");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    let c = case("cache-id-traversal");
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    // Where the writes went: caches under the store.
    let caches = find_named(&arena.root().join("cache-mounts"), &s);
    assert_eq!(caches.len(), 3, "{caches:?}");
    assert_eq!(
        testkit::files::read(&dest.join("c1")),
        format!("{s}\nsecret\n")
    );

    arena.dockerfile(&format!(
        "FROM busybox AS seed\nRUN echo seeded > /seedfile\n\
         FROM busybox\n\
         RUN --mount=type=cache,source=../../../../..,target=/c sh -c 'ls -A /c > /fresh; echo pwned > /c/{s}'\n\
         RUN --mount=type=cache,id=seeded,from=seed,source=../../../../..,target=/c sh -c 'ls -A /c > /seeded'\n"
    ));
    let dest = arena.out("source");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    let c = case("cache-source-traversal");
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    assert_eq!(testkit::files::read(&dest.join("fresh")), "");
    let seeded = testkit::files::read(&dest.join("seeded"));
    assert!(
        seeded.lines().any(|l| l == "seedfile") && seeded.lines().any(|l| l == "bin"),
        "{seeded}"
    );
    // The stage's root, not the host's.
    assert!(
        !seeded
            .lines()
            .any(|l| l == "work" || l == "boot" || l == "usr"),
        "{seeded}"
    );
}

/// runc CVE-2024-21626 ("Leaky Vessels"): a working directory of /proc/self/fd/N would be a
/// directory runc leaked from the host. The step must not start there, and whatever it runs
/// must not read the host's files through it; an ordinary step holds no fd to a host path.
#[test]
fn workdir_proc_self_fd_does_not_reach_the_host() {
    if !can_run("runc CVE-2024-21626") {
        return;
    }
    let c = case("workdir-proc-self-fd");
    let arena = Arena::busybox();
    let secret = arena.outside().join("secret");
    let up = format!("../../../../../../../..{}", secret.display());
    let mut printed = Vec::new();
    for fd in 3..=8 {
        arena.dockerfile(&format!(
            "FROM busybox\nWORKDIR /proc/self/fd/{fd}\nRUN cat {up}; cat {}; ls -la .\n",
            secret.display()
        ));
        let ran = arena.build(&[]);
        // runc refuses to start the process (or the cat finds nothing): never the secret.
        ran.failed_with(&[&format!("/proc/self/fd/{fd}")]);
        printed.push(ran);
    }
    // A plain step's open descriptors: pipes and the null device, never a host directory.
    arena.dockerfile("FROM busybox\nRUN ls -l /proc/self/fd/ | cat > /fds\n");
    let dest = arena.out("fds");
    let ran = arena.build(&[
        "--no-cache",
        "-o",
        &format!("type=local,dest={}", dest.display()),
    ]);
    ran.succeeded();
    let fds = testkit::files::read(&dest.join("fds"));
    for line in fds.lines().filter(|l| l.contains("->")) {
        let target = line.rsplit("-> ").next().unwrap();
        let fine = target.starts_with("pipe:")
            || target.starts_with("socket:")
            || target.starts_with("anon_inode:")
            || target == "/dev/null"
            || target.starts_with("/proc/");
        assert!(fine, "a step holds {target}:\n{fds}");
    }
    printed.push(ran);
    let refs: Vec<&Ran> = printed.iter().collect();
    arena.assert_confined(c, &refs);
}

/// runc CVE-2024-21626 through `pallet run -w`.
#[test]
fn run_workdir_proc_self_fd_does_not_reach_the_host() {
    if !can_run("runc CVE-2024-21626 in pallet run") {
        return;
    }
    let c = case("run-workdir-proc-self-fd");
    let arena = Arena::busybox();
    let secret = arena.outside().join("secret");
    let up = format!("../../../../../../../..{}", secret.display());
    let mut printed = Vec::new();
    for fd in 3..=8 {
        let ran = run(&arena.pallet().args([
            "run",
            "-w",
            &format!("/proc/self/fd/{fd}"),
            "busybox",
            "cat",
            &up,
        ]));
        assert_ne!(ran.code, Some(0), "{}", ran.show());
        assert!(
            ran.code.is_some() && ran.code != Some(101),
            "{}",
            ran.show()
        );
        printed.push(ran);
    }
    let refs: Vec<&Ran> = printed.iter().collect();
    arena.assert_confined(c, &refs);
}

/// BuildKit CVE-2024-23652: a mount whose target runs through a symlink in the image that
/// points at a host path. The mount points are made, and removed after the step, inside the
/// container's root: the host path is untouched.
#[test]
fn a_mount_target_through_an_image_symlink_leaves_the_host_alone() {
    if !can_run("BuildKit CVE-2024-23652") {
        return;
    }
    let c = case("mount-target-symlink-out");
    let arena = Arena::busybox();
    let (out, s) = (arena.outside(), arena.sentinel());
    arena.dockerfile(&format!(
        "FROM busybox\nRUN ln -s {out} /victim && ln -s {out}/secret /victim-file\n\
         RUN --mount=type=tmpfs,target=/victim/secret \
             --mount=type=cache,target=/victim/empty \
             --mount=type=bind,target=/victim/{s} \
             sh -c 'ls /victim/ /victim/{s} > /dev/null; true'\n\
         RUN ls -la /victim/ > /after 2>&1; true\n",
        out = out.display()
    ));
    let dest = arena.out("after");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    // A file mounted onto a symlink to a host file: runc makes the mount point inside the
    // root, or refuses; either way the host file stays.
    arena.dockerfile(&format!(
        "FROM busybox\nRUN ln -s {out}/secret /victim-file\n\
         RUN --mount=type=bind,source=Dockerfile,target=/victim-file cat /victim-file > /dev/null\n",
        out = out.display()
    ));
    let ran = arena.build(&[]);
    assert!(ran.code == Some(0) || ran.code == Some(1), "{}", ran.show());
    if ran.code == Some(1) {
        ran.failed_with(&["/victim-file"]);
    }
    arena.assert_confined(c, &[&ran]);
    arena.assert_no_leftovers(c);
}

/// BuildKit CVE-2024-23651 analog: a cache mount holds a symlink to a host path; later steps
/// write through it and mount below it. Inside the container the link resolves in the
/// container's root; nothing reaches the host.
#[test]
fn a_symlink_in_a_cache_mount_does_not_lead_out() {
    if !can_run("BuildKit CVE-2024-23651 analog") {
        return;
    }
    let c = case("cache-mount-symlink-out");
    let arena = Arena::busybox();
    let (out, s) = (arena.outside(), arena.sentinel());
    arena.dockerfile(&format!(
        "FROM busybox\n\
         RUN --mount=type=cache,id=c,target=/c ln -sfn {out} /c/link && ln -sfn {out}/empty /c/elink\n\
         RUN --mount=type=cache,id=c,target=/c sh -c 'echo pwned > /c/link/{s}; echo x > /c/link/secret; cat /c/link/secret; true'\n\
         RUN --mount=type=cache,id=c,target=/c --mount=type=tmpfs,target=/c/elink/t sh -c 'echo in > /c/elink/t/f; true'\n\
         RUN --mount=type=cache,id=c,target=/c --mount=type=cache,id=d,target=/c/link/d sh -c 'echo pwned > /c/link/d/{s}; true'\n",
        out = out.display()
    ));
    let ran = arena.build(&[]);
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
}

/// buildah CVE-2024-1753, as published: "a dummy image with a symbolic link to the root
/// filesystem as a mount source" made RUN mount the host's `/` read-write. Here a stage makes
/// `/rootlink -> /` (and `/outlink -> OUTSIDE`), and a later step bind-mounts them `from=` that
/// stage, `rw`, and writes: what it sees is the stage's own root, and nothing reaches the host.
/// The same through a context symlink to `/`.
#[test]
fn a_bind_mount_of_an_image_symlink_to_root_is_not_the_hosts_root() {
    if !can_run("buildah CVE-2024-1753") {
        return;
    }
    let c = case("bind-from-image-symlink-root");
    let arena = Arena::busybox();
    let (out, s) = (arena.outside(), arena.sentinel());
    symlink("/", arena.ctx().join("ctx-rootlink")).unwrap();
    arena.dockerfile(&format!(
        "FROM busybox AS evil\n\
         RUN ln -s / /rootlink && ln -s {out} /outlink && echo stage > /stage-marker\n\
         FROM busybox\n\
         RUN --mount=type=bind,from=evil,source=/rootlink,target=/host,rw sh -c \
             'ls -A /host > /via-image; echo pwned > /host/{s}; cat /host/etc/shadow > /shadow 2>/dev/null; true'\n\
         RUN --mount=type=bind,source=ctx-rootlink,target=/c,rw sh -c \
             'ls -A /c > /via-context 2>&1; echo pwned > /c/{s}; true'\n",
        out = out.display()
    ));
    let dest = arena.out("1753");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    // The stage's root: it has the marker the stage wrote, and none of the host's
    // directories that busybox lacks (/usr, and the one this checkout lives under).
    let via_image = testkit::files::read(&dest.join("via-image"));
    assert!(
        via_image.lines().any(|l| l == "stage-marker"),
        "{via_image}"
    );
    let checkout_top = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .components()
        .nth(1)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap();
    let host_only = ["usr".to_string(), checkout_top];
    for name in &host_only {
        assert!(
            Path::new("/").join(name).is_dir(),
            "the host has no /{name}"
        );
    }
    for host_only in &host_only {
        assert!(
            !via_image.lines().any(|l| l == host_only),
            "the host's /{host_only} is visible:\n{via_image}"
        );
    }
    assert!(!dest.join("shadow").exists() || testkit::files::read(&dest.join("shadow")).is_empty());
    // The context's link to / is not the host's root either.
    let via_context = testkit::files::read(&dest.join("via-context"));
    assert!(
        via_context.lines().any(|l| l == "Dockerfile"),
        "the context itself: {via_context}"
    );
    for host_only in &host_only {
        assert!(
            !via_context.lines().any(|l| l == host_only),
            "the host's /{host_only} is visible through a context symlink:\n{via_context}"
        );
    }
    assert!(!arena.ctx().join(&s).exists());
    // A link to a host path resolves in the stage's root, where OUTSIDE does not exist: the
    // mount is refused, the host path never mounted.
    arena.dockerfile(&format!(
        "FROM busybox AS evil\nRUN ln -s {out} /outlink\n\
         FROM busybox\n\
         RUN --mount=type=bind,from=evil,source=/outlink,target=/o,rw sh -c \
             'ls -A /o; echo pwned > /o/{s}; echo x > /o/secret; cat /o/secret'\n",
        out = out.display()
    ));
    let ran = arena.build(&[]);
    judge(&arena, c, &ran, &fails(&["/outlink", "does not exist"]));
}

/// BuildKit CVE-2024-23651: "two malicious build steps running in parallel sharing the same
/// cache mounts with subpaths" raced the subpath's resolution and exposed host files. Here
/// stage A swaps the cache's `sub` between a directory and a symlink to OUTSIDE (and to `/`)
/// as fast as it can, while stage B, in parallel, mounts `source=sub` of the same cache again
/// and again, writing and reading through it. Whatever B sees, nothing outside changes and the
/// canary's secret is never read.
#[test]
fn parallel_steps_racing_a_cache_subpath_stay_inside() {
    if !can_run("BuildKit CVE-2024-23651") {
        return;
    }
    let c = case("cache-source-race");
    let arena = Arena::busybox();
    let (out, s) = (arena.outside(), arena.sentinel());
    let swapper = format!(
        "mkdir -p /c/sub; i=0; while [ $i -lt 500 ]; do \
         rm -rf /c/sub; ln -s {out} /c/sub; rm -f /c/sub; ln -s / /c/sub; rm -f /c/sub; mkdir /c/sub; \
         i=$((i+1)); done; echo swapped > /a-done",
        out = out.display()
    );
    let user = format!(
        "i=0; while [ $i -lt 100 ]; do echo pwned > /m/{s} 2>/dev/null; cat /m/secret >> /b-read 2>/dev/null; \
         i=$((i+1)); done; echo used > /b-done"
    );
    let mut b_steps = String::new();
    for n in 0..6 {
        b_steps.push_str(&format!(
            "RUN --mount=type=cache,id=race,target=/m,source=sub sh -c '{user}; echo {n}'\n"
        ));
    }
    arena.dockerfile(&format!(
        "FROM busybox AS a\nRUN --mount=type=cache,id=race,target=/c,sharing=shared sh -c '{swapper}'\n\
         FROM busybox AS b\nRUN sleep 0.2\n{b_steps}\
         FROM busybox\nCOPY --from=a /a-done /a-done\nCOPY --from=b /b-done /b-done\nCOPY --from=b /b-read /b-read\n"
    ));
    let dest = arena.out("race");
    let ran = run_bounded(
        &arena
            .pallet()
            .args(["build", "--progress", "plain", "-o"])
            .arg(format!("type=local,dest={}", dest.display()))
            .arg(arena.ctx()),
        std::time::Duration::from_secs(90),
        None,
    );
    // A step may fail (the source is a symlink at that moment, and pallet refuses it); it may
    // not reach outside.
    assert!(ran.code == Some(0) || ran.code == Some(1), "{}", ran.show());
    if ran.code == Some(1) {
        ran.failed_with(&["sub"]);
    } else {
        assert_eq!(testkit::files::read(&dest.join("a-done")), "swapped\n");
        assert!(!testkit::files::read(&dest.join("b-read")).contains(&arena.secret));
    }
    arena.assert_confined(c, &[&ran]);
}

/// Special files in the build context are copied as what they are and never read: a FIFO
/// (reading it would block the build forever), a character device (1:5, an endless source of
/// zeros), and symlink loops (`a -> b -> a`, a directory holding `up -> ..`). `COPY .` and
/// `ADD` of each (ADD reads a file to see whether it is an archive) finish in seconds.
#[test]
fn special_files_in_the_context_are_never_read() {
    if !can_run("hostile special files in the context") {
        return;
    }
    let c = case("context-special-files");
    let arena = Arena::busybox();
    let ctx = arena.ctx();
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(ctx.join("pipe"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    let mknod = std::process::Command::new("mknod")
        .arg(ctx.join("zero"))
        .args(["c", "1", "5"])
        .status()
        .unwrap();
    assert!(mknod.success());
    symlink("loop-b", ctx.join("loop-a")).unwrap();
    symlink("loop-a", ctx.join("loop-b")).unwrap();
    std::fs::create_dir(ctx.join("d")).unwrap();
    symlink("..", ctx.join("d/up")).unwrap();
    arena.dockerfile(
        "FROM busybox\nCOPY . /x/\nADD pipe /p\nADD zero /z\nADD d /d/\n\
         RUN ls -l /x/pipe /x/zero /p /z | cut -c1 > /kinds && { readlink /x/loop-a; readlink /d/up; } > /links\n",
    );
    let dest = arena.out("special");
    let ran = arena.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    judge(&arena, c, &ran, &Want::Succeeds(Box::new(|_| {})));
    assert!(ran.secs < 30.0, "{:.1}s", ran.secs);
    // ls sorts its arguments: /p, /x/pipe, /x/zero, /z.
    assert_eq!(testkit::files::read(&dest.join("kinds")), "p\np\nc\nc\n");
    assert_eq!(testkit::files::read(&dest.join("links")), "loop-b\n..\n");
}
