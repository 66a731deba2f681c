//! What a build tells the CI pipeline it runs in, as buildx does: `--iidfile` (the image id),
//! `--metadata-file` (a JSON object with buildx's keys) and `-q` (the image id alone on
//! standard output). A later signing or deploy step reads the digests from them.

use super::error::{CliError, Context};
use crate::build::BuildResult;
use crate::store::MEDIA_MANIFEST;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The flags that ask for a report.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    pub iidfile: Option<PathBuf>,
    pub metadata_file: Option<PathBuf>,
    pub quiet: bool,
}

/// What the build produced, as the pipeline is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The image id: the config's digest (what `docker build --iidfile` writes).
    pub config_digest: String,
    /// The manifest: the one the registry got when pushed, else the one the store tagged.
    pub manifest: Manifest,
    /// The names the image was tagged or pushed with.
    pub names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Report {
    /// The report of `done`; `root` gives the size of the stored manifest when nothing was
    /// pushed.
    pub fn new(root: &cache::Root, done: &BuildResult, tags: &[String]) -> Report {
        let manifest = match done.pushed.first() {
            Some(p) => Manifest {
                media_type: p.media_type.clone(),
                digest: p.digest.clone(),
                size: p.size,
            },
            // A multi-platform build's result is its index.
            None if done.image.index.is_some() => {
                let digest = done
                    .image
                    .index
                    .as_ref()
                    .map(|i| i.digest.clone())
                    .unwrap_or_default();
                let size = root.blobs.read(&digest).map_or(0, |b| b.len() as u64);
                Manifest {
                    media_type: crate::store::MEDIA_INDEX.to_string(),
                    digest,
                    size,
                }
            }
            None => {
                let digest = done.image.manifest_digest.clone();
                let size = root
                    .blobs
                    .path(&digest)
                    .ok()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0, |m| m.len());
                Manifest {
                    media_type: MEDIA_MANIFEST.to_string(),
                    digest,
                    size,
                }
            }
        };
        let mut names: Vec<String> = tags.to_vec();
        for p in &done.pushed {
            if !names.contains(&p.name) {
                names.push(p.name.clone());
            }
        }
        Report {
            config_digest: done.image.config_digest.clone(),
            manifest,
            names,
        }
    }

    /// buildx's `--metadata-file` object.
    pub fn metadata(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "containerimage.config.digest".into(),
            json!(self.config_digest),
        );
        object.insert(
            "containerimage.descriptor".into(),
            json!({
                "mediaType": self.manifest.media_type,
                "digest": self.manifest.digest,
                "size": self.manifest.size,
            }),
        );
        object.insert("containerimage.digest".into(), json!(self.manifest.digest));
        if !self.names.is_empty() {
            object.insert("image.name".into(), json!(self.names.join(",")));
        }
        Value::Object(object)
    }
}

/// Writes what `requests` ask for.
pub fn write(requests: &Requests, report: &Report) -> Result<(), CliError> {
    if let Some(path) = &requests.iidfile {
        write_file(path, report.config_digest.as_bytes(), "--iidfile")?;
    }
    if let Some(path) = &requests.metadata_file {
        let text = serde_json::to_vec_pretty(&report.metadata()).expect("JSON serializes");
        write_file(path, &text, "--metadata-file")?;
    }
    if requests.quiet {
        println!("{}", report.config_digest);
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, so a reader never sees half.
fn write_file(path: &Path, bytes: &[u8], flag: &str) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.pallet-{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("cannot write {flag} {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_has_buildx_keys() {
        let report = Report {
            config_digest: "sha256:c".into(),
            manifest: Manifest {
                media_type: MEDIA_MANIFEST.into(),
                digest: "sha256:m".into(),
                size: 42,
            },
            names: vec![
                "docker.io/library/a:1".into(),
                "docker.io/library/a:2".into(),
            ],
        };
        let v = report.metadata();
        assert_eq!(v["containerimage.config.digest"], "sha256:c");
        assert_eq!(v["containerimage.digest"], "sha256:m");
        assert_eq!(v["containerimage.descriptor"]["size"], 42);
        assert_eq!(v["containerimage.descriptor"]["mediaType"], MEDIA_MANIFEST);
        assert_eq!(
            v["image.name"],
            "docker.io/library/a:1,docker.io/library/a:2"
        );
    }
}
