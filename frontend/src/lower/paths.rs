//! Path arithmetic of lowering, as Go and BuildKit do it: `path.Clean`, WORKDIR
//! normalisation, and destinations relative to WORKDIR. Pure string functions: no stage
//! state, no graph.

/// Go's `path.Clean` for absolute paths.
pub(super) fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `path.Clean`, relative paths included (`""` -> `.`, `a/../b` -> `b`).
pub(super) fn go_path_clean(p: &str) -> String {
    if p.starts_with('/') {
        return clean_path(p);
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// BuildKit's `NormalizeWorkdir`: relative paths join the current one; the result is clean.
pub(super) fn normalize_workdir(current: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{current}/{path}")
    };
    clean_path(&joined)
}

/// BuildKit's `pathRelativeToWorkingDir`: absolute paths are cleaned, relative ones joined to
/// WORKDIR; a trailing `/` (or `/.`, or `.`) is kept, since it means "into this directory".
pub(super) fn path_relative_to_workdir(dir: &str, p: &str) -> String {
    let keep_slash = p.ends_with('/') || p.ends_with("/.") || p == "." || p.is_empty();
    let joined = if p.starts_with('/') {
        clean_path(p)
    } else {
        clean_path(&format!("{dir}/{p}"))
    };
    if keep_slash && !joined.ends_with('/') {
        joined + "/"
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_and_paths() {
        assert_eq!(normalize_workdir("/", "app"), "/app");
        assert_eq!(normalize_workdir("/app", "src/../lib/"), "/app/lib");
        assert_eq!(normalize_workdir("/app", "/opt//x/."), "/opt/x");
        assert_eq!(normalize_workdir("", "x"), "/x");
    }

    #[test]
    fn dest_paths_keep_trailing_slash() {
        assert_eq!(path_relative_to_workdir("/app", "."), "/app/");
        assert_eq!(path_relative_to_workdir("/app", "src/"), "/app/src/");
        assert_eq!(path_relative_to_workdir("/app", "main.py"), "/app/main.py");
        assert_eq!(path_relative_to_workdir("/app", "/opt/x/"), "/opt/x/");
        assert_eq!(path_relative_to_workdir("/", "../../etc"), "/etc");
    }
}
