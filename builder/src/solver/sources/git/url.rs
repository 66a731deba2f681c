//! Remote URLs: which ones go over ssh, and their passwords kept out of messages.

/// A remote git reaches over ssh: `ssh://...`, or scp-like `[user@]host:path` (no scheme).
pub(super) fn is_ssh(remote: &str) -> bool {
    match remote.split_once("://") {
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("ssh"),
        None => remote.contains(':'),
    }
}

/// A URL with its password (`user:password@`) replaced by `xxxxx`, as BuildKit redacts it.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:xxxxx@{host}{path}"),
        None => url.to_string(),
    }
}

/// The password of a URL, to scrub from git's messages.
pub(super) fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("https://user:s3cret@host/x.git"),
            "https://user:xxxxx@host/x.git"
        );
        assert_eq!(
            redact("https://token@host/x.git"),
            "https://token@host/x.git"
        );
        assert_eq!(redact("git@github.com:a/b.git"), "git@github.com:a/b.git");
        assert_eq!(password("https://u:p@h/x.git"), Some("p"));
        assert_eq!(password("https://h/a@b.git"), None);
    }
}
