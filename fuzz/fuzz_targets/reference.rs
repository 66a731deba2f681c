//! `reference::Reference::parse` and `parse_docker_ref` on any string.
//!
//! Invariants: never a panic; a parsed reference prints (`Display`, `familiar`, `name`) to
//! strings that parse back to the same reference (the familiar form: unless docker's own
//! short form is ambiguous); `parse_docker_ref` accepts exactly what
//! `parse` accepts, and its result has a tag or a digest but not both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reference::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Reference::parse(s);
    let docker = Reference::parse_docker_ref(s);
    assert_eq!(
        parsed.is_ok(),
        docker.is_ok(),
        "parse and parse_docker_ref disagree on {s:?}: {parsed:?} vs {docker:?}"
    );
    if let Err(e) = &parsed {
        // Every error names its input.
        assert_eq!(e.input(), s);
        let _ = e.to_string();
        return;
    }
    let r = parsed.unwrap();
    let shown = r.to_string();
    let again = Reference::parse(&shown)
        .unwrap_or_else(|e| panic!("{s:?} parsed as {shown:?}, which does not parse: {e}"));
    assert_eq!(again, r, "{s:?} -> {shown:?} parses to something else");

    // The familiar form drops `docker.io/`, so (as in docker) it reads back the same only
    // when the path's first component does not look like a domain itself
    // (`docker.io/a.b/c` shows as `a.b/c`, a name on the registry `a.b`, or an invalid one),
    // and when it is not 64 hex digits, which docker reserves for image IDs.
    let familiar = r.familiar();
    let first = r.path().split('/').next().unwrap_or("");
    let is_id = familiar.len() == 64 && familiar.bytes().all(|b| b.is_ascii_hexdigit());
    let ambiguous = is_id
        || r.domain() == "docker.io"
            && r.path().contains('/')
            && (first == "localhost" || first.contains(['.', ':']));
    if !ambiguous {
        let again = Reference::parse(&familiar)
            .unwrap_or_else(|e| panic!("{s:?}: familiar form {familiar:?} does not parse: {e}"));
        assert_eq!(
            again, r,
            "{s:?}: familiar form {familiar:?} parses to something else"
        );
    }

    let name = r.name();
    let bare = Reference::parse(&name)
        .unwrap_or_else(|e| panic!("{s:?}: name {name:?} does not parse: {e}"));
    assert_eq!((bare.domain(), bare.path()), (r.domain(), r.path()));
    assert_eq!((bare.tag(), bare.digest()), (None, None));

    let d = docker.unwrap();
    assert!(
        d.tag().is_some() != d.digest().is_some(),
        "parse_docker_ref({s:?}) = {d:?}: wants exactly one of tag and digest"
    );
    assert_eq!((d.domain(), d.path()), (r.domain(), r.path()));
    let shown = d.to_string();
    assert_eq!(
        Reference::parse(&shown).as_ref(),
        Ok(&d),
        "{s:?}: {shown:?}"
    );
    assert_eq!(
        r.clone().with_default_tag().with_default_tag(),
        r.with_default_tag()
    );
});
