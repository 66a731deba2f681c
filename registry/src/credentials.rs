//! docker's client config (`$DOCKER_CONFIG/config.json`, default ~/.docker/config.json): reading
//! credentials from `auths`, `credHelpers` and `credsStore` (docker-credential-* helpers), and
//! writing them back for `pallet login` / `pallet logout` exactly where docker would. Secrets never
//! appear in Debug output or errors.
//!
//! Helper protocol (docker-credential-helpers): `docker-credential-NAME get` reads the server URL
//! on stdin and prints `{"ServerURL","Username","Secret"}`; `store` reads that JSON; `erase` reads
//! the server URL. A missing credential is the message "credentials not found in native keychain".
//!
//! After docker's config, credentials are looked up in the containers auth file podman, buildah
//! and skopeo write: `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json` (its
//! `auths`, keyed by host, `docker.io` for Docker Hub). `pallet login` writes docker's config only.

use crate::encoding::{base64_decode, base64_encode};
use crate::RegistryError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// docker's key for Docker Hub in `auths` and for credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The username docker uses for an identity (refresh) token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

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

impl Credential {
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Credential {
        Credential {
            username: username.into(),
            secret: secret.into(),
        }
    }

    /// An identity token (docker's username `<token>`): sent as an OAuth refresh token.
    pub fn is_identity_token(&self) -> bool {
        self.username == IDENTITY_TOKEN_USER
    }
}

/// docker's config.json (kept as JSON so fields pallet does not know survive a rewrite).
#[derive(Clone)]
pub struct DockerConfig {
    path: PathBuf,
    json: serde_json::Value,
    /// Directory searched first for `docker-credential-*` helpers (tests; no PATH mutation).
    helper_dir: Option<PathBuf>,
    /// Containers auth files read after this config, in order: (path, JSON).
    auth_files: Vec<(PathBuf, serde_json::Value)>,
}

impl std::fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auths: Vec<&String> = self
            .json
            .get("auths")
            .and_then(|a| a.as_object())
            .map(|a| a.keys().collect())
            .unwrap_or_default();
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .field("auths", &auths)
            .field("credsStore", &self.json.get("credsStore"))
            .field("credHelpers", &self.json.get("credHelpers"))
            .field(
                "auth_files",
                &self.auth_files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The key docker files a registry's credentials under: Hub's v1 URL, else the host.
pub fn credential_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

/// docker's `ConvertToHostname`: `https://host:5000/v1/` -> `host:5000`.
fn key_hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

impl DockerConfig {
    /// `dir` or `$DOCKER_CONFIG` or `~/.docker`; a missing file is an empty config. The
    /// containers auth file of this environment is read after it (see the module's doc).
    pub fn load(dir: Option<&Path>) -> Result<DockerConfig, RegistryError> {
        let config = DockerConfig::load_docker(dir)?;
        config.with_auth_files(&containers_auth_files(&|name| std::env::var_os(name)))
    }

    /// docker's config.json alone (`dir` or `$DOCKER_CONFIG` or `~/.docker`).
    fn load_docker(dir: Option<&Path>) -> Result<DockerConfig, RegistryError> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
                Some(d) => PathBuf::from(d),
                None => std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".docker"))
                    .unwrap_or_else(|| PathBuf::from("/root/.docker")),
            },
        };
        DockerConfig::load_file(&dir.join("config.json"))
    }

    /// Reads a config.json at an exact path (missing = empty).
    pub fn load_file(path: &Path) -> Result<DockerConfig, RegistryError> {
        let json = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => serde_json::json!({}),
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Credentials {
                    location: path.display().to_string(),
                    message: format!("invalid JSON: {e}"),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
            Err(e) => {
                return Err(RegistryError::Credentials {
                    location: path.display().to_string(),
                    message: format!("cannot read: {e}"),
                })
            }
        };
        if !json.is_object() {
            return Err(RegistryError::Credentials {
                location: path.display().to_string(),
                message: "expected a JSON object".into(),
            });
        }
        Ok(DockerConfig {
            path: path.to_path_buf(),
            json,
            helper_dir: None,
            auth_files: Vec::new(),
        })
    }

    /// Also reads credentials from these containers auth files (`auths` of podman's
    /// auth.json), in order, after this config. Missing files are skipped.
    pub fn with_auth_files(mut self, files: &[PathBuf]) -> Result<DockerConfig, RegistryError> {
        for file in files {
            let other = DockerConfig::load_file(file)?;
            if other.json.as_object().is_some_and(|o| !o.is_empty()) {
                self.auth_files.push((file.clone(), other.json));
            }
        }
        Ok(self)
    }

    /// A config with no credentials that writes to `path` if asked to store.
    pub fn empty(path: &Path) -> DockerConfig {
        DockerConfig {
            path: path.to_path_buf(),
            json: serde_json::json!({}),
            helper_dir: None,
            auth_files: Vec::new(),
        }
    }

    /// Looks for `docker-credential-*` helpers in `dir` before `$PATH` (for tests, which must
    /// not change the process environment).
    pub fn with_helper_dir(mut self, dir: &Path) -> DockerConfig {
        self.helper_dir = Some(dir.to_path_buf());
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper that holds credentials for `registry`: `credHelpers` entry, else `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<String> {
        let key = credential_key(registry);
        let helpers = self.json.get("credHelpers").and_then(|h| h.as_object());
        let per_host = helpers.and_then(|h| {
            [key.as_str(), registry, key_hostname(&key)]
                .iter()
                .find_map(|k| h.get(*k).and_then(|v| v.as_str()))
        });
        per_host
            .or_else(|| self.json.get("credsStore").and_then(|v| v.as_str()))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Credentials for a registry host (`docker.io` is looked up under docker's
    /// `https://index.docker.io/v1/` key as docker does).
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let key = credential_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            if let Some(cred) = self.helper_get(&helper, &key)? {
                return Ok(Some(cred));
            }
        }
        if let Some((_, entry)) = auths_entry(&self.json, &key) {
            return parse_entry(&self.path, &key, entry);
        }
        for (path, json) in &self.auth_files {
            // podman files Docker Hub under `docker.io`.
            let entry = auths_entry(json, &key).or_else(|| {
                (key == DOCKER_HUB_KEY)
                    .then(|| auths_entry(json, "docker.io"))
                    .flatten()
            });
            if let Some((k, entry)) = entry {
                if let Some(cred) = parse_entry(path, &k, entry)? {
                    return Ok(Some(cred));
                }
            }
        }
        Ok(None)
    }

    fn auths_entry(&self, key: &str) -> Option<(String, &serde_json::Value)> {
        auths_entry(&self.json, key)
    }
    /// Stores credentials (credential helper / credsStore when configured, else base64 in
    /// `auths`), writing the file atomically with mode 0600.
    pub fn store(&mut self, registry: &str, cred: &Credential) -> Result<(), RegistryError> {
        let key = credential_key(registry);
        let auths = self.auths_mut();
        // The entry keeps fields pallet does not know (email, ...), loses the old secret.
        let mut entry = auths
            .remove(&key)
            .and_then(|e| e.as_object().cloned())
            .unwrap_or_default();
        for field in ["auth", "username", "password", "identitytoken"] {
            entry.remove(field);
        }
        if let Some(helper) = self.helper_for(registry) {
            let input = serde_json::json!({
                "ServerURL": key, "Username": cred.username, "Secret": cred.secret,
            });
            self.run_helper(&helper, "store", input.to_string().as_bytes())?;
        } else if cred.is_identity_token() {
            entry.insert("identitytoken".into(), cred.secret.clone().into());
        } else {
            let auth = base64_encode(format!("{}:{}", cred.username, cred.secret).as_bytes());
            entry.insert("auth".into(), auth.into());
        }
        self.auths_mut()
            .insert(key, serde_json::Value::Object(entry));
        self.write()
    }

    /// Removes credentials; Ok(false) when there were none.
    pub fn erase(&mut self, registry: &str) -> Result<bool, RegistryError> {
        let key = credential_key(registry);
        let mut erased = false;
        if let Some(helper) = self.helper_for(registry) {
            erased = self.helper_erase(&helper, &key)?;
        }
        let found = self.auths_entry(&key).map(|(k, _)| k);
        if let Some(k) = found {
            self.auths_mut().remove(&k);
            self.write()?;
            erased = true;
        }
        Ok(erased)
    }

    fn auths_mut(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        let obj = self.json.as_object_mut().expect("checked at load");
        let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        auths.as_object_mut().expect("just made an object")
    }

    /// Writes config.json atomically (temp file + rename), mode 0600, following a symlink.
    fn write(&self) -> Result<(), RegistryError> {
        let fail = |what: &str, e: std::io::Error| RegistryError::Credentials {
            location: self.path.display().to_string(),
            message: format!("{what}: {e}"),
        };
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let dir = target.parent().unwrap_or(Path::new("."));
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory", e))?;
        }
        let mut text = serde_json::to_vec_pretty(&self.json).expect("JSON value serializes");
        text.push(b'\n');
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("config.json"),
            std::process::id()
        ));
        let result = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail("cannot write", e));
        }
        Ok(())
    }

    fn helper_program(&self, helper: &str) -> PathBuf {
        let name = format!("docker-credential-{helper}");
        if let Some(dir) = &self.helper_dir {
            let p = dir.join(&name);
            if p.exists() {
                return p;
            }
        }
        PathBuf::from(name)
    }

    /// Runs a helper; Ok(None) for "credentials not found", Ok(Some(stdout)) on success.
    fn run_helper(
        &self,
        helper: &str,
        action: &str,
        input: &[u8],
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let program = self.helper_program(helper);
        let location = format!("docker-credential-{helper} {action}");
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RegistryError::Credentials {
                location: location.clone(),
                message: format!(
                    "cannot run the credential helper: {e} (install docker-credential-{helper} \
                     or change credsStore/credHelpers in {})",
                    self.path.display()
                ),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin is not an error here.
            let _ = stdin.write_all(input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| RegistryError::Credentials {
                location: location.clone(),
                message: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(Some(out.stdout));
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("credentials not found") {
            return Ok(None);
        }
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        Err(RegistryError::Credentials {
            location,
            message: format!(
                "the helper failed ({}): {}",
                out.status,
                first.trim().chars().take(200).collect::<String>()
            ),
        })
    }

    fn helper_get(&self, helper: &str, key: &str) -> Result<Option<Credential>, RegistryError> {
        let Some(stdout) = self.run_helper(helper, "get", key.as_bytes())? else {
            return Ok(None);
        };
        #[derive(serde::Deserialize)]
        struct Out {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let out: Out = serde_json::from_slice(&stdout).map_err(|e| RegistryError::Credentials {
            location: format!("docker-credential-{helper} get"),
            message: format!("unreadable answer: {e}"),
        })?;
        if out.username.is_empty() && out.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credential::new(out.username, out.secret)))
    }

    fn helper_erase(&self, helper: &str, key: &str) -> Result<bool, RegistryError> {
        Ok(self.run_helper(helper, "erase", key.as_bytes())?.is_some())
    }
}

/// The `auths` entry for `key` in a config's JSON: exact, else by host name.
fn auths_entry<'a>(
    json: &'a serde_json::Value,
    key: &str,
) -> Option<(String, &'a serde_json::Value)> {
    let auths = json.get("auths")?.as_object()?;
    if let Some(e) = auths.get(key) {
        return Some((key.to_string(), e));
    }
    let host = key_hostname(key);
    auths
        .iter()
        .find(|(k, _)| key_hostname(k) == host)
        .map(|(k, e)| (k.clone(), e))
}

/// A credential from an `auths` entry of the file at `path` (named in errors).
fn parse_entry(
    path: &Path,
    key: &str,
    entry: &serde_json::Value,
) -> Result<Option<Credential>, RegistryError> {
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).unwrap_or("");
    if !field("identitytoken").is_empty() {
        return Ok(Some(Credential::new(
            IDENTITY_TOKEN_USER,
            field("identitytoken"),
        )));
    }
    if !field("auth").is_empty() {
        let bad = || RegistryError::Credentials {
            location: path.display().to_string(),
            message: format!("auths.{key:?}.auth is not base64 of `user:password`"),
        };
        let decoded = base64_decode(field("auth")).ok_or_else(bad)?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, secret) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credential::new(user, secret)));
    }
    if !field("username").is_empty() {
        return Ok(Some(Credential::new(field("username"), field("password"))));
    }
    Ok(None)
}

/// The containers auth file podman and buildah use: `$REGISTRY_AUTH_FILE`, else
/// `$XDG_RUNTIME_DIR/containers/auth.json` (unset or empty variables are skipped).
pub fn containers_auth_files(var: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Vec<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    match set("REGISTRY_AUTH_FILE") {
        Some(file) => vec![file],
        None => set("XDG_RUNTIME_DIR")
            .map(|d| d.join("containers/auth.json"))
            .into_iter()
            .collect(),
    }
}
