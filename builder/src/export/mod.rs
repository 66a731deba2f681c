//! Export: image config + manifest for a built image, layer compression (gzip, streamed,
//! digests of both streams remembered per diff id so a second export never compresses again),
//! and OCI image layouts (a directory or a tar). Knows images and blobs, not builds.

pub mod docker;
pub mod local;
pub mod manifest;
pub mod push;

pub use manifest::{
    ManifestBlobs, MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_MANIFEST,
};
