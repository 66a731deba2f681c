//! The CLI's own documentation: completion scripts for bash, zsh and fish that know every
//! subcommand, and an Examples block in every command's `--help`. No root needed.

use std::process::Command;

fn pallet(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pallet"))
        .args(args)
        .output()
        .expect("run pallet");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The subcommands `pallet --help` lists.
fn subcommands() -> Vec<String> {
    let (ok, help) = pallet(&["--help"]);
    assert!(ok);
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
        let (ok, script) = pallet(&["completion", shell]);
        assert!(ok && !script.is_empty(), "{shell}");
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell} completion lacks {c}");
        }
        assert!(
            script.contains("progress"),
            "{shell} completion lacks build's flags"
        );
    }
    let (ok, _) = pallet(&["completion", "tcsh"]);
    assert!(!ok, "an unknown shell is an error");
}

#[test]
fn every_command_has_examples() {
    for c in subcommands() {
        let (ok, help) = pallet(&[&c, "--help"]);
        assert!(ok, "{c} --help");
        assert!(
            help.contains("Example"),
            "`pallet {c} --help` has no examples:\n{help}"
        );
    }
    for c in ["parse", "graph"] {
        let (_, help) = pallet(&["debug", c, "--help"]);
        assert!(help.contains("Example"), "debug {c}:\n{help}");
    }
}
