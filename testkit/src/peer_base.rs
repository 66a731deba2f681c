//! The base images of the BuildKit parity harness (../shared/peers): a busybox and a Debian
//! bookworm file tree, each a tar in `/var/tmp/peers/base` (`PALLET_PARITY_BASE_DIR` to point
//! elsewhere) and the same tree as an image in the peers' local registry, which dockerd pulls.
//! pallet imports the tar under the registry's reference, so both builders start from the same
//! files. Only the opt-in parity test uses them: nothing here makes the tars.

use std::path::PathBuf;

/// A base image both builders start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerBase {
    Busybox,
    Debian,
}

impl PeerBase {
    /// The reference dockerd pulls, and the tag pallet imports the tar as.
    pub fn reference(self) -> &'static str {
        match self {
            PeerBase::Busybox => "127.0.0.1:5000/base/busybox:latest",
            PeerBase::Debian => "127.0.0.1:5000/base/debian:bookworm",
        }
    }

    /// The root file tree, as a tar.
    pub fn tar(self) -> PathBuf {
        let dir = std::env::var_os("PALLET_PARITY_BASE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/peers/base"));
        dir.join(match self {
            PeerBase::Busybox => "busybox.tar",
            PeerBase::Debian => "debian.tar",
        })
    }
}
