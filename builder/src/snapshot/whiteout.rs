//! The two whiteout conventions a layer crosses, and the xattrs that are overlayfs bookkeeping.
//!
//! OCI layers (image-spec `layer.md`, inherited from AUFS) mark a removal with an empty file
//! `.wh.NAME` and a directory whose lower contents are hidden with `.wh..wh..opq`. overlayfs
//! marks a removal with a 0/0 character device `NAME` (or, since Linux 6.7, an empty file with the
//! `overlay.whiteout` xattr) and an opaque directory with the `overlay.opaque=y` xattr, in the
//! `trusted.` namespace or, for mounts with `userxattr`, the `user.` namespace.
//!
//! Which namespace overlayfs keeps its own xattrs in is decided by who mounts: real root's
//! overlays (`Privilege::Root`) use `trusted.overlay.*`; rootless overlays are mounted with
//! `userxattr` (`Privilege::Rootless`) and use `user.overlay.*`, since `trusted.*` needs
//! CAP_SYS_ADMIN in the initial user namespace. The unpacker writes the opaque mark of the
//! process's privilege; readers (the layer writer, the copy-up check) accept either namespace
//! (in a user namespace `trusted.*` reads as absent). Overlay xattrs never travel in a layer,
//! so a layer's bytes do not depend on the mode that made it.
//!
//! Owns only names and predicates; the writer and the unpacker decide what to do with them.

pub use crate::userns::Privilege;

/// Prefix of an OCI whiteout entry: `.wh.NAME` removes `NAME`.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of AUFS metadata entries (`.wh..wh.plnk`, ...): never files, never removals.
pub(crate) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The entry that makes its directory opaque.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// The opaque-directory xattr of real root's overlays.
pub(crate) const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The opaque-directory xattr of rootless (`userxattr`) overlays.
pub(crate) const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque-directory xattr of the overlays a process with `privilege` mounts.
pub(crate) fn opaque_xattr(privilege: Privilege) -> &'static str {
    match privilege {
        Privilege::Root => OVERLAY_OPAQUE_XATTR,
        Privilege::Rootless => USER_OPAQUE_XATTR,
    }
}

/// Namespaces whose `overlay.` xattrs belong to overlayfs itself.
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// `overlay.` xattrs whose presence means the upper dir cannot be read on its own: a redirected
/// directory's contents or a metacopy file's data live in a lower layer.
pub(crate) const UNSUPPORTED_OVERLAY_FEATURES: [(&str, &str); 2] =
    [("redirect", "redirect_dir"), ("metacopy", "metacopy")];

/// True for xattrs that never travel in a layer: overlayfs bookkeeping (opaque, origin,
/// impure, nlink, whiteout, ...) and SELinux labels, which belong to the host's policy.
pub(crate) fn is_private_xattr(name: &[u8]) -> bool {
    name == b"security.selinux" || OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The `overlay.` xattr `suffix` in either namespace, e.g. `opaque` -> both opaque names (for
/// checks that must hold whoever mounts).
pub(crate) fn overlay_xattr_names(suffix: &str) -> [String; 2] {
    [
        format!("trusted.overlay.{suffix}"),
        format!("user.overlay.{suffix}"),
    ]
}

/// What a `.wh.`-prefixed entry name means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Marker<'a> {
    /// Not a whiteout: an ordinary entry.
    None,
    /// `.wh..wh..opq`: the containing directory is opaque.
    Opaque,
    /// `.wh..wh.*` other than the opaque marker: AUFS metadata, ignored.
    Meta,
    /// `.wh.NAME`: `NAME` is removed. NAME may still be empty, `.` or `..`: callers check.
    Remove(&'a [u8]),
}

/// Classifies the last component of an entry's path.
pub(crate) fn classify(base: &[u8]) -> Marker<'_> {
    if base == OPAQUE_MARKER {
        Marker::Opaque
    } else if base.starts_with(WHITEOUT_META_PREFIX) {
        Marker::Meta
    } else if let Some(name) = base.strip_prefix(WHITEOUT_PREFIX) {
        Marker::Remove(name)
    } else {
        Marker::None
    }
}
