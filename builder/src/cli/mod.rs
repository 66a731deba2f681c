//! The `pallet` command line: parses arguments and calls the library. No build logic lives
//! here; every subcommand is a few lines over `build` (which drives the frontend, the solver
//! and the exporters), the store, `run` and the `registry` crate. A failure is a [`CliError`],
//! printed by its one renderer ([`CliError::render`]) in [`main`].

mod binfmt;
mod build;
mod call;
mod completion;
mod debug;
mod doctor;
mod error;
mod explain;
mod history;
mod images;
mod input;
mod inspect;
mod limits;
mod named_context;
mod namespace;
mod pipeline;
mod registry;
mod render;
mod run;
mod save;
mod stored;

use crate::progress::human_size;
use crate::store::{recover_after_restart, settle_now, sweep_leftovers};
use clap::{Args, Parser, Subcommand};
pub use error::{CliError, Context};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "pallet", version, about = "Daemonless container image builder (Dockerfile -> OCI image)", long_about = None)]
pub struct Cli {
    /// The store: images, layers and cache (default: $PALLET_ROOT, /var/lib/pallet as root,
    /// else $XDG_DATA_HOME/pallet)
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Build an image from a Dockerfile (docker build's flags)
    #[command(
        after_help = "Examples:\n  pallet build -t app:latest .\n  pallet build -f docker/train.Dockerfile --target runtime --build-arg PYVER=3.11 ."
    )]
    Build(Box<build::BuildArgs>),
    /// Show the binfmt_misc handlers; register QEMU's for foreign platforms (--install)
    #[command(
        after_help = "Examples:\n  pallet binfmt\n  pallet binfmt --install linux/arm64,linux/arm/v7"
    )]
    Binfmt(binfmt::BinfmtArgs),
    /// Make an image from a root file tree (a tar, plain or gzip), like docker import
    #[command(after_help = "Example:\n  pallet import rootfs.tar -t busybox:latest")]
    Import(images::ImportArgs),
    /// List the images in the local store
    #[command(after_help = "Example:\n  pallet images")]
    Images,
    /// Give an image another name
    #[command(after_help = "Example:\n  pallet tag app:dev registry.local/app:1.0")]
    Tag(inspect::TagArgs),
    /// Show an image's config, history and layers
    #[command(
        after_help = "Examples:\n  pallet inspect app:dev\n  pallet inspect --largest app:dev    # layers by size, largest first"
    )]
    Inspect(inspect::InspectArgs),
    /// Run a command in an image (runc; writes are discarded), like docker run --rm
    #[command(
        after_help = "Examples:\n  pallet run app:dev\n  pallet run -e DEBUG=1 -v $PWD/tests:/tests app:dev pytest /tests"
    )]
    Run(run::RunArgs),
    /// Remove the build cache and unused layers (--all: images too)
    #[command(after_help = "Examples:\n  pallet prune\n  pallet prune --all")]
    Prune {
        /// Remove all images as well
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Check the store's index; rebuild it from what verifies when it is damaged
    #[command(after_help = "Example:\n  pallet doctor")]
    Doctor,
    /// Show the store's disk usage
    #[command(after_help = "Example:\n  pallet du")]
    Du,
    /// Show an image's layers: the instruction that made each, its size and age
    #[command(
        after_help = "Examples:\n  pallet history app:dev\n  pallet history --largest app:dev    # biggest layers first\n  pallet history --no-trunc --format json app:dev"
    )]
    History(history::HistoryArgs),
    /// Print a shell completion script (bash, zsh, fish)
    #[command(
        after_help = "Examples:\n  pallet completion bash > /etc/bash_completion.d/pallet\n  pallet completion zsh > \"${fpath[1]}/_pallet\"\n  pallet completion fish > ~/.config/fish/completions/pallet.fish"
    )]
    Completion(completion::CompletionArgs),
    /// Write an image to a tar (docker save format by default)
    #[command(after_help = "Example:\n  pallet save app:dev -o app.tar")]
    Save(save::SaveArgs),
    /// Pull an image from a registry into the local store
    #[command(
        after_help = "Examples:\n  pallet pull python:3.11-slim\n  pallet pull --platform linux/arm64 registry.local:5000/base@sha256:..."
    )]
    Pull(registry::PullArgs),
    /// Push an image from the local store to a registry
    #[command(
        after_help = "Examples:\n  pallet push registry.local:5000/app:1.0\n  pallet push app:dev registry.local:5000/team/app:dev"
    )]
    Push(registry::PushArgs),
    /// Log in to a registry (stores credentials where docker does)
    #[command(
        after_help = "Examples:\n  echo \"$TOKEN\" | pallet login -u ci --password-stdin registry.local:5000\n  pallet login"
    )]
    Login(registry::LoginArgs),
    /// Log out from a registry (removes the stored credentials)
    #[command(after_help = "Example:\n  pallet logout registry.local:5000")]
    Logout(registry::LogoutArgs),
    /// Inspect what the frontend makes of a Dockerfile
    #[command(
        subcommand,
        after_help = "Examples:\n  pallet debug parse Dockerfile\n  pallet debug graph --format json ."
    )]
    Debug(debug::DebugCommand),
    /// Internal: syncfs the store's filesystem, then drop its unsynced-snapshot markers (started
    /// detached after a build, see store::durability)
    #[command(hide = true)]
    InternalSettleStore { root: PathBuf },
}

/// Flags shared by `build` and `debug graph`: what decides the graph.
#[derive(Args, Debug, Clone)]
pub struct FrontendArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; `-` reads standard input)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Target platform (os/arch[/variant]); default: the host's
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not use the cache when building
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for the RUN steps of these stages (by name; repeat or separate
    /// with commas)
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Build context directory
    #[arg(value_name = "CONTEXT")]
    pub context: String,
}

/// Opens the store (`--root`, else the default location), creating it if needed.
pub(crate) fn open_root(root: Option<PathBuf>) -> Result<cache::Root, CliError> {
    let path = root.unwrap_or_else(cache::Root::default_path);
    let root = cache::Root::open(&path).map_err(|e| {
        // An index error says what to do itself (`pallet doctor` for a damaged one); the
        // rest (a directory that cannot be made or written) is about where the store is.
        let says_what_to_do = matches!(e, cache::CacheError::Index { .. });
        let err = CliError::context(format!("cannot open the store at {}", path.display()), e);
        if says_what_to_do {
            err
        } else {
            err.with_help("pass --root DIR or set PALLET_ROOT to a writable directory")
        }
    })?;
    let recovered = recover_after_restart(&root)
        .with_context(|| format!("checking the store at {} after a restart", path.display()))?;
    if recovered.layers > 0 {
        eprintln!(
            "pallet: the machine restarted before {} layer(s) were known to be on disk: their snapshots will be unpacked again{}",
            recovered.layers,
            match recovered.damaged_blobs {
                0 => String::new(),
                n => format!("; {n} damaged blob(s) removed (the steps that made them will run again)"),
            }
        );
    }
    let (entries, bytes) = sweep_leftovers(&root);
    if entries > 0 {
        eprintln!(
            "pallet: removed {entries} leftover(s) of interrupted runs from the store ({})",
            human_size(bytes)
        );
    }
    Ok(root)
}

/// Commands that unpack layers or run containers need root, or rootless mode (the command run
/// in a user namespace, where it is uid 0: see `namespace`): say what is missing otherwise.
pub(crate) fn require_root(what: &str) -> Result<(), CliError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    let err = match crate::userns::unavailable() {
        Some(why) => CliError::msg(format!(
            "{what} needs root or rootless mode (a user namespace from /etc/subuid), and rootless mode cannot work here: {why}"
        )),
        None => CliError::msg(format!("{what} needs root: pallet is not running as root")),
    };
    Err(err.with_help("run it with sudo, or as a normal user once rootless mode has what it lacks"))
}

/// Runs the CLI; returns the process exit code. A failure is printed here, and only here.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; a usage error exits 125, as docker's.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(error::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Some(code) = namespace::enter(&cli) {
        return code;
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(report) => {
            eprint!("{}", report.render());
            report.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    let root = cli.root;
    match cli.command {
        Commands::Build(args) => build::run(*args, root),
        Commands::Import(args) => images::import(args, root),
        Commands::Images => images::list(root),
        Commands::Binfmt(args) => binfmt::run(args),
        Commands::Tag(args) => inspect::tag(args, root),
        Commands::Inspect(args) => inspect::inspect(args, root),
        Commands::Run(args) => run::run(args, root),
        Commands::Save(args) => save::save(args, root),
        Commands::Prune { all } => images::prune(all, root),
        Commands::Du => images::du(root),
        Commands::Doctor => doctor::run(root),
        Commands::History(args) => history::history(args, root),
        Commands::Completion(args) => completion::completion(args),
        Commands::Pull(args) => registry::pull(args, root),
        Commands::Push(args) => registry::push(args, root),
        Commands::Login(args) => registry::login(args),
        Commands::Logout(args) => registry::logout(args),
        Commands::Debug(cmd) => debug::run(cmd),
        Commands::InternalSettleStore { root } => {
            // Started detached after a build; nobody reads its output.
            let _ = settle_now(&root);
            Ok(ExitCode::SUCCESS)
        }
    }
}
