//! A multi-platform build (`--platform linux/amd64,linux/arm64`): the Dockerfile lowered once
//! per platform, the graphs merged (identical vertices, such as a `FROM
//! --platform=$BUILDPLATFORM` stage's steps that do not use the target's args, are one vertex
//! and run once), solved in one pass over the store and the cache, then one image per platform
//! under an image index in every output; `--cache-to` exports every platform's steps. Also the
//! emulation check every build makes before its
//! first step: a RUN for a foreign platform needs a usable binfmt_misc handler.

use super::{
    add_inline_cache, attest_image, export_caches, finish_config, image_outputs, name_subjects,
    BuildError, BuildRequest, BuildResult, OutputSpec, Pushed,
};
use crate::binfmt;
use crate::events::Event;
use crate::export::docker::{self, ArchiveOptions, ImageOptions};
use crate::export::local::{write_local, write_tar};
use crate::export::push::push_index;
use crate::remote_cache::Imported;
use crate::solver::{solve_roots, SolveOptions};
use crate::store::{put_image, store_uncompressed, Attestation, LayerRecord, StoredImage};
use cache::Root;
use frontend::ast::Dockerfile;
use frontend::lower::{lower, platform, LowerOptions, Lowered};
use graph::image::Image;
use graph::resolve::ImageResolver;
use graph::{Graph, Op, Platform};
use registry::Reference;

/// Checks, before anything runs, that every platform the graph's RUN steps emulate has a
/// usable binfmt_misc handler (`$PALLET_BINFMT_DIR`, else /proc/sys/fs/binfmt_misc).
pub(super) fn check_emulation(graph: &Graph) -> Result<(), BuildError> {
    let mut checked: Vec<&Platform> = Vec::new();
    for v in &graph.vertices {
        let Op::Exec(e) = &v.op else { continue };
        let Some(p) = &e.platform else { continue };
        if checked.contains(&p) {
            continue;
        }
        binfmt::check(&p.to_string(), &binfmt::dir())?;
        checked.push(p);
    }
    Ok(())
}

/// `[build 2/4] RUN ...` -> `[linux/arm64 build 2/4] RUN ...`, as buildx names the steps of a
/// multi-platform build (internal steps keep their names).
fn platform_name(name: &str, p: &Platform) -> String {
    match name.strip_prefix('[') {
        Some(rest) if !rest.starts_with("internal]") => format!("[{p} {rest}"),
        _ => name.to_string(),
    }
}

/// Adds `from`'s vertices to `into` (each platform's progress names carry the platform); a
/// vertex already there (same op, same inputs) stays one, named by the first platform.
fn merge(into: &mut Graph, from: &Graph, p: &Platform) {
    for v in &from.vertices {
        if into.get(v.digest.as_str()).is_none() {
            let mut v = v.clone();
            v.meta.name = platform_name(&v.meta.name, p);
            into.vertices.push(v);
        }
    }
}

/// The directory name of a platform in a `type=local` output, as buildx writes it
/// (`linux_arm64`, `linux_arm_v7`).
pub fn local_dir_name(p: &Platform) -> String {
    p.to_string().replace('/', "_")
}

/// The Dockerfile lowered for each platform, and the graphs merged (steps named with their
/// platform; identical vertices once).
pub(super) fn lower_all(
    dockerfile: &Dockerfile,
    options: &LowerOptions,
    platforms: &[Platform],
    resolver: &dyn ImageResolver,
) -> Result<(Graph, Vec<(Platform, Lowered)>), BuildError> {
    let mut lowered: Vec<(Platform, Lowered)> = Vec::new();
    let mut graph = Graph::default();
    for p in platforms {
        let mut opts = options.clone();
        opts.platform = Some(p.clone());
        let l =
            lower(dockerfile, &opts, resolver).map_err(|e| BuildError::Frontend(Box::new(e)))?;
        merge(&mut graph, &l.graph, p);
        lowered.push((p.clone(), l));
    }
    Ok((graph, lowered))
}

pub(super) fn build_platforms(
    root: &Root,
    req: &BuildRequest,
    resolver: &dyn ImageResolver,
    mut opts: SolveOptions,
    imported: &Imported,
    started: std::time::SystemTime,
    events: &(dyn Fn(Event) + Sync),
) -> Result<BuildResult, BuildError> {
    if req
        .outputs
        .iter()
        .any(|o| matches!(o, OutputSpec::Docker { .. }))
    {
        return Err(BuildError::DockerManifestList);
    }
    let (graph, mut lowered) = lower_all(req.dockerfile, &req.lower, &req.platforms, resolver)?;
    req.allow
        .check(&graph)
        .map_err(|e| BuildError::Frontend(Box::new(e)))?;
    check_emulation(&graph)?;
    let epoch = lowered[0].1.epoch;
    let roots: Vec<graph::Digest> = lowered.iter().map(|(_, l)| l.root.clone()).collect();
    opts.epoch = epoch.filter(|_| req.rewrite_timestamp);
    let solved = solve_roots(&graph, &roots, &opts, events).map_err(|e| {
        crate::store::remove_own_temporaries(&root.path);
        // The lint warnings come with the error, as a single-platform build's do.
        BuildError::Solve(e).with_warnings(&lowered[0].1.warnings)
    })?;
    let mut children = Vec::new();
    let mut configs: Vec<Built> = Vec::new();
    for ((p, l), layers) in lowered.iter().zip(&solved.layers) {
        let config = finish_config(l.image.clone(), layers, l.epoch);
        let stored = store_uncompressed(root, &config, layers)?;
        let mut attestations = attest_image(req, &l.graph, &l.root, &solved.chains, started);
        if let Some(spec) = &req.sbom {
            attestations.extend(super::sbom::scan(
                spec,
                &l.graph,
                &l.root,
                &platform::host(),
                resolver,
                &opts,
                events,
            )?);
        }
        children.push(StoredImage {
            name: String::new(),
            manifest_digest: stored.manifest.digest.clone(),
            config_digest: stored.config.digest.clone(),
            config: config.clone(),
            layers: layers.iter().map(|l| l.diff_id.clone()).collect(),
            repo_digest: None,
            index: None,
            attestations: attestations.clone(),
        });
        configs.push((p.clone(), config, layers.clone(), attestations));
    }
    let name = req.tags.first().cloned().unwrap_or_default();
    let image = crate::store::store_index(root, &name, children, &platform::host())?;
    for t in &req.tags {
        put_image(
            root,
            &StoredImage {
                name: t.clone(),
                ..image.clone()
            },
        )?;
    }
    for out in &req.outputs {
        write_output(root, out, &configs, req, epoch)?;
    }
    let mut to_push = image_outputs(root, req, &image)?;
    name_subjects(&mut to_push);
    add_inline_cache(root, req, &solved.steps, &mut to_push)?;
    let mut pushed: Vec<Pushed> = Vec::new();
    for (name, opts) in &to_push {
        let client = req.registry.ok_or(BuildError::NoRegistry)?;
        let target = Reference::parse(name).map_err(|source| BuildError::PushName {
            name: name.clone(),
            source,
        })?;
        let report = push_index(root, client, &image, &target, opts, events)?;
        if !pushed.iter().any(|p| &p.name == name) {
            pushed.push(Pushed {
                name: name.clone(),
                digest: report.digest,
                media_type: report.media_type,
                size: report.size,
            });
        }
    }
    export_caches(
        root,
        req,
        &solved.steps,
        &opts.cache_mounts,
        imported,
        events,
    )?;
    let (_, first) = lowered.swap_remove(0);
    Ok(BuildResult {
        image,
        pushed,
        warnings: first.warnings,
        stages: first.stages,
    })
}

/// One platform's image: its config, layers and attestations.
type Built = (Platform, Image, Vec<LayerRecord>, Vec<Attestation>);

/// One output of a multi-platform build: an OCI layout with the index, or one directory per
/// platform for `type=local` (and in the tar of `type=tar`).
fn write_output(
    root: &Root,
    out: &OutputSpec,
    images: &[Built],
    req: &BuildRequest,
    epoch: Option<i64>,
) -> Result<(), BuildError> {
    let (dest, image, tar) = match out {
        OutputSpec::Local { dest } => {
            for (p, _, layers, attestations) in images {
                let dir = dest.join(local_dir_name(p));
                write_local(root, layers, &dir)?;
                super::provenance::write_local(&dir, attestations)?;
            }
            return Ok(());
        }
        OutputSpec::Tar { dest } => {
            let trees: Vec<(String, &[LayerRecord])> = images
                .iter()
                .map(|(p, _, layers, _)| (local_dir_name(p), layers.as_slice()))
                .collect();
            write_tar(root, &trees, dest)?;
            return Ok(());
        }
        OutputSpec::Image { .. } => return Ok(()),
        OutputSpec::Docker { .. } => return Err(BuildError::DockerManifestList),
        OutputSpec::Oci { dest, tar, image } => (dest, image, *tar),
    };
    let names: Vec<String> = if image.names.is_empty() {
        req.tags.first().cloned().into_iter().collect()
    } else {
        image.names.clone()
    };
    let opts = image.clone();
    let mut exported = Vec::new();
    for (p, config, layers, _) in images {
        let config_bytes = serde_json::to_vec(config).expect("config serializes");
        // Each platform's manifest gets the annotations for every platform and its own.
        let opts = ImageOptions {
            annotations: req.annotations.for_platform(&p.to_string()),
            ..opts.clone()
        };
        exported.push((
            docker::store_image(root, &config_bytes, layers, &opts)?,
            p.clone(),
        ));
    }
    let attestations: Vec<&[Attestation]> = images.iter().map(|b| b.3.as_slice()).collect();
    let index = docker::store_attested_index(
        root,
        exported,
        &attestations,
        &names,
        opts.media_types,
        &req.annotations,
    )?;
    let archive = ArchiveOptions {
        names: &names,
        docker_manifest: false,
        mtime: epoch.unwrap_or(0).max(0) as u64,
    };
    if tar {
        docker::write_archive_to(root, &index, &archive, dest)?;
    } else {
        docker::write_archive_dir(root, &index, &archive, dest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_carry_the_platform_as_buildx_prints_them() {
        let p = platform::parse("linux/arm64").unwrap();
        assert_eq!(
            platform_name("[build 2/4] RUN make", &p),
            "[linux/arm64 build 2/4] RUN make"
        );
        assert_eq!(
            platform_name("[internal] load build context", &p),
            "[internal] load build context"
        );
        assert_eq!(
            local_dir_name(&platform::parse("linux/arm/v7").unwrap()),
            "linux_arm_v7"
        );
    }
}
