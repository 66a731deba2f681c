//! Platforms for lowering: the host's, parsing `--platform`/`FROM --platform` values
//! (containerd's `platforms.Parse` normalisation), and the automatic platform ARGs. Knows
//! nothing of stages or of the graph.

use graph::Platform;

/// The platform pallet runs on (`linux/amd64` on x86_64).
pub fn host() -> Platform {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", ""),
        "aarch64" => ("arm64", ""),
        "x86" => ("386", ""),
        "arm" => ("arm", "v7"),
        "powerpc64" => ("ppc64le", ""),
        "s390x" => ("s390x", ""),
        "riscv64" => ("riscv64", ""),
        other => (other, ""),
    };
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: variant.into(),
    }
}

/// A platform containerd's `platforms.Parse` refuses (its text), with the spec as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{spec}\": unknown operating system or architecture: invalid argument")]
pub struct PlatformError {
    pub spec: String,
}

/// Parses `os[/arch[/variant]]` or a bare architecture, normalising aliases as containerd does
/// (`x86_64` -> `amd64`, `aarch64` -> `arm64`, `arm64/v8` -> `arm64`).
pub fn parse(spec: &str) -> Result<Platform, PlatformError> {
    let lower = spec.trim().to_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let bad = || PlatformError {
        spec: spec.to_string(),
    };
    if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
        return Err(bad());
    }
    let (os, arch, variant) = match parts.as_slice() {
        [one] => {
            if is_known_os(one) {
                (one.to_string(), host().architecture, String::new())
            } else if let Some((a, v)) = normalize_arch(one, "") {
                ("linux".to_string(), a, v)
            } else {
                return Err(bad());
            }
        }
        [os, arch] => {
            let (a, v) = normalize_arch(arch, "").ok_or_else(bad)?;
            (os.to_string(), a, v)
        }
        [os, arch, variant] => {
            let (a, v) = normalize_arch(arch, variant).ok_or_else(bad)?;
            (os.to_string(), a, v)
        }
        _ => return Err(bad()),
    };
    if !is_known_os(&os) {
        return Err(bad());
    }
    let os = if os == "macos" {
        "darwin".to_string()
    } else {
        os
    };
    Ok(Platform {
        os,
        architecture: arch,
        variant,
    })
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s,
        "linux"
            | "windows"
            | "darwin"
            | "macos"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "solaris"
            | "illumos"
            | "android"
            | "ios"
            | "aix"
            | "plan9"
            | "js"
            | "wasip1"
            | "dragonfly"
    )
}

fn normalize_arch(arch: &str, variant: &str) -> Option<(String, String)> {
    let (a, v) = match (arch, variant) {
        ("i386", _) | ("386", _) => ("386", ""),
        ("x86_64", "") | ("x86-64", "") | ("amd64", "") => ("amd64", ""),
        ("amd64", v) if matches!(v, "v1" | "v2" | "v3" | "v4") => {
            ("amd64", if v == "v1" { "" } else { v })
        }
        ("aarch64", v) | ("arm64", v) => match v {
            "" | "8" | "v8" => ("arm64", ""),
            v => ("arm64", v),
        },
        ("armhf", "") => ("arm", "v7"),
        ("armel", "") => ("arm", "v6"),
        ("arm", v) => match v {
            "" | "7" | "v7" => ("arm", "v7"),
            "5" | "6" | "8" => return Some(("arm".into(), format!("v{v}"))),
            v => ("arm", v),
        },
        ("ppc64le", "")
        | ("s390x", "")
        | ("riscv64", "")
        | ("mips64le", "")
        | ("loong64", "")
        | ("ppc64", "")
        | ("mips64", "")
        | ("wasm", "") => (arch, ""),
        _ => return None,
    };
    Some((a.to_string(), v.to_string()))
}

/// Whether a process for `target` runs on `build` without emulation: the same OS and
/// architecture (any variant), or 32-bit x86 on amd64.
pub fn runs_natively(target: &Platform, build: &Platform) -> bool {
    target.os == build.os
        && (target.architecture == build.architecture
            || (target.architecture == "386" && build.architecture == "amd64"))
}

/// `--platform a,b,...`: each platform parsed, duplicates (after normalisation) dropped, in the
/// order given.
pub fn parse_list(spec: &str) -> Result<Vec<Platform>, PlatformError> {
    let mut out: Vec<Platform> = Vec::new();
    for one in spec.split(',') {
        let p = parse(one)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The automatic ARGs describing the build and target platforms (BuildKit's defaults).
pub fn platform_args(build: &Platform, target: &Platform) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
        out.push((format!("{prefix}PLATFORM"), p.to_string()));
        out.push((format!("{prefix}OS"), p.os.clone()));
        out.push((format!("{prefix}ARCH"), p.architecture.clone()));
        out.push((format!("{prefix}VARIANT"), p.variant.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(parse("linux/amd64").unwrap().to_string(), "linux/amd64");
        assert_eq!(parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(parse("linux/arm64/v8").unwrap().to_string(), "linux/arm64");
        assert_eq!(parse("linux/arm").unwrap().to_string(), "linux/arm/v7");
        assert_eq!(parse("arm64").unwrap().to_string(), "linux/arm64");
        assert!(parse("linux/").is_err());
        assert!(parse("plan10/amd64").is_err());
        assert!(parse("linux/z80").is_err());
    }

    #[test]
    fn lists_and_native_platforms() {
        let list = parse_list("linux/amd64,linux/arm64/v8,linux/arm64").unwrap();
        let names: Vec<String> = list.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64"]);
        assert!(parse_list("linux/amd64,").is_err());
        let amd64 = parse("linux/amd64").unwrap();
        assert!(runs_natively(&parse("linux/386").unwrap(), &amd64));
        assert!(runs_natively(&parse("linux/amd64/v3").unwrap(), &amd64));
        assert!(!runs_natively(&list[1], &amd64));
    }

    #[test]
    fn platform_args_cover_both_sides() {
        let p = parse("linux/arm/v7").unwrap();
        let args = platform_args(&host(), &p);
        assert!(args.contains(&("TARGETPLATFORM".into(), "linux/arm/v7".into())));
        assert!(args.contains(&("TARGETVARIANT".into(), "v7".into())));
        assert!(args.contains(&("BUILDOS".into(), "linux".into())));
    }
}
