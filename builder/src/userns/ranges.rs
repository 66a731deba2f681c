//! The user's subordinate ids (`/etc/subuid`, `/etc/subgid`, shadow's subuid(5)) and the maps
//! `newuidmap`/`newgidmap` write from them: id 0 in the namespace is the user (one id), ids 1..N
//! are the subordinate ranges, in the order the file lists them.
//!
//! Owns parsing and the map arguments; knows nothing of processes.

use std::ffi::CStr;
use std::path::Path;

pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// One `NAME:START:COUNT` line: `count` host ids from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The ranges of the user `name` (or numeric `id`) in the text of a subuid or subgid file.
/// Comments, blank and malformed lines, and empty ranges are skipped, as newuidmap does.
pub fn parse(text: &str, name: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            let start = fields.next()?.parse::<u32>().ok()?;
            let count = fields.next()?.parse::<u32>().ok()?;
            (fields.next().is_none() && (owner == name || owner == id) && count > 0)
                .then_some(Range { start, count })
        })
        .collect()
}

/// The arguments after the pid for `newuidmap PID ...`: `0 OWN 1`, then `1 START COUNT` and
/// each further range after the last (`INSIDE START COUNT`).
pub fn map_args(own: u32, ranges: &[Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut inside: u64 = 1;
    for r in ranges {
        args.extend([inside.to_string(), r.start.to_string(), r.count.to_string()]);
        inside += u64::from(r.count);
    }
    args
}

/// The ids the namespace has: the user's own and every range's.
pub fn mapped(ranges: &[Range]) -> u64 {
    1 + ranges.iter().map(|r| u64::from(r.count)).sum::<u64>()
}

/// The ranges of `name`/`id` in `file`; Err(why) when the file cannot be read.
pub fn read(file: &Path, name: &str, id: u32) -> Result<Vec<Range>, std::io::Error> {
    Ok(parse(&std::fs::read_to_string(file)?, name, id))
}

/// The login name of `uid` from the password database (what newuidmap looks up too).
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of pwd's strings.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points to a NUL-terminated string in buf.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_name_or_id_in_file_order() {
        let text = "# comment\nalice:100000:65536\nbob:165536:65536\n1000:300000:10\nalice:bad:1\nalice:5:0\n\nalice:400000:1000\n";
        assert_eq!(
            parse(text, "alice", 1000),
            [
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 10
                },
                Range {
                    start: 400000,
                    count: 1000
                },
            ]
        );
        assert!(parse(text, "carol", 1001).is_empty());
    }

    #[test]
    fn map_arguments_put_the_user_at_zero() {
        let ranges = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 300000,
                count: 10,
            },
        ];
        assert_eq!(
            map_args(1000, &ranges).join(" "),
            "0 1000 1 1 100000 65536 65537 300000 10"
        );
        assert_eq!(mapped(&ranges), 65547);
    }
}
