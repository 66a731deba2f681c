//! A whole build: lower the Dockerfile against the local store, solve the graph, assemble the
//! image config (diff ids, history times), tag it in the store, and write the requested
//! outputs. The CLI calls this; it holds no Dockerfile or runc logic of its own.

mod attest;
mod cancel;
mod entitlements;
mod epoch;
mod explain;
mod outputs;
mod platforms;
mod provenance;
mod sbom;
mod vcs;

pub use attest::{
    parse_attest, parse_provenance_flag, parse_sbom_flag, Attest, AttestSpecError, ProvenanceMode,
    ProvenanceSpec, SbomSpec, SlsaVersion,
};
pub use entitlements::{Entitlements, UnknownEntitlement};
pub use explain::{explain, ExplainRequest, Explained};
// What a build request is made of, from the layers below (the CLI knows only `build`).
pub use crate::exec::IsolationMode;
pub use crate::solver::{LocalDir, SecretSource, SolveError};
pub use crate::ssh::{Agents as SshAgents, SshSpec};
pub use outputs::{parse_output, OutputProblem, OutputSpec, OutputSpecError};
pub use platforms::local_dir_name;
pub use vcs::git_info;

use crate::events::Event;
use crate::exec::{Isolation, IsolationError};
use crate::export::annotations::Annotations;
use crate::export::docker::{self, ArchiveOptions};
use crate::export::local::{write_local, write_tar};
use crate::export::push::{push_index, PushOptions};
use crate::remote_cache::format::INLINE_ANNOTATION;
use crate::remote_cache::{export, inline_annotation, ExportError, Imported, Location, StepResult};
pub use crate::remote_cache::{CacheFrom, CacheSpecError, CacheTo};
use crate::solver::{solve, SolveOptions, UsedCacheMounts};
use crate::store::{
    created_now, fetch_remote, has_layer, put_image, remove_own_temporaries, store_uncompressed,
    LayerRecord, RegistryResolver, StoreError, StoredImage,
};
use cache::{CacheError, Root};
use cancel::CancelOnSignal;
use frontend::ast::Dockerfile;
use frontend::diagnostic::FrontendError;
use frontend::lint::Warning;
use frontend::lower::{lower, LowerOptions};
use graph::image::{History, Image};
use graph::time::rfc3339;
use registry::{Reference, ReferenceError};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::SystemTime;

pub struct BuildRequest<'a> {
    pub dockerfile: &'a Dockerfile,
    pub lower: LowerOptions,
    /// The directories the build reads, by local source name: `context` (the main context,
    /// with its `.dockerignore`) and each `--build-context NAME=DIR`.
    pub locals: BTreeMap<String, LocalDir>,
    /// Normalized references to tag the result with.
    pub tags: Vec<String>,
    pub outputs: Vec<OutputSpec>,
    /// `--runtime PATH`: the OCI runtime; None: `runc` on PATH.
    pub runtime: Option<PathBuf>,
    /// `--isolation`: how steps run.
    pub isolation: IsolationMode,
    /// `--secret` sources by id (values are read when a step mounts them, never stored).
    pub secrets: HashMap<String, SecretSource>,
    /// `--ssh` agent sockets by id (from [`SshAgents`], which must outlive the build).
    pub ssh: HashMap<String, PathBuf>,
    /// Clamp layer file times to SOURCE_DATE_EPOCH when it is set (`--rewrite-timestamp`).
    pub rewrite_timestamp: bool,
    /// The Dockerfile's absolute path: names its steps in the step history (cache-miss
    /// reasons); empty: no history.
    pub dockerfile_path: String,
    /// Pulls base images the store lacks; None: the local store only.
    pub registry: Option<&'a registry::Client>,
    /// `--pull`: ask the registry whether base image tags moved.
    pub pull: bool,
    /// `--push`: push every tag after the build, with these options.
    pub push: Option<PushOptions>,
    /// `--allow`: what steps may do beyond the sandbox.
    pub allow: Entitlements,
    /// `--annotation`s for every manifest the outputs write out or push.
    pub annotations: Annotations,
    /// `--platform a,b,...` with more than one platform: one image per platform under an
    /// image index (`lower.platform` is ignored then); empty or one: `lower.platform` alone.
    pub platforms: Vec<graph::Platform>,
    /// `--cache-from`: caches to look steps up in after the local store, in order.
    pub cache_from: Vec<CacheFrom>,
    /// `--cache-to`: where to export the build cache once the build (and its push) is done.
    pub cache_to: Vec<CacheTo>,
    /// `--provenance` / `--attest type=provenance`: a SLSA provenance attestation for each
    /// image, in every image output and push (None: images as they are, the default).
    pub provenance: Option<ProvenanceRequest>,
    /// `--sbom` / `--attest type=sbom`: the generator image that scans each image (None: no
    /// SBOM, the default).
    pub sbom: Option<SbomSpec>,
}

/// What a provenance attestation is asked for with, besides the build itself.
#[derive(Debug, Clone)]
pub struct ProvenanceRequest {
    pub spec: ProvenanceSpec,
    /// The Dockerfile's file name as buildx sends it (`Dockerfile`, `app.Dockerfile`).
    pub filename: String,
    /// The Dockerfile's text (recorded by mode=max).
    pub dockerfile: String,
    /// buildx's `vcs:` facts of the context's git checkout ([`git_info`]), recorded in
    /// every mode.
    pub vcs: BTreeMap<String, String>,
}

/// One name `--push` pushed, and the manifest the registry got for it.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

pub struct BuildResult {
    pub image: StoredImage,
    /// `--push`: each pushed reference and the manifest the registry has.
    pub pushed: Vec<Pushed>,
    pub warnings: Vec<Warning>,
    pub stages: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile (or the flags that drive lowering), with its location; the CLI renders
    /// it with the source line.
    #[error("{0}")]
    Frontend(#[source] Box<FrontendError>),
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// A step failed in a build whose lowering found lint warnings: they are shown before
    /// the error (BuildKit reports them whether the build succeeds or not; a CopyIgnoredFile
    /// warning explains the "not found" that follows).
    #[error("{error}")]
    Linted {
        warnings: Vec<Warning>,
        #[source]
        error: Box<BuildError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("--output type=image|registry needs a name: add name=REF or -t REF")]
    NoImageName,
    #[error("pushing needs a registry client")]
    NoRegistry,
    #[error("cannot push {name}: {source}")]
    PushName {
        name: String,
        #[source]
        source: ReferenceError,
    },
    /// No way to run steps here (runc missing, or the mode asked for cannot work).
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    /// A RUN step for a foreign platform with no usable QEMU handler.
    #[error(transparent)]
    Emulation(#[from] crate::binfmt::BinfmtError),
    /// buildx's words: the docker exporter takes one platform.
    #[error(
        "docker exporter does not currently support exporting manifest lists: -o type=docker \
         writes one platform; use -o type=oci,dest=FILE for every platform, or build once per \
         --platform for docker load"
    )]
    DockerManifestList,
    #[error("--cache-to type=inline needs --push (the cache rides in the pushed manifest)")]
    InlineNeedsPush,
    /// `--cache-to` failed (without `ignore-error=true`).
    #[error("{0}\n  (add ignore-error=true to --cache-to to build anyway when the export fails)")]
    CacheExport(#[source] ExportError),
    /// The SBOM scan could not run or gave nothing usable.
    #[error(
        "SBOM scan with {generator} failed: {why} (the generator must follow BuildKit's SBOM \
         protocol; --sbom=false builds without one)"
    )]
    Sbom { generator: String, why: String },
}

pub fn build(
    root: &Root,
    req: &BuildRequest,
    events: &(dyn Fn(Event) + Sync),
) -> Result<BuildResult, BuildError> {
    let started = SystemTime::now();
    let isolation =
        Isolation::select(req.isolation, req.runtime.as_deref())?.check_store(&root.tmp_dir())?;
    crate::store::markers::reconcile(root, isolation.mode())?;
    events(Event::Isolation {
        mode: isolation.mode().to_string(),
        description: isolation.describe(),
    });
    // Held until the build ends: prune waits for it instead of deleting what it uses.
    let _store_lock = root.lock_for_build()?;
    let _cancel = CancelOnSignal::install(root.path.clone(), isolation.executor.clone());
    // The caches first: a base image whose layers they know is pulled lazily.
    let imported = Imported::load(req.registry, &req.cache_from, events);
    let diff_sizes = imported.diff_sizes();
    let images = RegistryResolver {
        root,
        client: req.registry,
        pull: req.pull,
        events,
        lazy: (!diff_sizes.is_empty()).then_some(&diff_sizes),
    };
    let resolver = epoch::WithSourceEpochs {
        images: &images,
        root,
        no_cache: req.lower.no_cache,
        events,
        ssh_default: req.ssh.get(crate::ssh::DEFAULT_ID).cloned(),
        offline: false,
    };
    let opts = SolveOptions {
        root,
        executor: isolation.executor.as_ref(),
        snapshotter: isolation.snapshotter.as_ref(),
        locals: req.locals.clone(),
        no_cache: req.lower.no_cache,
        epoch: None,
        secrets: req.secrets.clone(),
        ssh: req.ssh.clone(),
        dockerfile: req.dockerfile_path.clone(),
        compress: outputs::background_compression(&req.outputs, req.push.as_ref())
            .or(req.cache_to.first().map(|t| t.compression)),
        cache_from: (!imported.is_empty()).then_some(&imported),
        registry: req.registry,
        cache_mounts: Default::default(),
    };
    if req.platforms.len() > 1 {
        return platforms::build_platforms(root, req, &resolver, opts, &imported, started, events);
    }
    let lowered = lower(req.dockerfile, &req.lower, &resolver)
        .map_err(|e| BuildError::Frontend(Box::new(e)))?;
    req.allow
        .check(&lowered.graph)
        .map_err(|e| BuildError::Frontend(Box::new(e)))?;
    platforms::check_emulation(&lowered.graph)?;
    let opts = SolveOptions {
        epoch: lowered.epoch.filter(|_| req.rewrite_timestamp),
        ..opts
    };
    let solved = solve(&lowered.graph, &lowered.root, &opts, events).map_err(|e| {
        // Every step has ended: what they left (pending snapshots whose diff could not be
        // written, on a full disk) must not stay.
        remove_own_temporaries(&root.path);
        BuildError::Solve(e).with_warnings(&lowered.warnings)
    })?;
    let layers = solved.layers;
    let config = finish_config(lowered.image.clone(), &layers, lowered.epoch);
    let stored = store_uncompressed(root, &config, &layers)?;
    let name = req.tags.first().cloned().unwrap_or_default();
    let mut attestations =
        attest_image(req, &lowered.graph, &lowered.root, &solved.chains, started);
    if let Some(spec) = &req.sbom {
        attestations.extend(sbom::scan(
            spec,
            &lowered.graph,
            &lowered.root,
            &frontend::lower::platform::host(),
            &resolver,
            &opts,
            events,
        )?);
    }
    let image = StoredImage {
        name: name.clone(),
        manifest_digest: stored.manifest.digest.clone(),
        config_digest: stored.config.digest.clone(),
        config: config.clone(),
        layers: layers.iter().map(|l| l.diff_id.clone()).collect(),
        repo_digest: None,
        index: None,
        attestations,
    };
    tag(root, &image, &req.tags)?;
    if req.outputs.iter().any(outputs::writes_files) {
        // The outputs read every layer's bytes: those a remote cache answered come now.
        for l in &layers {
            if !has_layer(root, &l.diff_id) {
                fetch_remote(root, req.registry, &l.diff_id, events)?;
            }
        }
    }
    for out in &req.outputs {
        write_output(
            root,
            out,
            &image,
            &layers,
            req.tags.first().map(String::as_str),
            lowered.epoch,
            &req.annotations,
        )?;
    }
    let mut to_push = image_outputs(root, req, &image)?;
    name_subjects(&mut to_push);
    add_inline_cache(root, req, &solved.steps, &mut to_push)?;
    let pushed = push_all(root, req, &image, &to_push, events)?;
    export_caches(
        root,
        req,
        &solved.steps,
        &opts.cache_mounts,
        &imported,
        events,
    )?;
    Ok(BuildResult {
        image,
        pushed,
        warnings: lowered.warnings,
        stages: lowered.stages,
    })
}

/// `--cache-to type=inline`: the cache of the image's steps rides in each pushed manifest (its
/// blobs are the image's layers in that push's compression). A multi-platform image's
/// manifests each carry every platform's image steps, so a build reading any one of them
/// (`--cache-from` the index) finds them all.
pub(super) fn add_inline_cache(
    root: &Root,
    req: &BuildRequest,
    steps: &[StepResult],
    to_push: &mut [(String, PushOptions)],
) -> Result<(), BuildError> {
    if !req.cache_to.iter().any(|t| t.location == Location::Inline) {
        return Ok(());
    }
    if to_push.is_empty() {
        return Err(BuildError::InlineNeedsPush);
    }
    for (_, opts) in to_push.iter_mut() {
        let text = inline_annotation(root, req.registry, steps, opts.compression.layers())
            .map_err(BuildError::CacheExport)?;
        opts.annotations
            .manifest
            .insert(INLINE_ANNOTATION.to_string(), text);
    }
    Ok(())
}

/// `--cache-to` (all but `type=inline`, which rides in the push), after the push: the steps'
/// records, and with `mounts=true` the cache mounts the steps ran, each locked while it is
/// packed. A failed export fails the build unless the target says `ignore-error=true`.
pub(super) fn export_caches(
    root: &Root,
    req: &BuildRequest,
    steps: &[StepResult],
    cache_mounts: &UsedCacheMounts,
    imported: &Imported,
    events: &(dyn Fn(Event) + Sync),
) -> Result<(), BuildError> {
    let used_mounts = if req.cache_to.iter().any(|t| t.mounts) {
        cache_mounts.list()
    } else {
        Vec::new()
    };
    let _mount_locks = used_mounts
        .iter()
        .map(|m| crate::solver::lock_cache_mount(&m.dir))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| StoreError::Io {
            what: "locking a cache mount to export it".into(),
            source,
        })?;
    for to in req
        .cache_to
        .iter()
        .filter(|t| t.location != Location::Inline)
    {
        if let Err(e) = export(
            root,
            req.registry,
            to,
            steps,
            &used_mounts,
            Some(imported),
            events,
        ) {
            if !to.ignore_error {
                return Err(BuildError::CacheExport(e));
            }
            events(Event::Log {
                name: format!("[internal] exporting cache ({})", to.location),
                line: format!("warning: {e} (ignore-error=true: the build goes on)"),
            });
        }
    }
    Ok(())
}

impl BuildError {
    /// This error with the lint warnings of the build's lowering, if there are any.
    fn with_warnings(self, warnings: &[Warning]) -> BuildError {
        if warnings.iter().all(|w| w.rule.is_none()) {
            return self;
        }
        BuildError::Linted {
            warnings: warnings.to_vec(),
            error: Box::new(self),
        }
    }

    /// The error itself and the lint warnings that came with it.
    pub fn split_warnings(self) -> (BuildError, Vec<Warning>) {
        match self {
            BuildError::Linted { warnings, error } => (*error, warnings),
            e => (e, Vec::new()),
        }
    }
}

/// The attestations of a single-platform build's image (`--provenance`), none without.
fn attest_image(
    req: &BuildRequest,
    graph: &graph::Graph,
    root: &graph::Digest,
    chains: &crate::solver::Chains,
    started: SystemTime,
) -> Vec<crate::store::Attestation> {
    let Some(p) = &req.provenance else {
        return Vec::new();
    };
    let id = provenance::invocation_id(started);
    vec![provenance::predicate(&provenance::ProvenanceInput {
        spec: &p.spec,
        filename: &p.filename,
        dockerfile: &p.dockerfile,
        lower: &req.lower,
        locals: req.locals.keys().cloned().collect(),
        graph,
        root,
        chains,
        started,
        finished: SystemTime::now(),
        invocation_id: &id,
        builder_platform: &frontend::lower::platform::host(),
        vcs: &p.vcs,
    })]
}

/// Tags `image` with each of `names` in the store.
fn tag(root: &Root, image: &StoredImage, names: &[String]) -> Result<(), StoreError> {
    for name in names {
        put_image(
            root,
            &StoredImage {
                name: name.clone(),
                ..image.clone()
            },
        )?;
    }
    Ok(())
}

/// Tags the names of `-o type=image|registry` outputs (the build's tags when they give none);
/// returns what to push: `--push`'s tags, then the names of the outputs with `push=true`,
/// each with its options.
fn image_outputs(
    root: &Root,
    req: &BuildRequest,
    image: &StoredImage,
) -> Result<Vec<(String, PushOptions)>, BuildError> {
    let mut to_push: Vec<(String, PushOptions)> = Vec::new();
    if let Some(push) = &req.push {
        to_push.extend(req.tags.iter().map(|t| (t.clone(), push.clone())));
    }
    for out in &req.outputs {
        let OutputSpec::Image {
            names,
            push,
            media_types,
            compression,
        } = out
        else {
            continue;
        };
        let names = if names.is_empty() { &req.tags } else { names };
        if names.is_empty() {
            return Err(BuildError::NoImageName);
        }
        tag(root, image, names)?;
        if *push {
            let opts = PushOptions {
                media_types: *media_types,
                compression: *compression,
                annotations: req.annotations.clone(),
                subject_names: Vec::new(),
            };
            to_push.extend(names.iter().map(|n| (n.clone(), opts.clone())));
        }
    }
    Ok(to_push)
}

/// Gives every push the names of all (an attested image's statements name each; BuildKit's
/// exporter names them all in one statement, so every tag gets the same index).
fn name_subjects(to_push: &mut [(String, PushOptions)]) {
    let mut names: Vec<String> = Vec::new();
    for (n, _) in to_push.iter() {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    for (_, opts) in to_push.iter_mut() {
        opts.subject_names = names.clone();
    }
}

/// Pushes `image` under each name of `to_push`; returns each name pushed (once) and the
/// manifest digest the registry has.
fn push_all(
    root: &Root,
    req: &BuildRequest,
    image: &StoredImage,
    to_push: &[(String, PushOptions)],
    events: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Pushed>, BuildError> {
    let mut pushed: Vec<Pushed> = Vec::new();
    for (name, opts) in to_push {
        let client = req.registry.ok_or(BuildError::NoRegistry)?;
        let target = Reference::parse(name).map_err(|source| BuildError::PushName {
            name: name.clone(),
            source,
        })?;
        // An attested image goes up under an index with its attestation manifest.
        let report = push_index(root, client, image, &target, opts, events)?;
        if !pushed.iter().any(|p| &p.name == name) {
            pushed.push(Pushed {
                name: name.clone(),
                digest: report.digest,
                media_type: report.media_type,
                size: report.size,
            });
        }
    }
    Ok(pushed)
}

/// Sets the diff ids and the times BuildKit's exporter fills in (SOURCE_DATE_EPOCH or now).
pub fn finish_config(mut config: Image, layers: &[LayerRecord], epoch: Option<i64>) -> Image {
    // BuildKit's exporter (exporter/containerimage/writer.go, normalizeLayersAndHistory)
    // appends an entry for each layer no history entry accounts for, e.g. the layer of a
    // `FROM NAME` whose NAME is a local --build-context (it has no config, so no history).
    // Its text there is the cache record's description, "created by buildkit" without one.
    let accounted = config.history.iter().filter(|h| !h.empty_layer).count();
    for _ in accounted..layers.len() {
        config.history.push(History {
            created_by: "created by buildkit".into(),
            comment: "buildkit.exporter.image.v0".into(),
            ..Default::default()
        });
    }
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    if let Some(epoch) = epoch {
        let created = rfc3339(epoch);
        for h in &mut config.history {
            if h.created.is_none() {
                h.created = Some(created.clone());
            }
        }
        config.created = Some(created);
        return config;
    }
    history_times(&mut config.history, layers);
    config.created = config.history.iter().rev().find_map(|h| h.created.clone());
    config
}

/// Times for the history entries the build added, as BuildKit's exporter sets them: a layer's
/// entry gets the time its layer was made (from the cache record: a cached rebuild keeps it,
/// so the image is the same); then every entry still without one gets the first new layer's
/// time if it comes before any, else the previous entry's. A layer with no recorded time
/// (a cache record older than this rule) counts as made now.
fn history_times(history: &mut [History], layers: &[LayerRecord]) {
    let mut layer = layers.iter();
    for h in history.iter_mut().filter(|h| !h.empty_layer) {
        let made = layer.next().and_then(|l| l.created.clone());
        if h.created.is_none() {
            h.created = made.or_else(created_now);
        }
    }
    // The first time after an entry without one (the first new layer's), else the last.
    let mut created = None;
    let mut seen_missing = false;
    for h in history.iter() {
        match &h.created {
            Some(t) => {
                created = Some(t.clone());
                if seen_missing {
                    break;
                }
            }
            None => seen_missing = true,
        }
    }
    let created = created.or_else(created_now);
    let mut current = created;
    let mut seen_missing = false;
    for h in history.iter_mut() {
        match &h.created {
            Some(t) => {
                if seen_missing {
                    current = Some(t.clone());
                }
            }
            None => {
                seen_missing = true;
                h.created = current.clone();
            }
        }
    }
}

/// Writes `out` for the built `built` (its config, and its attestations when it has any).
fn write_output(
    root: &Root,
    out: &OutputSpec,
    built: &StoredImage,
    layers: &[LayerRecord],
    tag: Option<&str>,
    epoch: Option<i64>,
    annotations: &Annotations,
) -> Result<(), BuildError> {
    let config = &built.config;
    let (dest, image, docker_manifest, tar) = match out {
        OutputSpec::Local { dest } => {
            write_local(root, layers, dest)?;
            provenance::write_local(dest, &built.attestations)?;
            return Ok(());
        }
        OutputSpec::Tar { dest } => {
            write_tar(root, &[(String::new(), layers)], dest)?;
            return Ok(());
        }
        // Tagged and pushed by `build` itself.
        OutputSpec::Image { .. } => return Ok(()),
        OutputSpec::Oci { dest, tar, image } => (dest, image, false, *tar),
        OutputSpec::Docker { dest, image } => (dest, image, true, true),
    };
    // `name=` overrides the build's tag, as in buildx.
    let names: Vec<String> = if image.names.is_empty() {
        tag.map(String::from).into_iter().collect()
    } else {
        image.names.clone()
    };
    let config_bytes = serde_json::to_vec(config).expect("config serializes");
    let mut image = image.clone();
    image.annotations = annotations.clone();
    let mut exported = docker::store_image(root, &config_bytes, layers, &image)?;
    if !built.attestations.is_empty() {
        // The image under an index, beside its attestation manifest (as BuildKit's oci
        // exporter writes an attested image).
        exported = docker::store_attested_index(
            root,
            vec![(exported, crate::store::image_platform(built))],
            &[&built.attestations],
            &names,
            image.media_types,
            annotations,
        )?;
    }
    let opts = ArchiveOptions {
        names: &names,
        docker_manifest,
        mtime: epoch.unwrap_or(0).max(0) as u64,
    };
    if tar {
        docker::write_archive_to(root, &exported, &opts, dest)?;
    } else {
        docker::write_archive_dir(root, &exported, &opts, dest)?;
    }
    Ok(())
}
