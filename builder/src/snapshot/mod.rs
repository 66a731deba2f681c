//! Snapshots and layers: a layer is a tar of one step's changes (OCI whiteouts, sorted entries,
//! numeric owners, xattrs, hardlinks); a snapshot is that layer unpacked into a directory in
//! overlayfs's format (whiteouts as 0/0 character devices, opaque dirs by xattr), so a stack of
//! snapshots mounts as a rootfs and a step's overlay upper dir is already a snapshot.
//!
//! Unpacking never writes outside its destination (`..`, absolute names, symlinks and
//! hardlinks pointing out, whiteouts that traverse). Knows nothing of builds or registries.
//!
//! Files:
//! - `write`: snapshot dir -> layer tar (walk order, whiteouts out, hardlinks, xattrs).
//! - `header`: one entry's tar blocks (ustar + PAX records), deterministic.
//! - `unpack`: layer tar -> dir (decompression, names, whiteouts in, directory metadata last);
//!   `TreeUnpacker`: several plain tars into one dir, whiteouts and devices not allowed (a
//!   cache mount's chunks, `store::mount_pack`).
//! - `reader`: a tar stream as entries, PAX records and GNU long names folded in.
//! - `create`: one entry created in its parent directory, with owner, xattrs, mode, mtime.
//! - `entry_name`: what an entry may name (no `..`, no NUL) and the errors of refusing it.
//! - `beneath`: fd-based operations that never follow a symlink (the confinement).
//! - `whiteout`: OCI and overlayfs whiteout names, and which xattrs are overlay bookkeeping
//!   (in `trusted.` as root, in `user.` rootless: see `Privilege`).
//! - `marker`: whiteouts and opaque markers made where the usual form is refused (an
//!   unprivileged container: no 0/0 devices on overlayfs, no `trusted.*` xattrs).
//! - `unchanged`: copy-ups a step did not change, dropped from its upper dir (BuildKit's rule).
//! - `snapshotter`: the seam that makes root file trees over snapshot stacks; `overlay`: the
//!   overlayfs mounts of the root and rootless snapshotter; `probe`: whether rootless
//!   overlayfs (`userxattr`) mounts on the store's filesystem, and which filesystem refused;
//!   `tree`: the snapshotter for where nothing can be mounted (plain directories, each step
//!   diffed against a baseline).

pub(crate) mod beneath;
mod create;
mod entry_name;
pub(crate) mod header;
pub(crate) mod marker;
pub mod overlay;
mod probe;
mod reader;
pub mod snapshotter;
pub mod tree;
pub mod unchanged;
pub mod unpack;
pub(crate) mod whiteout;
pub mod write;

pub(crate) use probe::filesystem;
pub(crate) use reader::TarReader;
pub use snapshotter::{Active, OverlaySnapshotter, Snapshotter, View};
pub use tree::TreeSnapshotter;
pub use unpack::{unpack_layer, TreeUnpacker, UnpackError, UnpackOptions};
pub use whiteout::Privilege;
pub use write::{write_layer, LayerStats, WriteOptions};
