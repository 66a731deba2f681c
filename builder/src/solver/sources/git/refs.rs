//! What `git ls-remote` says a ref is: its commit, and the tag object of an annotated tag.

/// A ref resolved on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The commit the tree comes from.
    pub(super) commit: String,
    /// What the ref itself points at: the tag object for an annotated tag, else the commit.
    pub(super) object: String,
    /// The full ref name (`refs/heads/main`), when the ref was a name.
    pub(super) name: Option<String>,
}

pub(super) fn is_commit_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `ls-remote --symref URL HEAD`: `ref: refs/heads/main\tHEAD` then `<sha>\tHEAD`.
pub(super) fn parse_head(out: &str) -> Option<Resolved> {
    let mut name = None;
    let mut commit = None;
    for line in out.lines() {
        let (left, right) = line.split_once('\t')?;
        if right != "HEAD" {
            continue;
        }
        if let Some(target) = left.strip_prefix("ref: ") {
            name = Some(target.trim().to_string());
        } else if is_commit_sha(left) {
            commit = Some(left.to_ascii_lowercase());
        }
    }
    let commit = commit?;
    Some(Resolved {
        object: commit.clone(),
        commit,
        name,
    })
}

/// `ls-remote URL REF` lists every ref whose name ends in REF: the exact `refs/...` name,
/// else the branch, else the tag (peeled through `^{}` when annotated).
pub(super) fn parse_ref(out: &str, reference: &str) -> Option<Resolved> {
    let lines: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(sha, _)| is_commit_sha(sha))
        .collect();
    let find = |name: &str| lines.iter().find(|(_, n)| *n == name).map(|(s, _)| *s);
    let candidates = if reference.starts_with("refs/") {
        vec![reference.to_string()]
    } else {
        vec![
            format!("refs/heads/{reference}"),
            format!("refs/tags/{reference}"),
        ]
    };
    for name in candidates {
        if let Some(object) = find(&name) {
            let commit = find(&format!("{name}^{{}}")).unwrap_or(object);
            return Some(Resolved {
                commit: commit.to_ascii_lowercase(),
                object: object.to_ascii_lowercase(),
                name: Some(name),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";

    #[test]
    fn head_is_the_default_branch() {
        let out = format!("ref: refs/heads/trunk\tHEAD\n{A}\tHEAD\n");
        assert_eq!(
            parse_head(&out),
            Some(Resolved {
                commit: A.into(),
                object: A.into(),
                name: Some("refs/heads/trunk".into())
            })
        );
        assert_eq!(parse_head(""), None);
    }

    #[test]
    fn refs_prefer_the_exact_branch_then_the_tag_peeled() {
        let out =
            format!("{A}\trefs/heads/feature/v1\n{B}\trefs/tags/v1\n{C}\trefs/tags/v1^{{}}\n");
        let r = parse_ref(&out, "v1").unwrap();
        assert_eq!((r.commit.as_str(), r.object.as_str()), (C, B));
        assert_eq!(r.name.as_deref(), Some("refs/tags/v1"));
        let out = format!("{B}\trefs/tags/main\n{A}\trefs/heads/main\n");
        assert_eq!(parse_ref(&out, "main").unwrap().commit, A);
        assert_eq!(
            parse_ref(&out, "refs/tags/main").unwrap().commit,
            B.to_string()
        );
        assert_eq!(parse_ref(&out, "ain"), None);
    }
}
