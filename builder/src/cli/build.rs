//! `pallet build`: docker build's flags, checked and turned into a [`BuildRequest`]; then the
//! build (or `--explain`'s dry run) with progress on standard error, its warnings, and what was
//! pushed.

use super::call::Call;
use super::error::{CliError, Context};
use super::input::{self, Loaded};
use super::registry::{compression_flag, media_types, RegistryArgs};
use super::{explain, limits, named_context, open_root, pipeline, render, FrontendArgs};
use crate::build::{
    build, git_info, parse_attest, parse_output, parse_provenance_flag, parse_sbom_flag, Attest,
    AttestSpecError, BuildError, BuildRequest, CacheFrom, CacheTo, Entitlements, IsolationMode,
    LocalDir, OutputSpec, ProvenanceRequest, SbomSpec, SecretSource, SshAgents, SshSpec,
};
use crate::export::annotations::Annotations;
use crate::export::docker::{Compression, MediaTypes};
use crate::export::push::PushOptions;
use crate::progress::{stderr_printer, Mode};
use crate::store::close_and_settle;
use clap::Args;
use context::dockerignore::Matcher;
use frontend::lower::platform;
use registry::Reference;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub frontend: FrontendArgs,
    /// Name and optionally a tag (name:tag)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Output destination (type=oci|docker|local|image,dest=...)
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Progress output: auto (tty on a terminal, else plain), tty, plain, json, quiet or none
    #[arg(long, default_value = "auto", env = "BUILDKIT_PROGRESS")]
    pub progress: String,
    /// Only print the image id (the config digest) on standard output; no progress
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image id (the config digest) to FILE
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write the build result's digests to FILE as JSON, with buildx's keys
    /// (containerimage.digest, containerimage.config.digest, containerimage.descriptor,
    /// image.name)
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Dry run: say which steps the cache has and why the others would run; builds nothing
    #[arg(long)]
    pub explain: bool,
    /// Instead of building, print what buildx's --call prints: targets (the stages) or
    /// outline (the build args, secrets and ssh agents the target needs); ,format=json for
    /// BuildKit's JSON
    #[arg(
        long,
        default_value = "build",
        value_name = "build|targets|outline[,format=json]"
    )]
    pub call: String,
    /// Always check for a newer version of base images
    #[arg(long)]
    pub pull: bool,
    /// Push the image after building (needs -t)
    #[arg(long)]
    pub push: bool,
    /// Secret to expose to RUN --mount=type=secret (id=ID,src=PATH or id=ID,env=VAR)
    #[arg(long)]
    pub secret: Vec<String>,
    /// SSH agent or keys to expose to RUN --mount=type=ssh and git sources over ssh
    /// (default|ID[=SOCKET|KEY[,KEY...]]; default alone: $SSH_AUTH_SOCK)
    #[arg(long, value_name = "ID[=SOCKET|KEY,...]")]
    pub ssh: Vec<String>,
    /// Additional build context: NAME=DIR (a local directory), NAME=oci-layout://DIR[:TAG] or
    /// NAME=docker-image://REF; `FROM NAME`, `COPY --from=NAME`, `--mount from=NAME` use it
    #[arg(
        long = "build-context",
        value_name = "NAME=DIR|oci-layout://DIR|docker-image://REF"
    )]
    pub build_contexts: Vec<String>,
    /// Grant an entitlement: security.insecure (RUN --security=insecure runs with every
    /// capability and no seccomp filter), network.host (accepted: the default network)
    #[arg(long, value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Add an OCI annotation to the manifest written out or pushed: [TYPE:]KEY=VALUE, TYPE
    /// manifest (default) or manifest-descriptor
    #[arg(long, value_name = "[TYPE:]KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Set a label on the image (KEY=VALUE)
    #[arg(long)]
    pub label: Vec<String>,
    /// Size of /dev/shm in RUN steps (bytes, or with a unit: 128m, 1g); default 64m
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A resource limit for RUN steps, as docker's: NAME=SOFT[:HARD] (nofile=1024:4096)
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// How steps run: auto (the best this machine allows), root, rootless or chroot
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub isolation: IsolationMode,
    /// Path to an OCI runtime (default: runc on PATH)
    #[arg(long)]
    pub runtime: Option<String>,
    /// Layer compression (gzip, zstd[,level=N])
    #[arg(long)]
    pub compression: Option<String>,
    /// With SOURCE_DATE_EPOCH set, clamp file times in the layers to it (default true)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub rewrite_timestamp: bool,
    /// Export the build cache: type=registry,ref=REF or type=local,dest=DIR, with
    /// [,mode=min|max][,compression=gzip|zstd][,oci-mediatypes=true|false][,ignore-error=true]
    #[arg(
        long = "cache-to",
        value_name = "type=registry,ref=REF|type=local,dest=DIR,..."
    )]
    pub cache_to: Vec<String>,
    /// Use a build cache exported with --cache-to (type=registry,ref=REF, a bare REF, or
    /// type=local,src=DIR); several are tried in order
    #[arg(
        long = "cache-from",
        value_name = "type=registry,ref=REF|type=local,src=DIR"
    )]
    pub cache_from: Vec<String>,
    /// Attach a SLSA provenance attestation to the image (buildx's shorthand for --attest
    /// type=provenance): true (mode=min), false, or mode=min|max[,version=v1|v0.2]
    /// [,builder-id=ID][,reproducible=true]. Off by default
    #[arg(long, value_name = "true|false|mode=min|max,...")]
    pub provenance: Option<String>,
    /// An attestation to attach: type=provenance[,mode=min|max][,version=v1|v0.2]
    /// [,builder-id=ID], or type=sbom[,generator=IMAGE]
    #[arg(long, value_name = "type=provenance,...")]
    pub attest: Vec<String>,
    /// Attach an SBOM attestation made by a scanner image (buildx's shorthand for --attest
    /// type=sbom): true (docker/buildkit-syft-scanner), false, or generator=IMAGE[,KEY=VALUE]
    #[arg(long, value_name = "true|false|generator=IMAGE")]
    pub sbom: Option<String>,
    /// Manifest media types for --push: oci (default) or docker
    #[arg(long = "push-format", default_value = "oci", value_name = "oci|docker")]
    pub push_format: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `--label KEY=VALUE` (or `KEY` alone: an empty value, as docker takes it); a later one wins.
fn labels(flags: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut labels = BTreeMap::new();
    for flag in flags {
        let (key, value) = flag.split_once('=').unwrap_or((flag, ""));
        if key.is_empty() {
            return Err(
                CliError::msg(format!("invalid --label \"{flag}\": the key is empty")).with_help(
                    "write --label KEY=VALUE, e.g. --label org.opencontainers.image.source=URL",
                ),
            );
        }
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

pub fn run(args: BuildArgs, root: Option<PathBuf>) -> Result<ExitCode, CliError> {
    if let Some(call) = Call::parse(&args.call)? {
        call.run(&input::load(&args.frontend)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mode = if args.quiet {
        Mode::Quiet
    } else {
        Mode::parse(&args.progress)?
    };
    let reports = pipeline::Requests {
        iidfile: args.iidfile.clone(),
        metadata_file: args.metadata_file.clone(),
        quiet: args.quiet,
    };
    if args.push && args.tags.is_empty() {
        return Err(
            CliError::msg("--push needs a name to push to").with_help("add -t REGISTRY/NAME:TAG")
        );
    }
    let allow = Entitlements::parse(&args.allow)
        .map_err(|e| CliError::from(e).with_help("e.g. --allow security.insecure"))?;
    let secrets = secrets(&args.secret)?;
    let ssh_specs = args
        .ssh
        .iter()
        .map(|s| SshSpec::parse(s).map_err(CliError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let mut loaded = input::load(&args.frontend)?;
    // As buildx does: SOURCE_DATE_EPOCH from the environment becomes the build arg.
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        loaded
            .options
            .build_args
            .entry("SOURCE_DATE_EPOCH".into())
            .or_insert(epoch);
    }
    loaded.options.labels = labels(&args.label)?;
    if let Some(size) = &args.shm_size {
        loaded.options.shm_size = limits::shm_size(size)?;
    }
    loaded.options.ulimits = args
        .ulimit
        .iter()
        .map(|u| limits::ulimit(u))
        .collect::<Result<_, _>>()?;
    let tags = tags(&args.tags)?;
    let (outputs, compression) = outputs(&args.outputs, args.compression.as_deref())?;
    let unnamed_image = outputs
        .iter()
        .any(|o| matches!(o, OutputSpec::Image { names, .. } if names.is_empty()));
    if unnamed_image && tags.is_empty() {
        return Err(CliError::msg("--output type=image|registry needs a name")
            .with_help("add name=REGISTRY/NAME:TAG to the output, or -t"));
    }
    let ignore = Matcher::new(&loaded.options.dockerignore).context(".dockerignore")?;
    let (provenance, sbom) = attestations(&args, &loaded)?;
    // An index is made for several platforms, and for attestations (one platform or more).
    let makes_index = !loaded.platforms.is_empty() || provenance.is_some() || sbom.is_some();
    let mut annotations = Annotations::parse(&args.annotation, makes_index)?;
    if loaded.platforms.is_empty() {
        // One platform: `manifest[PLATFORM]:` annotations for it apply, others are dropped.
        let target = loaded
            .options
            .platform
            .clone()
            .unwrap_or_else(platform::host);
        annotations = annotations.for_platform(&target.to_string());
    }
    let push = if args.push {
        Some(PushOptions {
            media_types: media_types(&args.push_format)?,
            compression: compression.unwrap_or(Compression::Gzip),
            annotations: annotations.clone(),
            subject_names: Vec::new(),
        })
    } else {
        None
    };
    check_annotations(&annotations, &outputs, push.as_ref())?;
    let cache_from = args
        .cache_from
        .iter()
        .map(|s| CacheFrom::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            CliError::from(e).with_help("e.g. --cache-from type=registry,ref=REGISTRY/NAME:cache")
        })?;
    let cache_to = args
        .cache_to
        .iter()
        .map(|s| CacheTo::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            CliError::from(e)
                .with_help("e.g. --cache-to type=registry,ref=REGISTRY/NAME:cache,mode=max")
        })?;
    let client = args.registry.client()?;
    let root = open_root(root)?;
    let locals = locals(&args, ignore, &root, &mut loaded)?;
    if args.explain {
        return explain::run(&root, &loaded, &args.frontend.context, locals, mode);
    }
    // Agents for key files run until the build ends (dropped with `agents`).
    let agents = SshAgents::start(&ssh_specs)?;
    let req = BuildRequest {
        dockerfile: &loaded.parsed,
        lower: loaded.options.clone(),
        locals,
        tags,
        outputs,
        runtime: args.runtime.as_deref().map(PathBuf::from),
        isolation: args.isolation,
        secrets,
        ssh: agents.sockets(),
        rewrite_timestamp: args.rewrite_timestamp,
        dockerfile_path: explain::dockerfile_identity(&loaded, &args.frontend.context),
        registry: Some(&client),
        pull: args.pull,
        push,
        allow,
        annotations,
        platforms: loaded.platforms.clone(),
        cache_from,
        cache_to,
        provenance,
        sbom,
    };
    execute(root, &req, &loaded, mode, agents, &reports)
}

/// Runs the build with progress on standard error, then reports its warnings and pushes.
fn execute(
    root: cache::Root,
    req: &BuildRequest,
    loaded: &Loaded,
    mode: Mode,
    agents: SshAgents,
    reports: &pipeline::Requests,
) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let printer = stderr_printer(mode);
    let result = build(&root, req, &|e| printer.event(e));
    let summary = explain::summary(&root, &result, started);
    let report = result
        .as_ref()
        .ok()
        .map(|done| pipeline::Report::new(&root, done, &req.tags));
    close_and_settle(root);
    printer.finish(&summary);
    drop(agents);
    match result {
        Ok(done) => {
            render::warnings(&done.warnings, &loaded.name);
            if mode != Mode::Quiet {
                for pushed in &done.pushed {
                    eprintln!("pallet: pushed {}@{}", pushed.name, pushed.digest);
                }
            }
            if let Some(report) = &report {
                pipeline::write(reports, report)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let (e, warnings) = e.split_warnings();
            render::warnings(&warnings, &loaded.name);
            match e {
                BuildError::Frontend(e) => Err(loaded.error(*e)),
                BuildError::Solve(e) => Err(loaded.step_error(e)),
                e => Err(e.into()),
            }
        }
    }
}

/// Annotations go on manifests pallet writes out with OCI media types; anything else would
/// drop them without a word.
fn check_annotations(
    annotations: &Annotations,
    outputs: &[OutputSpec],
    push: Option<&PushOptions>,
) -> Result<(), CliError> {
    if annotations.is_empty() {
        return Ok(());
    }
    let mut takers = 0;
    let mut docker_types = push.is_some_and(|p| p.media_types == MediaTypes::Docker);
    takers += usize::from(push.is_some());
    for out in outputs {
        match out {
            OutputSpec::Oci { image, .. } | OutputSpec::Docker { image, .. } => {
                takers += 1;
                docker_types |= image.media_types == MediaTypes::Docker;
            }
            OutputSpec::Image {
                push: true,
                media_types,
                ..
            } => {
                takers += 1;
                docker_types |= *media_types == MediaTypes::Docker;
            }
            _ => {}
        }
    }
    if docker_types {
        return Err(
            CliError::msg("cannot export annotations with \"oci-mediatypes=false\"").with_help(
                "Docker's manifest format has no annotations: use OCI media types \
                 (--push-format oci, -o type=oci, oci-mediatypes=true)",
            ),
        );
    }
    if takers == 0 {
        return Err(
            CliError::msg("--annotation needs an output that writes a manifest out")
                .with_help("add --push, -o type=oci,dest=FILE or -o type=image,push=true"),
        );
    }
    Ok(())
}

/// `--attest`, `--provenance` and `--sbom` (the shorthands win over `--attest`, as in buildx);
/// returns the provenance request and the SBOM generator.
fn attestations(
    args: &BuildArgs,
    loaded: &Loaded,
) -> Result<(Option<ProvenanceRequest>, Option<SbomSpec>), CliError> {
    let help = |e: AttestSpecError| {
        CliError::from(e).with_help(
            "e.g. --provenance mode=max, --attest type=provenance,mode=min,version=v0.2, \
             --sbom generator=IMAGE",
        )
    };
    let mut spec = None;
    let mut sbom = None;
    for a in &args.attest {
        match parse_attest(a).map_err(help)? {
            Attest::Provenance(p) => spec = p,
            Attest::Sbom(s) => sbom = s,
        }
    }
    if let Some(v) = &args.sbom {
        sbom = parse_sbom_flag(v).map_err(help)?;
    }
    if let Some(v) = &args.provenance {
        spec = parse_provenance_flag(v).map_err(help)?;
    }
    let Some(spec) = spec else {
        return Ok((None, sbom));
    };
    // buildx sends the Dockerfile's base name (a Dockerfile from stdin is `Dockerfile`).
    let filename = std::path::Path::new(&loaded.name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n != "<stdin>")
        .unwrap_or_else(|| "Dockerfile".into());
    // As buildx: the git checkout the context (and the Dockerfile) are in.
    let context = std::path::Path::new(&args.frontend.context);
    let dockerfile_dir = match args.frontend.file.as_deref() {
        None => Some(context.to_path_buf()),
        Some("-") => None,
        Some(f) => std::path::Path::new(f).parent().map(|p| {
            if p.as_os_str().is_empty() {
                ".".into()
            } else {
                p.to_path_buf()
            }
        }),
    };
    let provenance = ProvenanceRequest {
        spec,
        filename,
        dockerfile: loaded.text.clone(),
        vcs: git_info(context, dockerfile_dir.as_deref()),
    };
    Ok((Some(provenance), sbom))
}

/// `--secret id=ID,src=PATH|env=VAR`, by id.
fn secrets(specs: &[String]) -> Result<HashMap<String, SecretSource>, CliError> {
    let mut secrets = HashMap::new();
    for spec in specs {
        let (id, source) = SecretSource::parse(spec)?;
        secrets.insert(id, source);
    }
    Ok(secrets)
}

/// `-t NAME[:TAG]`, normalized as docker does.
fn tags(raw: &[String]) -> Result<Vec<String>, CliError> {
    raw.iter()
        .map(|t| {
            Reference::parse_docker_ref(t)
                .map(|r| r.to_string())
                .with_context(|| format!("invalid -t {t}"))
        })
        .collect()
}

/// `-o SPEC`, each image output given `--compression` unless it chose one; returns the
/// outputs and `--compression` (for `--push`).
fn outputs(
    specs: &[String],
    flag: Option<&str>,
) -> Result<(Vec<OutputSpec>, Option<Compression>), CliError> {
    let mut outputs = specs
        .iter()
        .map(|o| parse_output(o).map_err(CliError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let compression = flag.map(compression_flag).transpose()?;
    if let Some(c) = compression {
        for out in &mut outputs {
            match out {
                OutputSpec::Oci { image, .. } | OutputSpec::Docker { image, .. }
                    if image.compression == Compression::Gzip =>
                {
                    image.compression = c
                }
                OutputSpec::Image { compression, .. } if *compression == Compression::Gzip => {
                    *compression = c
                }
                _ => {}
            }
        }
    }
    Ok((outputs, compression))
}

/// The directories the build reads: the context (with its `.dockerignore`) and each
/// `--build-context`, which also names images and local sources in the lowering options.
fn locals(
    args: &BuildArgs,
    ignore: Matcher,
    root: &cache::Root,
    loaded: &mut Loaded,
) -> Result<BTreeMap<String, LocalDir>, CliError> {
    // Absolute: runc resolves a relative bind-mount source against its bundle dir.
    let dir = std::fs::canonicalize(&args.frontend.context).map_err(|e| {
        CliError::context(format!("build context {}", args.frontend.context), e)
            .with_help("give an existing directory")
    })?;
    let mut locals = BTreeMap::from([(
        "context".to_string(),
        LocalDir {
            dir,
            ignore: Some(ignore),
        },
    )]);
    named_context::apply(
        &args.build_contexts,
        Some(root),
        &mut loaded.options,
        &mut locals,
    )?;
    Ok(locals)
}
