//! binfmt_misc handlers for foreign platforms (QEMU user emulation): what is registered, the
//! registration of Debian's qemu-user-static handlers (`/usr/lib/binfmt.d/qemu-*.conf`), and the
//! check a build or `pallet run` makes before a step for a foreign platform starts, so a missing
//! handler is a clear error and never an "exec format error" inside a step.
//!
//! Only handlers with the F flag (the interpreter opened when registered) work inside a
//! container, whose root has no `/usr/libexec/qemu-binfmt`. Knows platforms as
//! `os/arch[/variant]` strings only: no graphs, stores or builds.

use std::path::{Path, PathBuf};

/// Where binfmt_misc is mounted.
pub const DEFAULT_DIR: &str = "/proc/sys/fs/binfmt_misc";
/// Overrides [`DEFAULT_DIR`] for the check (a test points it at an empty directory).
pub const DIR_ENV: &str = "PALLET_BINFMT_DIR";
/// Where Debian's qemu-user-static puts its handler lines.
pub const CONF_DIR: &str = "/usr/lib/binfmt.d";

/// The directory the check reads: `$PALLET_BINFMT_DIR`, else [`DEFAULT_DIR`].
pub fn dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// QEMU's name for an OCI architecture (`arm64` -> `aarch64`), as its handlers are named.
pub fn qemu_arch(architecture: &str, variant: &str) -> Option<&'static str> {
    Some(match (architecture, variant) {
        ("amd64", _) => "x86_64",
        ("386", _) => "i386",
        ("arm64", _) => "aarch64",
        ("arm", _) => "arm",
        ("ppc64le", _) => "ppc64le",
        ("ppc64", _) => "ppc64",
        ("s390x", _) => "s390x",
        ("riscv64", _) => "riscv64",
        ("mips64le", _) => "mips64el",
        ("mips64", _) => "mips64",
        ("loong64", _) => "loongarch64",
        _ => return None,
    })
}

/// One registered handler, as binfmt_misc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub name: String,
    pub enabled: bool,
    pub interpreter: String,
    pub flags: String,
}

impl Handler {
    /// Usable for a container's processes: enabled, with the interpreter fixed (F).
    pub fn usable(&self) -> bool {
        self.enabled && self.flags.contains('F')
    }
}

/// Parses a handler file (`enabled`, `interpreter PATH`, `flags: POF`, ...).
pub fn parse_handler(name: &str, text: &str) -> Handler {
    let mut h = Handler {
        name: name.to_string(),
        enabled: false,
        interpreter: String::new(),
        flags: String::new(),
    };
    for line in text.lines() {
        if line == "enabled" {
            h.enabled = true;
        } else if let Some(i) = line.strip_prefix("interpreter ") {
            h.interpreter = i.to_string();
        } else if let Some(f) = line.strip_prefix("flags:") {
            h.flags = f.trim().to_string();
        }
    }
    h
}

/// The handlers registered in `dir` (sorted by name; `register` and `status` are not ones).
pub fn registered(dir: &Path) -> Vec<Handler> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Handler> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "register" || name == "status" {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some(parse_handler(&name, &text))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Why a platform's processes cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinfmtError {
    #[error(
        "RUN steps for {platform} need QEMU emulation, and no binfmt_misc handler \
         {handler} is registered in {dir}: install the package qemu-user-static \
         (apt-get install qemu-user-static), then register it with \
         `pallet binfmt --install {platform}`"
    )]
    Missing {
        platform: String,
        handler: String,
        dir: String,
    },
    #[error(
        "RUN steps for {platform} need QEMU emulation, and the binfmt_misc handler \
         {handler} in {dir} is {why}: re-register it with `pallet binfmt --install {platform}` \
         (from the package qemu-user-static, whose handlers have the F flag)"
    )]
    Unusable {
        platform: String,
        handler: String,
        dir: String,
        why: String,
    },
    #[error("pallet has no QEMU emulation for the platform {platform}")]
    Unknown { platform: String },
}

/// Checks that processes for `platform` (`linux/arm64`) can run through binfmt_misc in `dir`.
pub fn check(platform: &str, dir: &Path) -> Result<Handler, BinfmtError> {
    let mut parts = platform.split('/');
    let (_, arch, variant) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let qemu = qemu_arch(arch, variant).ok_or_else(|| BinfmtError::Unknown {
        platform: platform.to_string(),
    })?;
    let name = format!("qemu-{qemu}");
    let text = std::fs::read_to_string(dir.join(&name)).map_err(|_| BinfmtError::Missing {
        platform: platform.to_string(),
        handler: name.clone(),
        dir: dir.display().to_string(),
    })?;
    let h = parse_handler(&name, &text);
    if !h.usable() {
        let why = if h.enabled {
            format!(
                "registered without the F flag (flags: {:?}), so containers cannot use it",
                h.flags
            )
        } else {
            "disabled".to_string()
        };
        return Err(BinfmtError::Unusable {
            platform: platform.to_string(),
            handler: name,
            dir: dir.display().to_string(),
            why,
        });
    }
    Ok(h)
}

/// The handler line Debian ships for `qemu` (`aarch64`), from `conf_dir/qemu-QEMU.conf`.
pub fn conf_line(conf_dir: &Path, qemu: &str) -> std::io::Result<String> {
    let path = conf_dir.join(format!("qemu-{qemu}.conf"));
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with(':'))
        .map(str::to_string)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} has no handler line", path.display()),
            )
        })
}

/// Mounts binfmt_misc at `dir` unless it is mounted (its `register` file exists).
pub fn ensure_mounted(dir: &Path) -> Result<bool, String> {
    if dir.join("register").exists() {
        return Ok(false);
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "binfmt_misc", "binfmt_misc"])
        .arg(dir)
        .status()
        .map_err(|e| format!("running mount: {e}"))?;
    if !status.success() {
        return Err(format!(
            "mount -t binfmt_misc binfmt_misc {} failed ({status}); run as root, on a host \
             (or a container with --privileged)",
            dir.display()
        ));
    }
    Ok(true)
}

/// Registers `line` by writing it to `dir/register`.
pub fn register(dir: &Path, line: &str) -> std::io::Result<()> {
    std::fs::write(dir.join("register"), line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_handler_and_checks_the_f_flag() {
        let text = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\nmagic 7f454c46\n";
        let h = parse_handler("qemu-aarch64", text);
        assert!(h.usable());
        assert_eq!(h.interpreter, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P");
        assert!(!parse_handler("x", "enabled\nflags: P\n").usable());
        assert!(!parse_handler("x", "disabled\nflags: F\n").usable());
    }

    #[test]
    fn a_missing_handler_names_platform_package_and_command() {
        let empty = tempfile::tempdir().unwrap();
        let e = check("linux/arm64", empty.path()).unwrap_err().to_string();
        assert!(e.contains("linux/arm64"), "{e}");
        assert!(e.contains("qemu-user-static"), "{e}");
        assert!(e.contains("pallet binfmt --install linux/arm64"), "{e}");
        std::fs::write(empty.path().join("qemu-aarch64"), "enabled\nflags: P\n").unwrap();
        let e = check("linux/arm64", empty.path()).unwrap_err().to_string();
        assert!(e.contains("F flag"), "{e}");
    }
}
