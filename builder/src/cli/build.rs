//! `pallet build`: docker build's flags. Today it parses and lowers (so every Dockerfile error
//! shows now), then says plainly that executing the graph is not built yet.

use super::{input, render, FrontendArgs};
use clap::Args;
use std::process::ExitCode;

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
    /// Progress output: auto (tty on a terminal, else plain), tty, plain, json
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Dry run: say which steps the cache has and why the others would run; builds nothing
    #[arg(long)]
    pub explain: bool,
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
    /// Set a label on the image (KEY=VALUE)
    #[arg(long)]
    pub label: Vec<String>,
    /// Path to an OCI runtime (default: runc on PATH)
    #[arg(long)]
    pub runtime: Option<String>,
    /// Layer compression (gzip, zstd[,level=N])
    #[arg(long)]
    pub compression: Option<String>,
    /// With SOURCE_DATE_EPOCH set, clamp file times in the layers to it (default true)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub rewrite_timestamp: bool,
    /// Manifest media types for --push: oci (default) or docker
    #[arg(long = "push-format", default_value = "oci", value_name = "oci|docker")]
    pub push_format: String,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: BuildArgs, root: Option<std::path::PathBuf>) -> Result<ExitCode, String> {
    let mode = crate::progress::Mode::parse(&args.progress).map_err(|e| format!("error: {e}\n"))?;
    if args.push && args.tags.is_empty() {
        return Err(
            "error: --push needs a name to push to\n  = help: add -t REGISTRY/NAME:TAG\n".into(),
        );
    }
    let mut secrets = std::collections::HashMap::new();
    for spec in &args.secret {
        let (id, source) =
            crate::build::SecretSource::parse(spec).map_err(|e| format!("error: {e}\n"))?;
        secrets.insert(id, source);
    }
    let ssh_specs = args
        .ssh
        .iter()
        .map(|s| crate::build::SshSpec::parse(s).map_err(|e| format!("error: {e}\n")))
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
    let mut tags = Vec::new();
    for t in &args.tags {
        let r = registry::Reference::parse_docker_ref(t)
            .map_err(|e| format!("error: invalid -t {t}: {e}\n"))?;
        tags.push(r.to_string());
    }
    let mut outputs = args
        .outputs
        .iter()
        .map(|o| crate::build::parse_output(o).map_err(|e| format!("error: {e}\n")))
        .collect::<Result<Vec<_>, _>>()?;
    // `--compression` for every image output that did not choose one, and for --push.
    let compression = match &args.compression {
        Some(c) => Some(crate::export::docker::Compression::Custom(
            codec::Compression::parse(c).map_err(|e| format!("error: --compression: {e}\n"))?,
        )),
        None => None,
    };
    if let Some(c) = compression {
        use crate::build::OutputSpec;
        use crate::export::docker::Compression;
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
    let unnamed_image = outputs
        .iter()
        .any(|o| matches!(o, crate::build::OutputSpec::Image { names, .. } if names.is_empty()));
    if unnamed_image && tags.is_empty() {
        return Err(
            "error: --output type=image|registry needs a name\n  = help: add name=REGISTRY/NAME:TAG to the output, or -t\n"
                .into(),
        );
    }
    super::require_root("pallet build")?;
    let ignore = context::dockerignore::Matcher::new(&loaded.options.dockerignore)
        .map_err(|e| format!("error: .dockerignore: {e}\n"))?;
    let push = if args.push {
        Some(crate::export::push::PushOptions {
            media_types: super::registry::media_types(&args.push_format)?,
            compression: compression.unwrap_or(crate::export::docker::Compression::Gzip),
        })
    } else {
        None
    };
    let client = args.registry.client()?;
    let root = super::open_root(root)?;
    let mut locals = std::collections::BTreeMap::from([(
        "context".to_string(),
        crate::build::LocalDir {
            // Absolute: runc resolves a relative bind-mount source against its bundle dir.
            dir: std::fs::canonicalize(&args.frontend.context).map_err(|e| {
                format!(
                    "error: build context {}: {e}\n  = help: give an existing directory\n",
                    args.frontend.context
                )
            })?,
            ignore: Some(ignore),
        },
    )]);
    super::named_context::apply(
        &args.build_contexts,
        Some(&root),
        &mut loaded.options,
        &mut locals,
    )?;
    if args.explain {
        return super::explain::run(&root, &loaded, &args.frontend.context, locals, mode);
    }
    // Agents for key files run until the build ends (dropped with `agents`).
    let agents = crate::build::SshAgents::start(&ssh_specs).map_err(|e| format!("error: {e}\n"))?;
    let req = crate::build::BuildRequest {
        dockerfile: &loaded.parsed,
        lower: loaded.options.clone(),
        locals,
        tags,
        outputs,
        runtime: args.runtime.as_deref().map(std::path::PathBuf::from),
        secrets,
        ssh: agents.sockets(),
        rewrite_timestamp: args.rewrite_timestamp,
        dockerfile_path: super::explain::dockerfile_identity(&loaded, &args.frontend.context),
        registry: Some(&client),
        pull: args.pull,
        push,
    };
    let started = std::time::Instant::now();
    let printer = crate::progress::stderr_printer(mode);
    let result = crate::build::build(&root, &req, &|e| printer.event(e));
    let summary = super::explain::summary(&root, &result, started);
    crate::store::close_and_settle(root);
    printer.finish(&summary);
    drop(agents);
    match result {
        Ok(done) => {
            render::warnings(&done.warnings, &loaded.name);
            for (reference, digest) in &done.pushed {
                eprintln!("pallet: pushed {reference}@{digest}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(crate::build::BuildError::Frontend(e)) => Err(e.render(&loaded.name, &loaded.text)),
        Err(e) => Err(format!("error: {e}\n")),
    }
}
