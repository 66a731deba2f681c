//! Tests for image reference parsing and normalization. The tables follow the cases of
//! distribution/reference's normalize_test.go and reference_test.go, written out as our own
//! data with docker's normalization applied (every result has a domain).

use registry::{Reference, ReferenceError};

const HEX64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const BUSYBOX_DIGEST: &str =
    "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";

/// Error kinds, by name, so tables stay readable.
fn kind(e: &ReferenceError) -> &'static str {
    match e {
        ReferenceError::InvalidFormat { .. } => "format",
        ReferenceError::RemoteNameNotLowercase { .. } => "lowercase",
        ReferenceError::NameContainsUppercase { .. } => "uppercase",
        ReferenceError::HexIdentifier { .. } => "hex",
        ReferenceError::NameTooLong { .. } => "long",
        ReferenceError::DigestInvalidFormat { .. } => "digest-format",
        ReferenceError::DigestInvalidLength { .. } => "digest-length",
        ReferenceError::DigestUnsupported { .. } => "digest-unsupported",
    }
}

fn parse(s: &str) -> Reference {
    Reference::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn parse_err(s: &str) -> &'static str {
    match Reference::parse(s) {
        Ok(r) => panic!("{s:?} should fail, got {r}"),
        Err(e) => {
            assert_eq!(e.input(), s);
            kind(&e)
        }
    }
}

/// Every valid reference survives printing and re-parsing, in both forms. (As in docker, the
/// familiar form of `docker.io/library/<64 hex>` is the bare hex, which reads as an image ID.)
fn assert_round_trips(r: &Reference) {
    assert_eq!(&parse(&r.to_string()), r, "full form of {r}");
    let familiar = r.familiar();
    if familiar.len() == 64 && familiar.bytes().all(|b| b.is_ascii_hexdigit()) {
        assert_eq!(parse_err(&familiar), "hex");
    } else {
        assert_eq!(parse(&familiar), *r, "familiar form {familiar} of {r}");
    }
}

/// Expands the placeholders used in tables: `{H64}` and `{H128}` are runs of `f`, `{A<n>}` is
/// `n` times `a`, `{A/127}` is `a/` 127 times, `{EMPTY}` is nothing.
fn expand(s: &str) -> String {
    let mut out = s
        .replace("{H64}", HEX64)
        .replace("{H128}", &"f".repeat(128));
    out = out
        .replace("{A/127}", &"a/".repeat(127))
        .replace("{EMPTY}", "");
    for n in [255, 256] {
        out = out.replace(&format!("{{A{n}}}"), &"a".repeat(n));
    }
    out
}

/// Lines of `INPUT => DOMAIN PATH TAG DIGEST` (`-` for none) or `INPUT => err KIND`.
fn check_parse_table(table: &str) {
    for line in table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (input, want) = line.rsplit_once(" => ").expect(line);
        let (input, want) = (expand(input), expand(want));
        let want: Vec<&str> = want.split_whitespace().collect();
        if want[0] == "err" {
            assert_eq!(parse_err(&input), want[1], "input {input:?}");
            continue;
        }
        let r = parse(&input);
        let opt = |s: &str| (s != "-").then(|| s.to_string());
        assert_eq!(r.domain(), want[0], "domain of {input:?}");
        assert_eq!(r.path(), want[1], "path of {input:?}");
        assert_eq!(
            r.tag().map(str::to_string),
            opt(want[2]),
            "tag of {input:?}"
        );
        assert_eq!(
            r.digest().map(str::to_string),
            opt(want[3]),
            "digest of {input:?}"
        );
        assert_round_trips(&r);
    }
}

/// distribution's TestReferenceParse table, normalized.
const PARSE: &str = r"
    test_com => docker.io library/test_com - -
    test.com:tag => docker.io library/test.com tag -
    test.com:5000 => docker.io library/test.com 5000 -
    test.com/repo:tag => test.com repo tag -
    test:5000/repo => test:5000 repo - -
    test:5000/repo:tag => test:5000 repo tag -
    test:5000/repo@sha256:{H64} => test:5000 repo - sha256:{H64}
    test:5000/repo:tag@sha256:{H64} => test:5000 repo tag sha256:{H64}
    {EMPTY} => err format
    :justtag => err format
    @sha256:{H64} => err format
    repo@sha256:ffffffffffffffffffffffffffffffffff => err digest-length
    validname@invaliddigest:{H64} => err digest-unsupported
    Uppercase:tag => err lowercase
    test:5000/Uppercase/lowercase:tag => err lowercase
    lowercase:Uppercase => docker.io library/lowercase Uppercase -
    domain/{A256}:tag => err long
    {A/127}a:tag-puts-this-over-max => docker.io {A/127}a tag-puts-this-over-max -
    aa/asdf$$^/aa => err format
    sub-dom1.foo.com/bar/baz/quux => sub-dom1.foo.com bar/baz/quux - -
    sub-dom1.foo.com/bar/baz/quux:some-long-tag => sub-dom1.foo.com bar/baz/quux some-long-tag -
    b.gcr.io/test.example.com/my-app:test.example.com => b.gcr.io test.example.com/my-app test.example.com -
    xn--n3h.com/myimage:xn--n3h.com => xn--n3h.com myimage xn--n3h.com -
    xn--7o8h.com/myimage:xn--7o8h.com@sha512:{H128} => xn--7o8h.com myimage xn--7o8h.com sha512:{H128}
    foo_bar.com:8080 => docker.io library/foo_bar.com 8080 -
    foo/foo_bar.com:8080 => docker.io foo/foo_bar.com 8080 -
    192.168.1.1 => docker.io library/192.168.1.1 - -
    192.168.1.1:tag => docker.io library/192.168.1.1 tag -
    192.168.1.1:5000 => docker.io library/192.168.1.1 5000 -
    192.168.1.1/repo => 192.168.1.1 repo - -
    192.168.1.1:5000/repo => 192.168.1.1:5000 repo - -
    192.168.1.1:5000/repo:5050 => 192.168.1.1:5000 repo 5050 -
    [2001:db8::1] => err format
    [2001:db8::1]:5000 => err format
    [2001:db8::1]:tag => err format
    [2001:db8::1]/repo => [2001:db8::1] repo - -
    [2001:db8:1:2:3:4:5:6]/repo:tag => [2001:db8:1:2:3:4:5:6] repo tag -
    [2001:db8::1]:5000/repo => [2001:db8::1]:5000 repo - -
    [2001:db8::1]:5000/repo:tag => [2001:db8::1]:5000 repo tag -
    [2001:db8::1]:5000/repo@sha256:{H64} => [2001:db8::1]:5000 repo - sha256:{H64}
    [2001:db8::1]:5000/repo:tag@sha256:{H64} => [2001:db8::1]:5000 repo tag sha256:{H64}
    [2001:db8::]:5000/repo => [2001:db8::]:5000 repo - -
    [::1]:5000/repo => [::1]:5000 repo - -
    [fe80::1%eth0]:5000/repo => err format
    [fe80::1%@invalidzone]:5000/repo => err format
    example.com/{A255}:tag => example.com {A255} tag -
    example.com/{A256} => err long
";

#[test]
fn parse_table() {
    check_parse_table(PARSE);
}

#[test]
fn valid_and_invalid_names() {
    // distribution's TestValidateReferenceName and TestValidateRemoteName.
    let valid = "docker/docker library/debian debian docker.io/docker/docker \
        docker.io/library/debian docker.io/debian index.docker.io/docker/docker \
        index.docker.io/library/debian index.docker.io/debian 127.0.0.1:5000/docker/docker \
        127.0.0.1:5000/library/debian 127.0.0.1:5000/debian 192.168.0.1 192.168.0.1:80 \
        192.168.0.1:8/debian 192.168.0.2:25000/debian \
        thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev \
        [fc00::1]:5000/docker [fc00::1]:5000/docker/docker \
        [fc00:1:2:3:4:5:6:7]:5000/library/debian \
        docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a \
        Docker/docker DOCKER/docker docker-rules/docker docker---rules/docker doc/docker \
        d/docker jess/t dock__er/docker";
    for name in valid.split_whitespace() {
        assert_round_trips(&parse(name));
    }
    let invalid = "https://github.com/docker/docker docker/Docker -docker -docker/docker \
        -docker.io/docker/docker docker///docker docker.io/docker/Docker \
        docker.io/docker///docker [fc00::1] [fc00::1]:5000 fc00::1:5000/debian \
        [fe80::1%eth0]:5000/debian [2001:db8:3:4::192.0.2.33]:5000/debian \
        1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a docker-/docker \
        -docker-/docker ____/____ _docker/_docker dock..er/docker dock_.er/docker \
        dock-.er/docker docker/ dock___er/docker";
    for name in invalid.split_whitespace() {
        parse_err(name);
    }
    let too_long = format!("{}/docker", "this_is_not_a_valid_namespace".repeat(9));
    assert_eq!(parse_err(&too_long), "long");
}

#[test]
fn familiar_and_full_names() {
    // distribution's TestParseRepositoryInfo: PATH DOMAIN FAMILIAR FULL [AMBIGUOUS]; every
    // spelling parses to the same reference.
    let table = r"
        fooo/bar docker.io fooo/bar docker.io/fooo/bar index.docker.io/fooo/bar
        library/ubuntu docker.io ubuntu docker.io/library/ubuntu library/ubuntu
        nonlibrary/ubuntu docker.io nonlibrary/ubuntu docker.io/nonlibrary/ubuntu
        other/library docker.io other/library docker.io/other/library
        private/moonbase 127.0.0.1:8000 127.0.0.1:8000/private/moonbase 127.0.0.1:8000/private/moonbase
        privatebase 127.0.0.1:8000 127.0.0.1:8000/privatebase 127.0.0.1:8000/privatebase
        private/moonbase example.com example.com/private/moonbase example.com/private/moonbase
        privatebase example.com example.com/privatebase example.com/privatebase
        private/moonbase example.com:8000 example.com:8000/private/moonbase example.com:8000/private/moonbase
        privatebasee example.com:8000 example.com:8000/privatebasee example.com:8000/privatebasee
        library/ubuntu-12.04-base docker.io ubuntu-12.04-base docker.io/library/ubuntu-12.04-base index.docker.io/library/ubuntu-12.04-base
        library/foo docker.io foo docker.io/library/foo docker.io/foo
        library/foo/bar docker.io library/foo/bar docker.io/library/foo/bar
        store/foo/bar docker.io store/foo/bar docker.io/store/foo/bar
        bar Foo Foo/bar Foo/bar
        bar FOO FOO/bar FOO/bar
        foo localhost localhost/foo localhost/foo
    ";
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (path, domain, familiar, full) = (f[0], f[1], f[2], f[3]);
        for input in &f[2..] {
            let r = parse(input);
            assert_eq!(r.familiar(), familiar, "familiar of {input:?}");
            assert_eq!(r.to_string(), full, "full of {input:?}");
            assert_eq!(r.name(), full, "name of {input:?}");
            assert_eq!((r.domain(), r.path()), (domain, path), "split of {input:?}");
        }
    }
}

#[test]
fn normalized_equivalents() {
    // distribution's TestParseAnyReference (named cases) and TestNormalizedSplitHostname.
    let d = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
    let table = format!(
        "redis docker.io/library/redis
        redis:latest docker.io/library/redis:latest
        docker.io/library/redis:latest docker.io/library/redis:latest
        redis@{d} docker.io/library/redis@{d}
        dmcgowan/myapp docker.io/dmcgowan/myapp
        dmcgowan/myapp:latest docker.io/dmcgowan/myapp:latest
        docker.io/mcgowan/myapp:latest docker.io/mcgowan/myapp:latest
        dmcgowan/myapp@{d} docker.io/dmcgowan/myapp@{d}
        dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9 \
            docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9
        dbcc1 docker.io/library/dbcc1
        test_com/foo docker.io/test_com/foo
        docker/migrator docker.io/docker/migrator
        test-com:8080/foo test-com:8080/foo
        xn--n3h.com:18080/foo xn--n3h.com:18080/foo
        docker.io/library/foo/bar docker.io/library/foo/bar"
    );
    for line in table.lines() {
        let (input, full) = line.trim().split_once(' ').unwrap();
        let r = parse(input);
        assert_eq!(r.to_string(), full, "input {input:?}");
        assert_eq!(r, parse(full));
        assert_eq!(
            input.parse::<Reference>().unwrap(),
            r,
            "FromStr of {input:?}"
        );
    }
    // A bare 64-hex string is an image ID, not a name.
    assert_eq!(parse_err(&d["sha256:".len()..]), "hex");
}

#[test]
fn tag_and_digest_together() {
    let short =
        "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    let r = parse(short);
    assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
    assert_eq!(r.tag(), Some("latest"));
    assert!(r.digest().is_some());
    assert_eq!(r.familiar(), short);
    assert_round_trips(&r);
}

#[test]
fn parse_docker_ref_table() {
    let d = BUSYBOX_DIGEST;
    let table = format!(
        "busybox docker.io/library/busybox:latest
        busybox:latest docker.io/library/busybox:latest
        busybox@{d} docker.io/library/busybox@{d}
        library/busybox docker.io/library/busybox:latest
        docker.io/busybox docker.io/library/busybox:latest
        docker.io/library/busybox docker.io/library/busybox:latest
        docker.io/busybox:latest docker.io/library/busybox:latest
        library/busybox:latest docker.io/library/busybox:latest
        docker.io/library/busybox:latest docker.io/library/busybox:latest
        gcr.io/library/busybox gcr.io/library/busybox:latest
        gcr.io/library/busybox:latest@{d} gcr.io/library/busybox@{d}"
    );
    for line in table.lines() {
        let (input, want) = line.trim().split_once(' ').unwrap();
        let r = Reference::parse_docker_ref(input).unwrap();
        assert_eq!(r.to_string(), want, "input {input:?}");
        assert_eq!(parse(want), r, "{want:?} should parse back");
    }
    let err = Reference::parse_docker_ref("busybox:1@sha256:bad").unwrap_err();
    assert_eq!(kind(&err), "format");
}

#[test]
fn with_default_tag_only_fills_bare_names() {
    assert_eq!(parse("busybox").with_default_tag().tag(), Some("latest"));
    assert_eq!(parse("busybox:1.36").with_default_tag().tag(), Some("1.36"));
    let digested = parse(&format!("busybox@{BUSYBOX_DIGEST}")).with_default_tag();
    assert_eq!(digested.tag(), None);
    assert_eq!(digested.digest(), Some(BUSYBOX_DIGEST));
    // parse itself never adds a tag.
    assert_eq!(parse("busybox").tag(), None);
    assert_eq!(parse("busybox").familiar(), "busybox");
    assert_eq!(
        parse("busybox").with_default_tag().familiar(),
        "busybox:latest"
    );
}

#[test]
fn edge_cases() {
    let r = parse("localhost:5000/foo");
    assert_eq!(
        (r.domain(), r.path(), r.tag()),
        ("localhost:5000", "foo", None)
    );
    assert_eq!(r.familiar(), "localhost:5000/foo");

    let r = parse("127.0.0.1:5000/a/b:t");
    assert_eq!(
        (r.domain(), r.path(), r.tag()),
        ("127.0.0.1:5000", "a/b", Some("t"))
    );

    // `localhost` alone is a Docker Hub name; followed by a path it is a registry.
    assert_eq!(
        parse("localhost").to_string(),
        "docker.io/library/localhost"
    );
    assert_eq!(parse("localhost/foo").domain(), "localhost");
    assert_eq!(
        parse("index.docker.io/foo").to_string(),
        "docker.io/library/foo"
    );

    let d = format!("sha256:{HEX64}");
    let r = parse(&format!("foo@{d}"));
    assert_eq!((r.tag(), r.digest()), (None, Some(d.as_str())));
    assert_eq!(r.to_string(), format!("docker.io/library/foo@{d}"));
    let r = parse(&format!("foo:bar@{d}"));
    assert_eq!((r.tag(), r.digest()), (Some("bar"), Some(d.as_str())));
    assert_eq!(
        Reference::parse_docker_ref(&format!("foo:bar@{d}"))
            .unwrap()
            .tag(),
        None
    );

    // Other digest algorithms.
    assert!(parse(&format!("foo@sha384:{}", "a".repeat(96)))
        .digest()
        .is_some());
    assert_eq!(parse_err(&format!("foo@sha384:{HEX64}")), "digest-length");
    assert_eq!(
        parse_err(&format!("foo@md5:{}", "a".repeat(32))),
        "digest-unsupported"
    );
    assert_eq!(
        parse_err(&format!("foo@sha256+b64:{HEX64}")),
        "digest-unsupported"
    );
    assert_eq!(
        parse_err(&format!("foo@sha256:{}", "F".repeat(64))),
        "digest-format"
    );
    assert_eq!(parse_err("foo@sha256:abc"), "format"); // fewer than 32 hex digits
    assert_eq!(
        parse_err(&format!("foo@sha256:{}", "g".repeat(64))),
        "format"
    );

    // Tags: at most 128 characters, from [\w][\w.-]*.
    assert_eq!(
        parse(&format!("foo:{}", "t".repeat(128)))
            .tag()
            .map(str::len),
        Some(128)
    );
    assert_eq!(parse_err(&format!("foo:{}", "t".repeat(129))), "format");
    assert_eq!(parse_err("foo:-tag"), "format");
    assert_eq!(parse_err("foo:.tag"), "format");
    assert_eq!(parse("foo:_t.a-g").tag(), Some("_t.a-g"));
    assert_eq!(parse_err("foo:"), "format");
    assert_eq!(parse_err("foo:a:b"), "format");

    // Empty, uppercase, tag-only, whitespace.
    assert_eq!(parse_err(""), "format");
    assert_eq!(parse_err("UPPER"), "lowercase");
    assert_eq!(parse_err(":tag"), "format");
    assert_eq!(parse_err(" busybox"), "format");
    assert_eq!(parse_err("busybox "), "format");
    assert_eq!(parse_err("a/b/"), "format");
    assert_eq!(parse_err("a@b@c"), "format");
    // An uppercase first component is read as a domain; an invalid one gives distribution's
    // plain "must be lowercase".
    assert_eq!(parse_err("Foo_Bar/x"), "uppercase");
    // Not a valid domain, though distribution would accept it with an empty domain.
    assert_eq!(parse_err("foo_bar.com/x"), "format");

    // Length limits: the path (after `library/` is added) may be 255 characters.
    assert_eq!(parse(&"a".repeat(247)).path().len(), 255);
    assert_eq!(parse_err(&"a".repeat(248)), "long");
    assert_eq!(
        parse(&format!("ghcr.io/{}", "b".repeat(255))).path().len(),
        255
    );
    assert_eq!(parse_err(&"a".repeat(100_000)), "long");
}

#[test]
fn error_messages_follow_distribution() {
    let msg = |s: &str| Reference::parse(s).unwrap_err().to_string();
    assert_eq!(
        msg("Busybox"),
        "invalid reference format: repository name (library/Busybox) must be lowercase: \"Busybox\""
    );
    assert_eq!(msg("a b"), "invalid reference format: \"a b\"");
    assert_eq!(
        msg("Foo_Bar/x"),
        "repository name must be lowercase: \"Foo_Bar/x\""
    );
    assert!(
        msg(&"a".repeat(300)).starts_with("repository name must not be more than 255 characters")
    );
    assert!(
        msg(&format!("a@sha256:{}", "f".repeat(40))).starts_with("invalid checksum digest length")
    );
    assert!(msg(&format!("a@x:{HEX64}")).starts_with("unsupported digest algorithm"));
    assert!(
        msg(&format!("a@sha256:{}", "A".repeat(64))).starts_with("invalid checksum digest format")
    );
    let hex = HEX64;
    assert!(msg(hex).starts_with(&format!(
        "invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings"
    )));
    // Control characters in the input are escaped, not printed raw.
    assert_eq!(msg("a\nb"), "invalid reference format: \"a\\nb\"");
}

#[test]
fn references_are_values() {
    use std::collections::HashSet;
    let set: HashSet<Reference> = [
        "busybox",
        "docker.io/library/busybox",
        "index.docker.io/busybox",
    ]
    .iter()
    .map(|s| parse(s))
    .collect();
    assert_eq!(set.len(), 1);
    assert_ne!(parse("busybox"), parse("busybox:latest"));
    let e = Reference::parse("UPPER").unwrap_err();
    assert_eq!(e.clone(), e);
}
