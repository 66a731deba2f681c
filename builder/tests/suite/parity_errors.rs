//! Our own version of BuildKit's frontend/dockerfile/errors_test.go (testErrorsSourceMap):
//! every failed build points at the Dockerfile lines of the instruction that failed, whether
//! it failed while the Dockerfile was read or while its step ran.

use crate::parity_kit::{can_run, Kit};

#[test]
fn errors_point_at_their_dockerfile_lines() {
    if !can_run("parity_errors") {
        return;
    }
    let kit = Kit::new();
    let cases: &[(&str, &str, &[usize])] = &[
        ("invalidenv", "from busybox\nenv", &[2]),
        ("invalidrun", "from scratch\nenv foo=bar\nrun what", &[3]),
        (
            "invalidcopy",
            "from scratch\nenv foo=bar\ncopy foo bar\nenv bar=baz",
            &[3],
        ),
        (
            "invalidflag",
            "from scratch\nenv foo=bar\ncopy --foo=bar / /\nenv bar=baz",
            &[3],
        ),
        (
            "invalidcopyfrom",
            "from scratch\nenv foo=bar\ncopy --from=invalid.invalid/x foo bar\nenv bar=baz",
            &[3],
        ),
        (
            "invalidmultiline",
            "from scratch\nrun wh\\\nat\nenv bar=baz",
            &[2, 3],
        ),
    ];
    for (name, dockerfile, lines) in cases {
        let ctx = kit.context(name, dockerfile, &[]);
        let err = kit.error(&ctx, &[]);
        let file = format!("{}/Dockerfile:{}", ctx.display(), lines[0]);
        assert!(err.contains(&file), "{name}: no {file} in:\n{err}");
        let source: Vec<&str> = dockerfile.lines().collect();
        for l in *lines {
            let shown = format!("{l} | {}", source[l - 1]);
            assert!(err.contains(&shown), "{name}: no {shown:?} in:\n{err}");
        }
    }
}
