//! Rootless mode's way in: as a normal user, a command that uses the store runs in a child
//! that entered a user namespace (`userns`), and this process only waits for it. As root (and inside the
//! namespace, where pallet is uid 0) nothing happens here but one geteuid.

use super::{Cli, CliError, Commands};
use crate::build::IsolationMode;
use crate::userns;
use std::process::ExitCode;

/// Some(exit code) when the command ran in a user namespace (this is the parent that waited),
/// or could not when `--isolation rootless` asked for it; None: go on here (as root, in the
/// namespace's child, or without it, which the command's own errors explain).
pub(super) fn enter(cli: &Cli) -> Option<ExitCode> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return None;
    }
    let isolation = match &cli.command {
        Commands::Build(args) => args.isolation,
        Commands::Run(args) => args.isolation,
        Commands::Import(_)
        | Commands::Images
        | Commands::Tag(_)
        | Commands::Inspect(_)
        | Commands::Save(_)
        | Commands::Prune { .. }
        | Commands::Du
        | Commands::Doctor
        | Commands::History(_)
        | Commands::Pull(_)
        | Commands::Push(_) => IsolationMode::Auto,
        // No store, or already inside (the settle helper); binfmt_misc is the host's.
        Commands::Completion(_)
        | Commands::Binfmt(_)
        | Commands::Login(_)
        | Commands::Logout(_)
        | Commands::Debug(_)
        | Commands::InternalSettleStore { .. } => return None,
    };
    if matches!(isolation, IsolationMode::Root | IsolationMode::Chroot) {
        return None; // Their own errors say why they cannot work as a normal user.
    }
    // Inside, pallet is uid 0: the store a normal user has by default is named before going in.
    let mut env = Vec::new();
    if cli.root.is_none() && std::env::var_os("PALLET_ROOT").is_none_or(|v| v.is_empty()) {
        env.push(("PALLET_ROOT".into(), cache::Root::default_path().into()));
    }
    match userns::enter(&env) {
        Ok(userns::Side::Parent(code)) => Some(ExitCode::from(u8::try_from(code).unwrap_or(255))),
        Ok(userns::Side::Inside) => None,
        Err(why) if isolation == IsolationMode::Rootless => {
            let mut err = CliError::msg(format!("isolation rootless cannot work here: {why}"));
            if let Commands::Run(_) = cli.command {
                err = err.with_exit_code(super::run::PALLET_FAILED);
            }
            eprint!("{}", err.render());
            Some(err.exit_code())
        }
        Err(why) => {
            userns::remember(why);
            None
        }
    }
}
