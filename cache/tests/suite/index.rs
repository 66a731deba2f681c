//! The redb index on a real file: tags, cache records and blob sources, and reopening.

use cache::{CacheError, Index, Root};

#[test]
fn root_open_creates_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::open(&dir.path().join("store")).unwrap();
    for sub in ["blobs/sha256", "snapshots", "tmp", "cache-mounts"] {
        assert!(root.path.join(sub).is_dir(), "{sub}");
    }
    assert!(root.index_path().is_file());
    assert_eq!(root.snapshots_dir(), root.path.join("snapshots"));
    assert_eq!(root.tmp_dir(), root.path.join("tmp"));
    assert_eq!(root.cache_mounts_dir(), root.path.join("cache-mounts"));
    // Opening again (a second handle, as a second process would) works.
    let again = Root::open(&root.path).unwrap();
    assert!(again.index.list_tags().unwrap().is_empty());
}

#[test]
fn tags_put_get_delete_list() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(&dir.path().join("index.redb")).unwrap();

    assert_eq!(index.get_tag("app:latest").unwrap(), None);
    assert!(index.list_tags().unwrap().is_empty());
    assert!(!index.delete_tag("app:latest").unwrap());

    index.put_tag("zeta:1", b"{\"z\":1}").unwrap();
    index.put_tag("app:latest", b"{\"a\":1}").unwrap();
    index.put_tag("app:latest", b"{\"a\":2}").unwrap();
    index.put_tag("app:1.0", b"").unwrap();

    assert_eq!(index.get_tag("app:latest").unwrap().unwrap(), b"{\"a\":2}");
    assert_eq!(index.get_tag("app:1.0").unwrap().unwrap(), b"");
    let names: Vec<String> = index
        .list_tags()
        .unwrap()
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(names, ["app:1.0", "app:latest", "zeta:1"]);

    assert!(index.delete_tag("app:latest").unwrap());
    assert!(!index.delete_tag("app:latest").unwrap());
    assert_eq!(index.get_tag("app:latest").unwrap(), None);
    assert_eq!(index.list_tags().unwrap().len(), 2);
}

#[test]
fn cache_records_put_get_delete_list_update() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(&dir.path().join("index.redb")).unwrap();

    assert_eq!(index.get_cache("k1").unwrap(), None);
    assert!(index.list_cache().unwrap().is_empty());
    index.put_cache("k2", b"two").unwrap();
    index.put_cache("k1", b"one").unwrap();
    assert_eq!(index.get_cache("k1").unwrap().unwrap(), b"one");
    assert_eq!(
        index.list_cache().unwrap(),
        vec![
            ("k1".to_string(), b"one".to_vec()),
            ("k2".to_string(), b"two".to_vec())
        ]
    );

    let new = index
        .update_cache("k1", |old| {
            assert_eq!(old, Some(&b"one"[..]));
            Some(b"uno".to_vec())
        })
        .unwrap();
    assert_eq!(new.unwrap(), b"uno");
    let new = index
        .update_cache("k3", |old| {
            assert_eq!(old, None);
            Some(b"tres".to_vec())
        })
        .unwrap();
    assert_eq!(new.unwrap(), b"tres");
    assert_eq!(index.update_cache("k3", |_| None).unwrap(), None);
    assert_eq!(index.get_cache("k3").unwrap(), None);

    assert!(index.delete_cache("k2").unwrap());
    assert!(!index.delete_cache("k2").unwrap());
    assert_eq!(index.list_cache().unwrap().len(), 1);
}

#[test]
fn blob_sources() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(&dir.path().join("index.redb")).unwrap();
    let digest = format!("sha256:{}", "b".repeat(64));
    assert_eq!(index.blob_source(&digest).unwrap(), None);
    index
        .set_blob_source(&digest, "docker.io/library/alpine")
        .unwrap();
    index.set_blob_source(&digest, "ghcr.io/acme/base").unwrap();
    assert_eq!(
        index.blob_source(&digest).unwrap().as_deref(),
        Some("ghcr.io/acme/base")
    );
    assert!(index.delete_blob_source(&digest).unwrap());
    assert_eq!(index.blob_source(&digest).unwrap(), None);
}

#[test]
fn values_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "c".repeat(64));
    {
        let root = Root::open(dir.path()).unwrap();
        root.index.put_tag("app:latest", b"image record").unwrap();
        root.index.put_cache("key", b"solver record").unwrap();
        root.index.set_blob_source(&digest, "quay.io/x/y").unwrap();
    }
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(
        root.index.get_tag("app:latest").unwrap().unwrap(),
        b"image record"
    );
    assert_eq!(
        root.index.get_cache("key").unwrap().unwrap(),
        b"solver record"
    );
    assert_eq!(
        root.index.blob_source(&digest).unwrap().as_deref(),
        Some("quay.io/x/y")
    );
}

/// Two handles on one file in one process behave as two processes would (redb's locks are
/// per open file description): each sees the other's commits.
#[test]
fn two_handles_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.redb");
    let a = Index::open(&path).unwrap();
    let b = Index::open(&path).unwrap();
    a.put_tag("from-a", b"1").unwrap();
    assert_eq!(b.get_tag("from-a").unwrap().unwrap(), b"1");
    b.put_cache("from-b", b"2").unwrap();
    assert_eq!(a.get_cache("from-b").unwrap().unwrap(), b"2");
}

#[test]
fn a_file_that_is_not_an_index_is_a_useful_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.redb");
    std::fs::write(&path, b"this is not a redb database, it is a text file").unwrap();
    let err = Index::open(&path).err().expect("opening garbage must fail");
    match &err {
        CacheError::Index { path: p, message } => {
            assert_eq!(p, &path);
            assert!(message.starts_with("opening: "), "{message}");
        }
        other => panic!("expected an index error, got {other:?}"),
    }
    assert!(err.to_string().contains("index.redb"), "{err}");
}

#[test]
fn an_exclusive_holder_is_reported_not_hung_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.redb");
    // A program that opens the file in redb's default (exclusive) mode.
    let _exclusive = redb::Database::create(&path).unwrap();
    let err = Index::open(&path).err().expect("must be refused");
    let message = err.to_string();
    assert!(message.contains("another process"), "{message}");
}

/// The solver's threads share one `Index`: a write transaction waits for the other thread's.
#[test]
fn threads_share_one_index() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(&dir.path().join("index.redb")).unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..50 {
                    index
                        .update_cache("n", |old| {
                            let n = old.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
                            Some((n + 1).to_le_bytes().to_vec())
                        })
                        .unwrap();
                }
            });
        }
    });
    let n = index.get_cache("n").unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(n.try_into().unwrap()), 100);
}

/// A run that only reads (a no-op rebuild) leaves the file as it found it: the index is opened
/// read-only until the first write, so redb neither marks it in use nor syncs it on close.
/// The first write then opens it for writing, and later reads see that write.
#[test]
fn reading_writes_nothing_and_the_first_write_opens_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.redb");
    {
        let index = Index::open(&path).unwrap();
        index.put_tag("app:1", b"one").unwrap();
        index
            .put_cache_many(&[("k".into(), b"v".to_vec())])
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    {
        let index = Index::open(&path).unwrap();
        assert_eq!(index.get_tag("app:1").unwrap().unwrap(), b"one");
        assert_eq!(index.get_cache("k").unwrap().unwrap(), b"v");
        // Writing what is there already is no write either.
        assert_eq!(
            index
                .put_cache_changed(&[("k".into(), b"v".to_vec())])
                .unwrap(),
            0
        );
    }
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a read-only run changed the file"
    );

    let index = Index::open(&path).unwrap();
    index.put_tag("app:1", b"two").unwrap();
    assert_eq!(index.get_tag("app:1").unwrap().unwrap(), b"two");
    assert_eq!(
        index
            .put_cache_changed(&[("k".into(), b"v".to_vec()), ("k2".into(), b"w".to_vec())])
            .unwrap(),
        1
    );
    assert_eq!(index.get_cache("k2").unwrap().unwrap(), b"w");
}
