//! Hostile inputs (issue 13, "The suite: hostile inputs"): every case feeds pallet something an
//! attacker controls (a layer tar, a build context, a Dockerfile, a registry's answers, a
//! damaged store) through the real binary, real runc and a real docker-registry, and asserts
//! two things:
//!
//! 1. a clear error (exit code 1, a message that names what was wrong, never a panic, an abort
//!    or a hang: every run has a deadline) or, where the input is legitimate but odd, a correct
//!    result confined to where it belongs;
//! 2. nothing was written or read outside where it may be: each case has a canary next to the
//!    store and the context (`outside/secret` holding a random value, and an empty directory),
//!    which must be untouched afterwards; no new entry may appear beside the store, the contexts
//!    and the outputs; host paths named after the case's mark must not exist; and the secret's
//!    value may appear in no file of the store or the outputs, nor in anything pallet printed.
//!
//! Published CVEs of BuildKit, buildah, kaniko and runc that apply to pallet are replayed and
//! named in each case (and in the test's doc). [`CASES`] lists every distinct hostile input with
//! what is expected, the CVE it replays, and what it found in pallet when it was written (each
//! of those is fixed; the case is the regression test). `zz_summary_lists_the_cases` prints the
//! table and checks that every case is exercised by a test and that the CVEs are all replayed.
//!
//! One module per kind of input: `layers` (layer tars through import and ADD), `images`
//! (crafted images in a registry or an OCI layout), `registries` (hostile registry answers),
//! `context` (the build context, mounts, WORKDIR), `frontend` (expansion bombs, long lines,
//! secrets), `store` (a flipped byte before push, a damaged index), `isolation` (seccomp);
//! `kit` is the runner, the arena and the tar crafting. Run them all:
//! `cargo test -p pallet-builder --test suite hostile::`.
//!
//! Needs root, runc, busybox-static and docker-registry (scripts/ensure-tools.sh installs them);
//! fails under CI=true when they are missing.

mod context;
mod frontend;
mod images;
mod isolation;
mod kit;
mod layers;
mod registries;
mod store;

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// One distinct hostile input: what it is, what pallet must do with it, the CVE it replays (if
/// any), and, when the test for it found a defect in pallet, what the defect was (fixed on the
/// branch that added the case; the test failed before the fix).
pub struct Case {
    pub id: &'static str,
    pub input: &'static str,
    pub expect: &'static str,
    pub cve: &'static str,
    pub found: Option<&'static str>,
}

const fn ok(
    id: &'static str,
    input: &'static str,
    expect: &'static str,
    cve: &'static str,
) -> Case {
    Case {
        id,
        input,
        expect,
        cve,
        found: None,
    }
}

/// A case whose test found a defect in pallet (`found`), fixed since.
const fn found(
    id: &'static str,
    input: &'static str,
    expect: &'static str,
    cve: &'static str,
    found: &'static str,
) -> Case {
    Case {
        id,
        input,
        expect,
        cve,
        found: Some(found),
    }
}

/// Every hostile input this module tries. A test names the case it exercises with [`case`].
const CASES: &[Case] = &[
    // Layer tars, through `pallet import`.
    ok("import-dotdot", "pallet import of a tar with `../../..` entries", "error naming the entry's `..`", "kaniko CVE-2026-28406 (GHSA-6rxq-q92g-4rmf: a `../` tar entry written outside the extraction root)"),
    ok("import-absolute", "pallet import of a tar with absolute names (/tmp/MARK)", "confined: the file is in the image under tmp/, not on the host", ""),
    ok("import-symlink-then-file", "pallet import: symlink esc -> OUTSIDE, then esc/pwned", "error: esc is a symlink", ""),
    ok("import-symlink-dotdot", "pallet import: symlink up -> ../../.., then up/MARK", "error: up is a symlink", ""),
    ok("import-symlink-loop", "pallet import: a -> b, b -> a, then a/x", "error: a is a symlink", ""),
    ok("import-hardlink-dotdot", "pallet import: hardlink to ../../etc/passwd", "error naming the `..`", ""),
    ok("import-hardlink-absolute", "pallet import: hardlink to /etc/shadow", "error: the target is not in the layer (never the host's)", ""),
    ok("import-whiteout-dotdot", "pallet import: whiteouts a/.wh... and ../.wh.secret", "error naming the whiteout", ""),
    ok("import-whiteout-through-symlink", "pallet import: esc -> OUTSIDE, then esc/.wh.secret", "error; OUTSIDE/secret still there", ""),
    ok("import-opaque-odd-places", "pallet import: .wh..wh..opq at the root, as a directory, and below a symlink to OUTSIDE", "root and directory forms confined; below the symlink an error; OUTSIDE untouched", ""),
    ok("import-devices", "pallet import: char 1:1 (mem), block devices, a fifo", "created inside the store only; a container cannot open them", ""),
    ok("import-nul-name", "pallet import: a PAX path with a NUL byte", "error naming the NUL", ""),
    ok("import-huge-name", "pallet import: a 50 MB GNU long name", "error: extension header too large, small stderr, bounded memory", ""),
    found("import-deep-name", "pallet import: one entry with 20 000 path components (a 40 KB PAX path)", "refused at once as too long (PATH_MAX), bounded memory, nothing left in the store", "",
        "unpacking creates every level, remembers every prefix of the path (memory and time quadratic in its length: 40 KB takes ~8 s and 400 MB, 100 KB 33 s and 2.4 GB, a 1 MB name was OOM-killed at 23 GB after 13 min), fails late with ENAMETOOLONG from a path-based step echoing the whole path, and leaves the unpacked tree in ROOT/tmp, where no later command can remove it"),
    ok("import-dir-then-symlink", "pallet import: d/ and d/f, then d -> OUTSIDE, then d/pwned", "error: d is a symlink", ""),
    ok("tar-pointyfeather", "import and ADD of a tar with etc/motd then etc/motd/../etc/MARK (and ../../../../tmp/MARK)", "error: a `..` is refused, never rewritten to another member", "CVE-2016-6321 (GNU tar POINTYFEATHER: a name with `..` was rewritten by stripping up to it)"),
    // Layer tars, through ADD of a local archive (a different unpacker: exec/fileop/unpack.rs).
    ok("add-tar-dotdot", "ADD evil.tar with `../../..` entries", "error: outside the extraction directory", "kaniko CVE-2026-28406 (the same `../` entry, through ADD's unpacker)"),
    ok("add-tar-absolute", "ADD evil.tar with absolute names (/tmp/MARK)", "confined: under the ADD destination", ""),
    ok("add-tar-symlink-then-file", "ADD evil.tar: esc -> OUTSIDE, then esc/pwned", "confined: resolved inside the destination", ""),
    ok("add-tar-symlink-dotdot", "ADD evil.tar: up -> .., then up/MARK", "confined: `..` stops at the destination", ""),
    ok("add-tar-hardlink-dotdot", "ADD evil.tar: hardlink to ../../etc/passwd", "error: outside the extraction directory", ""),
    ok("add-tar-hardlink-absolute", "ADD evil.tar: hardlink to /etc/shadow", "error: resolved inside the destination, where it is not", ""),
    found("add-tar-deep-name", "ADD evil.tar with one entry 20 000 components deep (a 40 KB PAX path)", "refused at once as too long, a short message", "",
        "ADD's unpacker resolved and created the path level by level (7.6 s for 40 KB, quadratic), then failed with ENAMETOOLONG echoing 8 KB of the name"),
    ok("add-tar-devices", "ADD evil.tar: char 1:1, a block device, a fifo", "created in the image only", ""),
    ok("add-tar-dir-then-symlink", "ADD evil.tar: d/, then d -> OUTSIDE, then d/pwned", "confined: resolved inside the destination", ""),
    ok("add-url-tar-not-extracted", "ADD http://HOST/evil.tar /dest/ whose entries climb (`../`, a symlink then a file)", "stored as one file, byte for byte; nothing extracted anywhere", "buildah CVE-2020-10696 (a tar fetched over HTTP extracted with its `../` entries)"),
    // Layer tars, through a crafted image in a registry.
    ok("from-registry-dotdot", "FROM a registry image whose layer has `../../../../MARK`", "error naming the entry", "kaniko CVE-2026-28406 (through a pulled layer)"),
    ok("copy-from-registry-dotdot", "COPY --from a registry image whose layer has `../../../../tini`", "error naming the entry", "kaniko CVE-2026-28406 (its advisory's chain: overwrite a helper binary such as tini, here through COPY --from)"),
    ok("from-registry-symlink-then-file", "FROM a registry image: esc -> OUTSIDE, then esc/pwned", "error: esc is a symlink", ""),
    ok("from-registry-hardlink-out", "FROM a registry image with hardlinks to ../../etc/passwd and /etc/shadow", "error", ""),
    ok("from-registry-two-layer-symlink", "FROM an image whose layer 1 has esc -> OUTSIDE and layer 2 esc/pwned, exported with -o type=local", "the export refuses the entry; OUTSIDE untouched", ""),
    // The build context and the Dockerfile.
    ok("copy-context-symlink-etc-passwd", "COPY of a context symlink to /etc/passwd", "the context's own etc/passwd, never the host's", ""),
    ok("copy-context-symlink-outside", "COPY of a context symlink to OUTSIDE/secret (absolute)", "error: not found in the context", ""),
    ok("copy-dotdot-outside", "COPY ../outside/secret", "error: not found (`..` stops at the context root)", ""),
    ok("copy-symlinked-dir-outside", "COPY of a context directory symlink to OUTSIDE (absolute and ../outside)", "error: not found in the context", ""),
    ok("context-special-files", "a context holding a FIFO, a char device 1:5 (/dev/zero), symlink loops and a `up -> ..` directory link; COPY . and ADD of each", "built in seconds: nodes copied as nodes, links as links, nothing read from them", ""),
    ok("bind-source-dotdot", "RUN --mount=type=bind,source=../", "the context root (BuildKit cleans the path), never its parent", ""),
    ok("bind-source-root-rw", "RUN --mount=type=bind,source=/,target=/host,rw, writing to /host", "the context, never the host's /; writes go nowhere", "buildah CVE-2024-1753 (the source named directly)"),
    ok("bind-from-image-symlink-root", "RUN --mount=type=bind,from=STAGE,source=/rootlink,rw where the stage made /rootlink -> / (and a link to OUTSIDE; and a context symlink to /)", "the stage's own root (its marker, no host directories); nothing written outside", "buildah CVE-2024-1753 (as published: a symlink to / in an image used as the mount source)"),
    ok("cache-id-traversal", "RUN --mount=type=cache,id=../../outside (and ../../../../etc)", "a cache under the store; nothing written outside", "buildah CVE-2024-9675"),
    ok("cache-source-traversal", "RUN --mount=type=cache,source=../../../.. (with and without from=)", "a fresh (or stage-seeded) cache; nothing outside read or written", "buildah CVE-2024-9675"),
    ok("workdir-proc-self-fd", "WORKDIR /proc/self/fd/N (N = 3..8) then RUN reading ../../../OUTSIDE/secret", "error (runc refuses the cwd); the secret is never read; a plain step holds no host directory fd", "runc CVE-2024-21626 (Leaky Vessels)"),
    ok("run-workdir-proc-self-fd", "pallet run -w /proc/self/fd/N", "error; the secret is never read", "runc CVE-2024-21626"),
    ok("mount-target-symlink-out", "RUN --mount whose target runs through an image symlink to OUTSIDE", "the host target untouched after the step", "BuildKit CVE-2024-23652"),
    ok("cache-mount-symlink-out", "a cache mount that holds a symlink to OUTSIDE, used by later steps (writes, nested mount)", "nothing written outside", "BuildKit CVE-2024-23651 (the symlink, sequentially)"),
    ok("cache-source-race", "two stages in parallel: one swaps the cache's `sub` between a directory and symlinks to OUTSIDE and /, the other mounts source=sub again and again, writing and reading", "nothing outside written or read, whatever wins each race", "BuildKit CVE-2024-23651 (the race, as published)"),
    ok("oci-layout-dotdot-entry", "--build-context base=oci-layout://DIR whose layer has `../` entries", "error naming the entry", ""),
    found("oci-layout-digest-traversal", "--build-context base=oci-layout://DIR whose layer digest is sha256:../../../outside/secret", "refused as an invalid digest before any file is opened", "",
        "store/oci_import.rs opens DIR/blobs/sha256/<whatever follows sha256:> for layers (only manifest and config digests are checked): the layer is read from outside the layout (any file: /dev/zero fills the disk, a FIFO hangs), and with a diff id equal to that file's sha256 (a guess to confirm) its content is stored in the store as a blob, left there after the build fails"),
    // Secrets.
    ok("secret-nowhere", "--secret used by RUN, with plain and JSON progress, an OCI output, history, inspect, a rebuild with another value", "the value is in no file of the store or output and in nothing printed; the rebuild is a cache hit", ""),
    ok("secret-build-arg", "--build-arg API_TOKEN=... used by RUN", "the SecretsUsedInArgOrEnv warning is printed (the value is in the history, as with BuildKit)", ""),
    // The frontend.
    ok("frontend-arg-bomb", "ARG A=$A$A$A$A$A$A$A$A doubling, 16 lines", "error at the line within seconds", ""),
    ok("frontend-50mb-line", "a Dockerfile whose one line is 50 MB", "error, stderr under 100 KB", ""),
    ok("frontend-50mb-word", "FROM with a 50 MB image name", "error, stderr under 100 KB", ""),
    found("frontend-50mb-continued", "RUN of 200 continuation lines of 50 KB (a 10 MB command; each line under the limit)", "the step fails (argument list too long), stderr stays under 32 KB", "",
        "the step's name and command were printed whole in the progress and the error, four times: 200 MB of stderr (and 9.8 s); now cut at 2000 characters with the full length (solver::error::shortened)"),
    ok("frontend-200k-comments", "200 000 lines of # comments before FROM", "builds", ""),
    // Registries.
    found("reg-oversized-manifest", "a 9 MiB manifest", "refused before any blob request, the error naming the manifest's 8 MiB limit", "",
        "refused in time and without a blob request, but the error says '127.0.0.1:PORT: the registry is not reachable: the response body is larger than request limit: 8388608 (check the host name and port, proxy settings and that the registry is running)': the cause is misnamed and the advice is wrong (issue 13, point 9)"),
    ok("reg-invalid-json", "a manifest that is not JSON", "error: invalid manifest", ""),
    ok("reg-digest-traversal", "a manifest whose layer digest is sha256:../../../../tmp/x", "refused before any request that uses it", "issue 13 defect 8"),
    ok("reg-index-self-loop", "an index that lists itself", "error (digest mismatch), a bounded number of requests", ""),
    ok("reg-index-nested", "an index nested 100 deep", "error after at most two levels", ""),
    ok("reg-diffid-mismatch", "a config whose diff_ids do not match the layers", "error naming the diff id; nothing kept", ""),
    ok("reg-diffid-traversal", "a config whose diff_id is sha256:../../../outside/x", "error; nothing outside", ""),
    ok("reg-blob-digest-mismatch", "a layer blob that does not match its digest", "error naming the digest; nothing kept", ""),
    ok("reg-unknown-media-type", "a layer of media type application/vnd.evil.layer", "error naming the media type", ""),
    ok("reg-foreign-urls", "a foreign layer whose urls point elsewhere", "the URL is never requested", ""),
    ok("reg-huge-config", "a 12 MiB config JSON", "a clear answer (pulled or refused), bounded memory", ""),
    found("reg-config-size-lie", "a manifest that says its config is 1 TiB (the blob is small)", "an error (or the real config), never an allocation of the claimed size", "",
        "registry/src/pull.rs resolve() did Vec::with_capacity(manifest.config.size): a 300-byte manifest made pallet abort with 'memory allocation of 1099511627776 bytes failed' (SIGABRT, exit 134) before any check (fixed on main by 7fae959, found at the same time by the manifest fuzz target)"),
    found("push-failed-no-tag", "a push whose blob uploads fail (500 every time)", "error within the retry policy (at most 5 POSTs a blob); no manifest sent; the tag does not exist", "",
        "the upload retried the session start that the session layer had already retried: 25 POSTs and ~20 s per blob before the push failed"),
    found("push-flipped-byte", "a push of an image one of whose stored layer blobs (the diff blob; the compressed blob a first push kept) has a flipped byte", "error naming the layer before any manifest is written; the registry has no manifest", "issue 13 defect 6",
        "with the compressed blob a first push kept damaged, the error named a blob digest only ('does not match its content') and the damaged copy stayed, so every later push failed the same way; now the layer is named, the copy removed, and the next push works"),
    // A damaged store.
    found("doctor-corrupt-index", "4 KB of random bytes over each page of index.redb in turn (the middle one included)", "every command: done, or exit 1 naming `pallet doctor`; doctor rebuilds; every image that verifies is listed and runs", "issue 13 defect 5",
        "tags lived only in the index: damage to the tags table (or the header) and `pallet doctor` kept 0 of 3 images that all verified; doctor printed redb's panic and backtrace while salvaging; a damaged header said 'pass --root DIR or set PALLET_ROOT to a writable directory' instead of pallet doctor"),
    // Isolation of RUN and pallet run.
    ok("seccomp-run-step", "a RUN step that tries unshare -U -r, unshare -U -r -m + mount -t tmpfs, unshare -m, mount", "Seccomp: 2, all refused, a pids limit in the cgroup", "issue 13 defect 2"),
    ok("seccomp-pallet-run", "pallet run trying the same", "Seccomp: 2, all refused, a pids limit in the cgroup", "issue 13 defect 2"),
];

/// The case `id` (panics if the table has none: a test may not exercise an unlisted case).
pub fn case(id: &str) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no case {id} in CASES"))
}

/// The CVEs issue 13 asks to replay, each of which some case must name.
const CVES: &[&str] = &[
    "kaniko CVE-2026-28406",
    "buildah CVE-2024-1753",
    "buildah CVE-2024-9675",
    "buildah CVE-2020-10696",
    "BuildKit CVE-2024-23651",
    "BuildKit CVE-2024-23652",
    "runc CVE-2024-21626",
    "CVE-2016-6321",
];

/// The figures: every case with the CVE it replays and what it found, printed (run with
/// `--nocapture` to see them); and the table's promises checked against the sources: at least
/// 30 cases, ids unique, every case exercised by some test of this module (its id appears in
/// a test file, quoted), every CVE of issue 13 replayed by a case, and no ignored test.
#[test]
fn zz_summary_lists_the_cases() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite/hostile");
    let sources: String = [
        "layers",
        "images",
        "registries",
        "context",
        "frontend",
        "store",
        "isolation",
    ]
    .iter()
    .map(|m| std::fs::read_to_string(dir.join(format!("{m}.rs"))).unwrap())
    .collect();
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
    let mut ids: Vec<&str> = CASES.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), CASES.len(), "case ids are not unique");
    let untested: Vec<&str> = CASES
        .iter()
        .map(|c| c.id)
        .filter(|id| !sources.contains(&format!("\"{id}\"")))
        .collect();
    assert!(untested.is_empty(), "cases no test exercises: {untested:?}");
    for cve in CVES {
        assert!(
            CASES.iter().any(|c| c.cve.contains(cve)),
            "no case replays {cve}"
        );
    }
    assert!(
        !sources.contains("#[ignore"),
        "an ignored hostile test: a defect is fixed, not skipped"
    );
    println!("hostile inputs: {} cases", CASES.len());
    for c in CASES {
        println!("- {}: {} -> {}", c.id, c.input, c.expect);
        if !c.cve.is_empty() {
            println!("    replays {}", c.cve);
        }
        if let Some(found) = c.found {
            println!("    found (fixed): {found}");
        }
    }
    let found = CASES.iter().filter(|c| c.found.is_some()).count();
    let cves = CASES.iter().filter(|c| !c.cve.is_empty()).count();
    println!("{} cases, {cves} replaying a published CVE or an issue 13 defect, {found} found a defect (fixed)", CASES.len());
}
