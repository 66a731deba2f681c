//! The CLI's own documentation: completion scripts for bash, zsh and fish that know every
//! subcommand, and an Examples block in every command's `--help`. No root needed.

use testkit::{pallet, text};

/// The subcommands `pallet --help` lists.
fn subcommands() -> Vec<String> {
    let help = pallet!().arg("--help").ok();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn completion_scripts_know_every_subcommand() {
    let commands = subcommands();
    for expected in ["build", "history", "completion", "inspect"] {
        assert!(commands.iter().any(|c| c == expected), "{commands:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = pallet!().args(["completion", shell]).ok();
        assert!(!script.is_empty(), "{shell}");
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell} completion lacks {c}");
        }
        assert!(
            script.contains("progress"),
            "{shell} completion lacks build's flags"
        );
    }
    // An unknown shell is an error.
    pallet!().args(["completion", "tcsh"]).fails();
}

#[test]
fn every_command_has_examples() {
    for c in subcommands() {
        let help = pallet!().arg(&c).arg("--help").ok();
        assert!(
            help.contains("Example"),
            "`pallet {c} --help` has no examples:\n{help}"
        );
    }
    for c in ["parse", "graph"] {
        let help = text(&pallet!().args(["debug", c, "--help"]).output().stdout);
        assert!(help.contains("Example"), "debug {c}:\n{help}");
    }
}

/// Flags a CI pipeline passes that pallet cannot honour yet are refused plainly, and a
/// command line that does not parse exits 125 as docker's does (help still exits 0).
#[test]
fn unsupported_and_malformed_flags_say_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let ctx = dir.path().to_str().unwrap();
    // A list of platforms builds (multiplatform.rs); a bad entry in it is named.
    let out = pallet!()
        .args(["build", "--platform", "linux/amd64,linux/z80", ctx])
        .output();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("\"linux/z80\": unknown operating system"),
        "{err}"
    );
    assert!(err.contains("linux/amd64,linux/arm64"), "{err}");
    let out = pallet!()
        .args(["build", "--progress", "rawjson", ctx])
        .output();
    assert!(
        text(&out.stderr).contains("rawjson"),
        "{}",
        text(&out.stderr)
    );
    assert!(!out.status.success());
    let out = pallet!().args(["build", "--no-such-flag", ctx]).output();
    assert_eq!(out.status.code(), Some(125));
    let out = pallet!().args(["build", "--help"]).output();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--metadata-file"));
}
