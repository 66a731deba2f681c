//! Splitting an instruction line into keyword, `--flags` and the rest: BuildKit's
//! `splitCommand` and `extractBuilderFlags`.
//!
//! Flags are the leading words starting with `--`; a bare `--` ends them. Within a flag word
//! quotes are removed and `\` escapes the next byte (always `\`, whatever `# escape=` says).
//! BuildKit walks the flag text byte by byte and turns each byte into a rune, so a non-ASCII
//! byte becomes the Latin-1 character of that value (`--chown=josé` reads as `josÃ©`) and the
//! UTF-8 continuation bytes 0x85 and 0xA0 split words. That is a bug, and pallet deliberately
//! differs: flag values keep their text as written and only ASCII blanks separate words.

use super::gostr::{split_ws, trim_space};

/// Flags that end inside a UTF-8 character (BuildKit would cut the character in two).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flags end inside a multi-byte character (BuildKit reads flags byte by byte)")]
pub struct FlagSplitError;

/// Blanks between flag words: ASCII only (see the module doc).
fn is_flag_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// The parts of one instruction line.
pub(crate) struct Split<'a> {
    /// The keyword as written.
    pub(crate) cmd: &'a str,
    pub(crate) flags: Vec<String>,
    /// The arguments after the flags, trimmed.
    pub(crate) args: &'a str,
}

/// BuildKit's `splitCommand`.
pub(crate) fn split_command(line: &str) -> Result<Split<'_>, FlagSplitError> {
    let parts = split_ws(trim_space(line), 2);
    let cmd = parts[0];
    let (args, flags) = if parts.len() == 2 {
        extract_builder_flags(parts[1])?
    } else {
        ("", Vec::new())
    };
    Ok(Split {
        cmd,
        flags,
        args: trim_space(args),
    })
}

#[derive(PartialEq, Clone, Copy)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Returns the rest of the line (from the first non-flag word) and the flags.
pub(crate) fn extract_builder_flags(line: &str) -> Result<(&str, Vec<String>), FlagSplitError> {
    let b = line.as_bytes();
    let mut words: Vec<String> = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut ch = 0u8;
    let rest_at = |pos: usize| line.get(pos..).ok_or(FlagSplitError);
    let mut pos = 0usize;
    while pos <= b.len() {
        if pos != b.len() {
            ch = b[pos];
        }
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_flag_space(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return Ok((rest_at(pos)?, words));
            }
            phase = Phase::Word;
        }
        if phase != Phase::Spaces && pos == b.len() {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                words.push(String::from_utf8_lossy(&word).into_owned());
            }
            break;
        }
        if phase == Phase::Word {
            if is_flag_space(ch) {
                phase = Phase::Spaces;
                if word == b"--" {
                    return Ok((rest_at(pos)?, words));
                }
                if blank_ok || !word.is_empty() {
                    words.push(String::from_utf8_lossy(&std::mem::take(&mut word)).into_owned());
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = b[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == b'\\' {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = b[pos];
        }
        word.push(ch);
        pos += 1;
    }
    Ok(("", words))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(line: &str) -> (String, Vec<String>) {
        let (rest, f) = extract_builder_flags(line).unwrap();
        (rest.to_string(), f)
    }

    #[test]
    fn builder_flags() {
        assert_eq!(flags("--a=b c"), ("c".into(), vec!["--a=b".into()]));
        assert_eq!(flags("--a -- c"), (" c".into(), vec!["--a".into()]));
        assert_eq!(flags("--a=\"x y\" z"), ("z".into(), vec!["--a=x y".into()]));
        assert_eq!(flags("--a --"), ("".into(), vec!["--a".into()]));
        assert_eq!(flags("-a"), ("-a".into(), vec![]));
        assert_eq!(flags("--x=é y"), ("y".into(), vec!["--x=é".into()]));
        assert_eq!(
            flags("--chown=à:à z"),
            ("z".into(), vec!["--chown=à:à".into()])
        );
    }
}
