//! Lowering's view of images: the local store first, then the registry. A tag in the store
//! stands until `--pull`, which asks the registry what the tag points at now and pulls only when
//! that changed (as `docker build --pull`). Digest references are taken from the store when
//! present, else fetched by digest. Every answer is pinned by manifest digest, so the solver
//! uses exactly the image lowering saw.

use super::pull::pull_image_lazy;
use super::{
    for_platform, get_image, has_layer, image_platform, platform_fits, pull_image, remote_layer,
    store_name, PullProgress, StoreError, StoredImage,
};
use crate::events::Event;
use cache::Root;
use graph::resolve::{ImageResolver, ResolveError, ResolvedImage};
use graph::Platform;
use registry::{Client, Reference};
use std::collections::HashMap;

pub struct RegistryResolver<'a> {
    pub root: &'a Root,
    /// None: local store only (an image not there is an error naming `pallet pull`).
    pub client: Option<&'a Client>,
    /// `--pull`: re-check tags with the registry.
    pub pull: bool,
    pub events: &'a (dyn Fn(Event) + Sync),
    /// Uncompressed sizes a build cache knows, by diff id: an image whose missing layers are
    /// all known is pulled lazily (manifest and config; layers when a step needs them).
    pub lazy: Option<&'a HashMap<String, u64>>,
}

impl RegistryResolver<'_> {
    /// The stored image for `reference`, pulling it if needed.
    pub fn image(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<StoredImage, StoreError> {
        let key = store_name(reference);
        // A multi-platform image answers with its child for the platform.
        let local =
            get_image(self.root, &key)?.map(|img| for_platform(&img, platform).unwrap_or(img));
        // A pulled image whose layers are gone (a lazy pull's remote records pruned) is
        // pulled again.
        let local_fits = |img: &StoredImage| {
            platform_matches(img, platform)
                && img
                    .layers
                    .iter()
                    .all(|d| has_layer(self.root, d) || remote_layer(self.root, d).is_some())
        };
        match (&local, self.client) {
            // A digest names one content: what the store has is it.
            (Some(img), _) if reference.digest().is_some() && local_fits(img) => {
                return Ok(img.clone())
            }
            (Some(img), _) if !self.pull && local_fits(img) => return Ok(img.clone()),
            (Some(img), Some(client)) if local_fits(img) && img.repo_digest.is_some() => {
                let current = client
                    .head_manifest(reference)
                    .map_err(StoreError::registry(format!(
                        "checking {reference} for --pull"
                    )))?;
                if current.as_deref() == img.repo_digest.as_deref() {
                    return Ok(img.clone());
                }
            }
            (_, None) => {
                return Err(StoreError::Layer(match local {
                    Some(_) => format!(
                        "image {key} in the local store is not for platform {platform}, and no registry client is configured"
                    ),
                    None => format!(
                        "image {key} is not in the local store: pull it with `pallet pull {}` or import a root file tree with `pallet import`",
                        reference.familiar()
                    ),
                }))
            }
            _ => {}
        }
        let client = self.client.expect("handled above");
        let name = format!("[internal] pull {}", reference.familiar());
        (self.events)(Event::Started { name: name.clone() });
        let started = std::time::Instant::now();
        let progress = PullProgress {
            name: name.clone(),
            events: self.events,
        };
        let lazy = match self.lazy {
            Some(sizes) => pull_image_lazy(self.root, client, reference, platform, sizes),
            None => Ok(None),
        };
        let pulled = match lazy {
            Ok(Some(img)) => {
                (self.events)(Event::Log {
                    name: name.clone(),
                    line: "manifest and config only: the build cache knows every layer".into(),
                });
                Ok(img)
            }
            Ok(None) => pull_image(self.root, client, reference, platform, &progress),
            Err(e) => Err(e),
        };
        match pulled {
            Ok(img) => {
                (self.events)(Event::Done {
                    name,
                    seconds: started.elapsed().as_secs_f64(),
                });
                Ok(img)
            }
            Err(e) => {
                (self.events)(Event::Failed {
                    name,
                    message: e.to_string(),
                });
                Err(match local {
                    None => StoreError::PullFailed {
                        key: key.to_string(),
                        source: Box::new(e),
                    },
                    Some(_) => e,
                })
            }
        }
    }
}

/// Images imported or built here carry the platform in their config; an empty field matches,
/// and so do arm64 and arm64/v8.
fn platform_matches(img: &StoredImage, platform: &Platform) -> bool {
    platform_fits(&image_platform(img), platform)
}

impl ImageResolver for RegistryResolver<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, ResolveError> {
        let parsed = Reference::parse(reference).map_err(|e| ResolveError::new(reference, e))?;
        let image = self
            .image(&parsed, platform)
            .map_err(|e| ResolveError::new(reference, e))?;
        Ok(Some(ResolvedImage {
            reference: format!("{}@{}", store_name(&parsed), image.manifest_digest),
            image: image.config,
        }))
    }
}
