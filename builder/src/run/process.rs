//! The process of a `pallet run`, resolved as `docker run` does from the image config and the
//! flags: arguments (ENTRYPOINT + CMD), environment, working directory, user name, and `-v`
//! bind mounts.
//!
//! Pure functions over strings: no files, no runc, no store (the user name is resolved against
//! the mounted rootfs by the caller).

use super::RunError;
use crate::exec::SpecMount;
use graph::image::Config;
use std::path::{Component, Path, PathBuf};

/// Docker's PATH for a container whose image sets none (moby `oci.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The flags that decide the process.
#[derive(Debug, Clone, Default)]
pub struct ProcessFlags {
    /// Arguments after the image (replace the image's CMD when not empty).
    pub command: Vec<String>,
    /// `--entrypoint`: replaces ENTRYPOINT and clears CMD; `""` clears both.
    pub entrypoint: Option<String>,
    /// `-e` values as given (`K=V`, or `K` to take the value from pallet's environment).
    pub env: Vec<String>,
    /// `--workdir`.
    pub workdir: Option<String>,
    /// `--user`.
    pub user: Option<String>,
}

/// What to run, before the user is looked up in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// The user as written (`name`, `uid`, `name:group`, ...; `""` is root).
    pub user: String,
}

/// docker's rules: args = (--entrypoint, else ENTRYPOINT) + (the command given, else CMD unless
/// --entrypoint was given); env = PATH default, HOSTNAME, the image's Env, then `-e`; cwd =
/// --workdir, else WorkingDir, else `/`; user = --user, else User. `lookup` reads pallet's own
/// environment for `-e KEY`.
pub fn resolve(
    config: &Config,
    flags: &ProcessFlags,
    hostname: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Process, RunError> {
    let mut args: Vec<String> = match &flags.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => config.entrypoint.clone().unwrap_or_default(),
    };
    if !flags.command.is_empty() {
        args.extend(flags.command.iter().cloned());
    } else if flags.entrypoint.is_none() {
        args.extend(config.cmd.clone().unwrap_or_default());
    }
    if args.is_empty() {
        return Err(RunError::NoCommand);
    }

    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    for kv in &config.env {
        override_env(&mut env, kv);
    }
    for given in &flags.env {
        let key = given.split_once('=').map_or(given.as_str(), |(k, _)| k);
        if key.is_empty() {
            return Err(RunError::BadEnv(given.clone()));
        }
        if given.contains('=') {
            override_env(&mut env, given);
        } else if let Some(value) = lookup(given) {
            override_env(&mut env, &format!("{given}={value}"));
        } else {
            // docker: `-e KEY` with KEY unset here removes it from the container's env.
            env.retain(|kv| env_key(kv) != given);
        }
    }

    let cwd = match flags.workdir.as_deref() {
        Some(dir) if !dir.starts_with('/') => return Err(RunError::RelativeWorkdir(dir.into())),
        Some(dir) => dir.to_string(),
        None if config.working_dir.is_empty() => "/".to_string(),
        None => config.working_dir.clone(),
    };
    let user = flags.user.clone().unwrap_or_else(|| config.user.clone());
    Ok(Process {
        args,
        env,
        cwd,
        user,
    })
}

/// Sets `HOME` from the user's passwd entry when the env has none (runc does the same; done here
/// so the result does not depend on the runtime's version).
pub fn add_home(env: &mut Vec<String>, home: Option<&str>) {
    if !env.iter().any(|kv| env_key(kv) == "HOME") {
        env.push(format!(
            "HOME={}",
            home.filter(|h| !h.is_empty()).unwrap_or("/")
        ));
    }
}

fn env_key(kv: &str) -> &str {
    kv.split_once('=').map_or(kv, |(k, _)| k)
}

/// Replaces the entry with the same key in place, or appends (moby `ReplaceOrAppendEnvValues`).
fn override_env(env: &mut Vec<String>, kv: &str) {
    let key = env_key(kv);
    match env.iter_mut().find(|e| env_key(e) == key) {
        Some(slot) => *slot = kv.to_string(),
        None => env.push(kv.to_string()),
    }
}

/// Parses `-v HOST:CTR[:ro|rw]`. HOST must be an absolute path that exists (named volumes do
/// not exist here); CTR must be absolute and not `/`.
pub fn parse_volume(spec: &str) -> Result<SpecMount, RunError> {
    let bad = |why: &str| RunError::BadVolume {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, target, readonly) = match parts.as_slice() {
        [host, target] => (*host, *target, false),
        [host, target, "ro"] => (*host, *target, true),
        [host, target, "rw"] => (*host, *target, false),
        [_, _, mode] => return Err(bad(&format!("unknown mode {mode:?} (use ro or rw)"))),
        _ => return Err(bad("expected HOST:CONTAINER or HOST:CONTAINER:ro")),
    };
    if !host.starts_with('/') {
        return Err(bad(&format!(
            "the host path {host:?} is not absolute (named volumes are not supported; \
             use an absolute path, e.g. \"$PWD/{host}\")"
        )));
    }
    if !target.starts_with('/') {
        return Err(bad(&format!(
            "the container path {target:?} is not absolute"
        )));
    }
    if Path::new(target)
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::CurDir))
    {
        return Err(bad("cannot mount over the container's /"));
    }
    let source = PathBuf::from(host);
    if let Err(e) = std::fs::metadata(&source) {
        return Err(bad(&format!("the host path {host}: {e}")));
    }
    Ok(SpecMount::Bind {
        source,
        target: target.to_string(),
        readonly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            env: vec!["PATH=/bin".into(), "A=1".into(), "B=2".into()],
            entrypoint: Some(vec!["/entry".into(), "--flag".into()]),
            cmd: Some(vec!["serve".into()]),
            working_dir: "/srv".into(),
            user: "app".into(),
            ..Config::default()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn args_follow_docker() {
        let c = config();
        let p = resolve(&c, &ProcessFlags::default(), "h", &no_env).unwrap();
        assert_eq!(p.args, ["/entry", "--flag", "serve"]);
        assert_eq!((p.cwd.as_str(), p.user.as_str()), ("/srv", "app"));
        let flags = ProcessFlags {
            command: vec!["test".into()],
            ..ProcessFlags::default()
        };
        assert_eq!(
            resolve(&c, &flags, "h", &no_env).unwrap().args,
            ["/entry", "--flag", "test"]
        );
        let flags = ProcessFlags {
            entrypoint: Some("/bin/sh".into()),
            ..ProcessFlags::default()
        };
        assert_eq!(resolve(&c, &flags, "h", &no_env).unwrap().args, ["/bin/sh"]);
        let flags = ProcessFlags {
            entrypoint: Some(String::new()),
            command: vec!["ls".into()],
            workdir: Some("/tmp".into()),
            user: Some("root".into()),
            ..ProcessFlags::default()
        };
        let p = resolve(&c, &flags, "h", &no_env).unwrap();
        assert_eq!(p.args, ["ls"]);
        assert_eq!((p.cwd.as_str(), p.user.as_str()), ("/tmp", "root"));
        let flags = ProcessFlags {
            entrypoint: Some(String::new()),
            ..ProcessFlags::default()
        };
        assert!(matches!(
            resolve(&c, &flags, "h", &no_env),
            Err(RunError::NoCommand)
        ));
        assert!(matches!(
            resolve(&Config::default(), &ProcessFlags::default(), "h", &no_env),
            Err(RunError::NoCommand)
        ));
        let flags = ProcessFlags {
            workdir: Some("rel".into()),
            ..ProcessFlags::default()
        };
        assert!(resolve(&c, &flags, "h", &no_env).is_err());
        let empty = Config {
            cmd: Some(vec!["sh".into()]),
            ..Config::default()
        };
        let p = resolve(&empty, &ProcessFlags::default(), "h", &no_env).unwrap();
        assert_eq!((p.cwd.as_str(), p.user.as_str()), ("/", ""));
    }

    #[test]
    fn env_follows_docker() {
        let c = config();
        let flags = ProcessFlags {
            env: vec![
                "A=override".into(),
                "C=3".into(),
                "FROM_HOST".into(),
                "B".into(),
                "EMPTY=".into(),
            ],
            ..ProcessFlags::default()
        };
        let lookup = |k: &str| (k == "FROM_HOST").then(|| "yes".to_string());
        let p = resolve(&c, &flags, "box", &lookup).unwrap();
        assert_eq!(
            p.env,
            [
                "PATH=/bin",
                "HOSTNAME=box",
                "A=override",
                "C=3",
                "FROM_HOST=yes",
                "EMPTY="
            ]
        );
        let p = resolve(&Config::default(), &ProcessFlags::default(), "b", &no_env);
        assert!(p.is_err());
        let mut env = vec![format!("PATH={DEFAULT_PATH}")];
        add_home(&mut env, Some("/home/app"));
        add_home(&mut env, Some("/other"));
        assert_eq!(env[1], "HOME=/home/app");
        let flags = ProcessFlags {
            env: vec!["=x".into()],
            ..ProcessFlags::default()
        };
        assert!(matches!(
            resolve(&c, &flags, "h", &no_env),
            Err(RunError::BadEnv(_))
        ));
    }

    #[test]
    fn volumes() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().to_str().unwrap();
        match parse_volume(&format!("{host}:/data:ro")).unwrap() {
            SpecMount::Bind {
                source,
                target,
                readonly,
            } => {
                assert_eq!(source, dir.path());
                assert_eq!(target, "/data");
                assert!(readonly);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_volume(&format!("{host}:/data")).unwrap(),
            SpecMount::Bind {
                readonly: false,
                ..
            }
        ));
        for bad in [
            "data:/data".to_string(),
            format!("{host}:data"),
            format!("{host}:/"),
            format!("{host}:/data:rx"),
            format!("{host}/missing:/data"),
            "/a".to_string(),
        ] {
            let e = parse_volume(&bad).unwrap_err().to_string();
            assert!(e.contains(&bad), "{e}");
        }
    }
}
