//! An image named on the command line: its name normalized as docker does, and its record in
//! the local store (the lookup `inspect`, `history` and `tag` share).

use super::error::{CliError, Context};
use crate::store::{get_image, StoredImage};
use registry::Reference;

pub(super) fn normalize(reference: &str) -> Result<String, CliError> {
    Reference::parse_docker_ref(reference)
        .map(|r| r.to_string())
        .with_context(|| format!("invalid image name {reference}"))
}

pub(super) fn find(root: &cache::Root, name: &str) -> Result<StoredImage, CliError> {
    get_image(root, name)
        .context("reading the store")?
        .ok_or_else(|| {
            CliError::msg(format!("no image {name} in the store"))
                .with_help("`pallet images` lists the images there")
        })
}
