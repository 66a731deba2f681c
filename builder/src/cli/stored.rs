//! An image named on the command line: its name normalized as docker does, and its record in
//! the local store (the lookup `inspect`, `history` and `tag` share).

use crate::store::StoredImage;

pub(super) fn normalize(reference: &str) -> Result<String, String> {
    registry::Reference::parse_docker_ref(reference)
        .map(|r| r.to_string())
        .map_err(|e| format!("error: invalid image name {reference}: {e}\n"))
}

pub(super) fn find(root: &cache::Root, name: &str) -> Result<StoredImage, String> {
    crate::store::get_image(root, name)
        .map_err(|e| format!("error: reading the store: {e}\n"))?
        .ok_or_else(|| {
            format!(
                "error: no image {name} in the store\n  = help: `pallet images` lists the images \
                 there\n"
            )
        })
}
