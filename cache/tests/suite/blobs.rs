//! The blob store on real files: content addressing, digest checks, temp files and crashes.

use cache::{CacheError, Root};
use std::io::Write;
use testkit::digest::sha256 as digest_of;
use testkit::files::list_dir as files_in;

#[test]
fn write_commit_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();

    let mut writer = root.blobs.writer().unwrap();
    for chunk in data.chunks(7001) {
        writer.write_all(chunk).unwrap();
    }
    assert_eq!(writer.size(), data.len() as u64);
    // The running digest (what a download checks its blob with) is the committed one, and
    // asking for it does not end the hashing.
    assert_eq!(writer.sha256_so_far(), digest_of(&data));
    assert_eq!(writer.sha256_so_far(), digest_of(&data));
    let info = writer.commit().unwrap();

    assert_eq!(info.digest, digest_of(&data));
    assert_eq!(info.size, data.len() as u64);
    assert!(root.blobs.contains(&info.digest));
    assert_eq!(root.blobs.read(&info.digest).unwrap(), data);
    let path = root.blobs.path(&info.digest).unwrap();
    assert_eq!(
        path,
        dir.path()
            .join("blobs/sha256")
            .join(&info.digest["sha256:".len()..])
    );
    let mut opened = Vec::new();
    std::io::Read::read_to_end(&mut root.blobs.open(&info.digest).unwrap(), &mut opened).unwrap();
    assert_eq!(opened, data);
    assert!(files_in(&root.tmp_dir()).is_empty());
}

#[test]
fn empty_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let info = root.blobs.put_bytes(b"").unwrap();
    assert_eq!(
        info.digest,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(info.size, 0);
    assert_eq!(root.blobs.read(&info.digest).unwrap(), b"");
}

#[test]
fn same_content_twice_is_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let a = root.blobs.put_bytes(b"hello pallet").unwrap();
    let mut writer = root.blobs.writer().unwrap();
    writer.write_all(b"hello ").unwrap();
    writer.write_all(b"pallet").unwrap();
    let b = writer.commit().unwrap();
    assert_eq!(a, b);
    assert_eq!(files_in(root.blobs.dir()).len(), 1);
    assert!(files_in(&root.tmp_dir()).is_empty());
}

#[test]
fn digest_mismatch_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let expected = digest_of(b"what the manifest promised");
    let mut writer = root.blobs.writer().unwrap();
    writer.write_all(b"what the registry sent").unwrap();
    match writer.commit_expect(&expected) {
        Err(CacheError::DigestMismatch {
            expected: e,
            actual,
        }) => {
            assert_eq!(e, expected);
            assert_eq!(actual, digest_of(b"what the registry sent"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(files_in(root.blobs.dir()).is_empty());
    assert!(files_in(&root.tmp_dir()).is_empty());
    assert!(!root.blobs.contains(&expected));
}

#[test]
fn commit_expect_accepts_the_right_digest() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let mut writer = root.blobs.writer().unwrap();
    writer.write_all(b"layer").unwrap();
    let info = writer.commit_expect(&digest_of(b"layer")).unwrap();
    assert_eq!(root.blobs.read(&info.digest).unwrap(), b"layer");
}

#[test]
fn commit_expect_rejects_a_malformed_expected_digest() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let mut writer = root.blobs.writer().unwrap();
    writer.write_all(b"layer").unwrap();
    let err = writer.commit_expect("sha256:../../etc/passwd").unwrap_err();
    assert!(matches!(err, CacheError::BadDigest(_)), "{err:?}");
    assert!(files_in(root.blobs.dir()).is_empty());
    assert!(files_in(&root.tmp_dir()).is_empty());
}

#[test]
fn dropped_writer_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let mut writer = root.blobs.writer().unwrap();
    writer.write_all(&[7u8; 200_000]).unwrap();
    assert_eq!(files_in(&root.tmp_dir()).len(), 1);
    drop(writer);
    assert!(files_in(&root.tmp_dir()).is_empty());
    assert!(files_in(root.blobs.dir()).is_empty());
}

#[test]
fn malformed_digests_are_rejected_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let good = "a".repeat(64);
    let bad = [
        "sha256:../../x".to_string(),
        format!("sha256:../../{}", &good[6..]),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{}", &good[..63]),
        format!("sha256:{good}0"),
        format!("sha512:{good}"),
        format!("blake3:{good}"),
        format!("SHA256:{good}"),
        good.clone(),
        format!("sha256:{}/", &good[..63]),
        format!("sha256:{}g", &good[..63]),
        "sha256:".to_string(),
        String::new(),
    ];
    for digest in &bad {
        let err = root.blobs.path(digest).unwrap_err();
        assert!(
            matches!(err, CacheError::BadDigest(ref d) if d == digest),
            "{digest}: {err:?}"
        );
        assert!(!root.blobs.contains(digest));
        assert!(matches!(
            root.blobs.read(digest),
            Err(CacheError::BadDigest(_))
        ));
        assert!(matches!(
            root.blobs.open(digest),
            Err(CacheError::BadDigest(_))
        ));
    }
    assert!(root.blobs.path(&format!("sha256:{good}")).is_ok());
}

#[test]
fn missing_blob_names_digest_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    let digest = digest_of(b"never stored");
    let err = root.blobs.read(&digest).unwrap_err();
    match &err {
        CacheError::MissingBlob { digest: d, root: r } => {
            assert_eq!(d, &digest);
            assert_eq!(r, dir.path());
        }
        other => panic!("expected MissingBlob, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&digest), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(matches!(
        root.blobs.open(&digest),
        Err(CacheError::MissingBlob { .. })
    ));
}

/// A process that dies mid-write (here: a writer that is never committed nor dropped) leaves
/// its temp file in tmp/, but no blob, and the blob can still be written afterwards.
#[test]
fn crash_mid_write_leaves_no_visible_blob() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![42u8; 100_000];
    let digest = digest_of(&data);
    {
        let root = Root::open(dir.path()).unwrap();
        let mut writer = root.blobs.writer().unwrap();
        writer.write_all(&data).unwrap();
        writer.flush().unwrap();
        std::mem::forget(writer);
    }

    let root = Root::open(dir.path()).unwrap();
    let temps = files_in(&root.tmp_dir());
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert!(cache::Blobs::is_temp_name(&temps[0]), "{temps:?}");
    assert!(!root.blobs.contains(&digest));
    assert!(!root.blobs.path(&digest).unwrap().exists());
    assert!(files_in(root.blobs.dir()).is_empty());
    assert!(matches!(
        root.blobs.read(&digest),
        Err(CacheError::MissingBlob { .. })
    ));

    // The leftover does not get in the way of writing the blob for real.
    let info = root.blobs.put_bytes(&data).unwrap();
    assert_eq!(info.digest, digest);
    assert_eq!(root.blobs.read(&digest).unwrap(), data);
}

#[test]
fn writer_recreates_missing_tmp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(dir.path()).unwrap();
    std::fs::remove_dir(root.tmp_dir()).unwrap();
    let info = root.blobs.put_bytes(b"after a tmp cleanup").unwrap();
    assert!(root.blobs.contains(&info.digest));
}
