//! `pallet run`: flags -> [`crate::run::run_image`]; prints the container's output and exits
//! with its code. pallet's own failures (no such image, a bad -e or -v, runc could not start the
//! process) exit 125, as `docker run` does.

use super::error::{CliError, Context};
use super::{open_root, require_root};
use crate::binfmt;
use crate::run::{run_image, IsolationMode, ProcessFlags, RunOptions, Stream};
use crate::store::{for_platform, get_image, image_platform, platforms, StoredImage};
use clap::{Args, ValueEnum};
use frontend::lower::platform;
use registry::Reference;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const LONG_HELP: &str = "The image (name[:tag]), then the command and its arguments \
(default: the image's ENTRYPOINT and CMD). Everything after the image is the command's, flags too.

The container runs on an overlay of the image's layers whose writes are thrown away when it ends. \
Standard input is not attached (no -i/-t); the container's stdout goes to pallet's standard \
output and its stderr to pallet's standard error, as they come. SIGINT and SIGTERM are forwarded to the container; if it is still \
running --stop-timeout seconds later (or on a second signal) it is killed. pallet exits with the \
container's exit code (128+N if signal N ended it), or 125 when pallet itself failed (no such \
image, a bad -e or -v, the command could not be started).";

/// Exit code for pallet's own errors (docker run's).
pub(super) const PALLET_FAILED: u8 = 125;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Set an environment variable (KEY=VALUE, or KEY to pass pallet's own value; repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Bind-mount a host path (absolute) into the container; `:ro` makes it read-only
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volumes: Vec<String>,
    /// Run as this user (name, uid, name:group or uid:gid; default: the image's USER)
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Network: the host's (pallet's default, as for RUN) or none (only loopback)
    #[arg(long, value_enum, default_value = "host")]
    pub network: NetworkMode,
    /// Working directory in the container (default: the image's WORKDIR, else /)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Replace the image's ENTRYPOINT (and drop its CMD); "" clears it
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Accepted for docker compatibility: the container and its writes are always removed
    #[arg(long)]
    pub rm: bool,
    /// Seconds a forwarded SIGINT/SIGTERM may take to stop the container before SIGKILL
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub stop_timeout: u64,
    /// How the container runs: auto, root, rootless or chroot
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub isolation: IsolationMode,
    /// Path to an OCI runtime (default: runc on PATH)
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<String>,
    /// The platform of a multi-platform image to run (os/arch[/variant]; default: the host's
    /// when the image has it); a foreign one runs under QEMU emulation (`pallet binfmt`)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// The image (name[:tag]), then the command and its arguments (default: the image's
    /// ENTRYPOINT and CMD); stdin is not attached
    #[arg(
        long_help = LONG_HELP,
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_names = ["IMAGE", "COMMAND"]
    )]
    pub image_and_command: Vec<String>,
}

impl RunArgs {
    /// The image as given.
    pub fn image(&self) -> &str {
        &self.image_and_command[0]
    }

    /// The command after the image (empty: the image's).
    pub fn command(&self) -> &[String] {
        &self.image_and_command[1..]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetworkMode {
    /// The host's network namespace
    Host,
    /// A network namespace of its own with only `lo`
    None,
}

/// The image for `--platform` (a multi-platform image's child; default: the host's platform
/// when the image has it, else what the record holds); checks the QEMU handler for a foreign one.
fn pick_platform(image: StoredImage, wanted: Option<&str>) -> Result<StoredImage, CliError> {
    let host = platform::host();
    let picked = match wanted {
        Some(p) => {
            let p = platform::parse(p).map_err(|e| {
                CliError::context("invalid --platform", e)
                    .with_help("write os/arch, e.g. linux/arm64")
            })?;
            for_platform(&image, &p).ok_or_else(|| {
                let has: Vec<String> = platforms(&image).iter().map(|p| p.to_string()).collect();
                CliError::msg(format!(
                    "image {} has no platform {p} (it has {})",
                    image.name,
                    has.join(", ")
                ))
                .with_help("pick one of its platforms with --platform, or build it for this one")
            })?
        }
        None => for_platform(&image, &host).unwrap_or(image),
    };
    let p = image_platform(&picked);
    if !p.architecture.is_empty() && !platform::runs_natively(&p, &host) {
        binfmt::check(&p.to_string(), &binfmt::dir()).map_err(|e| {
            CliError::msg(
                e.to_string()
                    .replace("RUN steps for", "running an image for"),
            )
        })?;
    }
    Ok(picked)
}

pub fn run(args: RunArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    start(args, root).map_err(|e| e.with_exit_code(PALLET_FAILED))
}

fn start(args: RunArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    require_root("pallet run")?;
    let name = Reference::parse_docker_ref(args.image())
        .with_context(|| format!("invalid image name {}", args.image()))?
        .to_string();
    let root = open_root(root)?;
    let image = get_image(&root, &name)
        .context("reading the store")?
        .ok_or_else(|| {
            CliError::msg(format!("no image {name} in the store")).with_help(
                "`pallet images` lists the images there; make one with `pallet build -t NAME` or `pallet import`",
            )
        })?;
    let image = pick_platform(image, args.platform.as_deref())?;
    let opts = RunOptions {
        process: ProcessFlags {
            command: args.command().to_vec(),
            entrypoint: args.entrypoint,
            env: args.env,
            workdir: args.workdir,
            user: args.user,
        },
        volumes: args.volumes,
        host_network: args.network == NetworkMode::Host,
        runtime: args.runtime.map(PathBuf::from),
        isolation: args.isolation,
        stop_timeout: Duration::from_secs(args.stop_timeout),
    };
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let outcome = run_image(&root, &image, &opts, &mut |stream, data| {
        // A closed stdout (`pallet run ... | head`) must not stop the container's cleanup.
        let _ = match stream {
            Stream::Stdout => {
                let mut out = stdout.lock();
                out.write_all(data).and_then(|()| out.flush())
            }
            Stream::Stderr => stderr.lock().write_all(data),
        };
    })
    .with_context(|| format!("running {name}"))?;
    let code = outcome.exit_code();
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
