//! `pallet binfmt [--install PLATFORM...]`: mounts binfmt_misc when it is not mounted, shows
//! the registered handlers, and registers the QEMU handlers of qemu-user-static (from
//! /usr/lib/binfmt.d) for the platforms asked for, so RUN steps and `pallet run` for a foreign
//! platform work without a helper image.

use super::error::CliError;
use super::require_root;
use crate::binfmt::{self, CONF_DIR, DEFAULT_DIR};
use clap::Args;
use frontend::lower::platform;
use std::path::Path;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct BinfmtArgs {
    /// Register the QEMU handler for each PLATFORM (os/arch, e.g. linux/arm64; repeatable or
    /// comma-separated) unless a usable one is registered
    #[arg(long, value_name = "PLATFORM", value_delimiter = ',', num_args = 1..)]
    pub install: Vec<String>,
}

pub fn run(args: BinfmtArgs) -> Result<ExitCode, CliError> {
    require_root("pallet binfmt")?;
    let dir = Path::new(DEFAULT_DIR);
    let mounted = binfmt::ensure_mounted(dir).map_err(|e| {
        CliError::msg(format!("cannot mount binfmt_misc: {e}"))
            .with_help("pallet binfmt needs root on the host (or a privileged container)")
    })?;
    if mounted {
        println!("mounted binfmt_misc at {DEFAULT_DIR}");
    }
    for spec in &args.install {
        let p = platform::parse(spec).map_err(|e| {
            CliError::context("invalid --install", e).with_help("write os/arch, e.g. linux/arm64")
        })?;
        if platform::runs_natively(&p, &platform::host()) {
            println!("{p}: runs natively, no handler needed");
            continue;
        }
        if binfmt::check(&p.to_string(), dir).is_ok() {
            println!("{p}: already registered");
            continue;
        }
        let qemu = binfmt::qemu_arch(&p.architecture, &p.variant)
            .ok_or_else(|| CliError::msg(format!("pallet has no QEMU handler name for {p}")))?;
        let handler = dir.join(format!("qemu-{qemu}"));
        if handler.exists() {
            // Registered without F, or disabled: it must go before the new line can register.
            std::fs::write(&handler, "-1").map_err(|e| {
                CliError::context(
                    format!("removing the unusable handler {}", handler.display()),
                    e,
                )
            })?;
        }
        let line = binfmt::conf_line(Path::new(CONF_DIR), qemu).map_err(|e| {
            CliError::context(format!("reading {CONF_DIR}/qemu-{qemu}.conf"), e).with_help(
                "install the package qemu-user-static (apt-get install qemu-user-static)",
            )
        })?;
        if let Err(e) = binfmt::register(dir, &line) {
            // Another process may have registered it meanwhile (EEXIST): fine if usable.
            if binfmt::check(&p.to_string(), dir).is_err() {
                return Err(CliError::context(
                    format!("registering qemu-{qemu} in {DEFAULT_DIR}/register"),
                    e,
                ));
            }
        }
        binfmt::check(&p.to_string(), dir).map_err(|e| CliError::msg(e.to_string()))?;
        println!("{p}: registered qemu-{qemu}");
    }
    println!(
        "{:<20} {:<8} {:<6} INTERPRETER",
        "HANDLER", "ENABLED", "FLAGS"
    );
    for h in binfmt::registered(dir) {
        println!(
            "{:<20} {:<8} {:<6} {}",
            h.name,
            if h.enabled { "yes" } else { "no" },
            h.flags,
            h.interpreter
        );
    }
    Ok(ExitCode::SUCCESS)
}
