//! docker's client config (`$DOCKER_CONFIG/config.json`, default ~/.docker/config.json): reading
//! credentials from `auths`, `credHelpers` and `credsStore` (docker-credential-* helpers), and
//! writing them back for `pallet login` / `pallet logout` exactly where docker would. Secrets never
//! appear in Debug output or errors.

use std::path::{Path, PathBuf};

/// A username and password or identity token. `Debug` prints the username only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// docker's config.json (kept as JSON so fields pallet does not know survive a rewrite).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    json: serde_json::Value,
}

impl DockerConfig {
    /// `dir` or `$DOCKER_CONFIG` or `~/.docker`; a missing file is an empty config.
    pub fn load(dir: Option<&Path>) -> Result<DockerConfig, crate::RegistryError> {
        let _ = dir;
        todo!()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Credentials for a registry host (`docker.io` is looked up under docker's
    /// `https://index.docker.io/v1/` key as docker does).
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, crate::RegistryError> {
        let _ = (registry, &self.json);
        todo!()
    }

    /// Stores credentials (credential helper / credsStore when configured, else base64 in
    /// `auths`), writing the file atomically with mode 0600.
    pub fn store(&mut self, registry: &str, cred: &Credential) -> Result<(), crate::RegistryError> {
        let _ = (registry, cred);
        todo!()
    }

    /// Removes credentials; Ok(false) when there were none.
    pub fn erase(&mut self, registry: &str) -> Result<bool, crate::RegistryError> {
        let _ = registry;
        todo!()
    }
}
