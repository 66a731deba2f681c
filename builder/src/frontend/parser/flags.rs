//! Splitting an instruction line into keyword, `--flags` and the rest: BuildKit's
//! `splitCommand` and `extractBuilderFlags`.
//!
//! Flags are the leading words starting with `--`; a bare `--` ends them. Within a flag word
//! quotes are removed and `\` escapes the next byte (always `\`, whatever `# escape=` says).
//! BuildKit walks the flag text byte by byte and turns each byte into a rune, so a
//! non-ASCII byte becomes the Latin-1 character of that value (`é` reads as `Ã©`) and the
//! bytes 0x85 and 0xA0 separate words. We reproduce that; when it would leave the rest of
//! the line starting inside a UTF-8 sequence (which Go would carry as invalid UTF-8) we
//! report an error instead.

use super::gostr::{is_byte_space, split_ws, trim_space};

/// The parts of one instruction line.
pub(crate) struct Split<'a> {
    /// The keyword as written.
    pub(crate) cmd: &'a str,
    pub(crate) flags: Vec<String>,
    /// The arguments after the flags, trimmed.
    pub(crate) args: &'a str,
}

/// BuildKit's `splitCommand`.
pub(crate) fn split_command(line: &str) -> Result<Split<'_>, String> {
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
pub(crate) fn extract_builder_flags(line: &str) -> Result<(&str, Vec<String>), String> {
    let b = line.as_bytes();
    let mut words: Vec<String> = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut ch = 0u8;
    let rest_at = |pos: usize| -> Result<&str, String> {
        line.get(pos..).ok_or_else(|| {
            "flags end inside a multi-byte character (BuildKit reads flags byte by byte)"
                .to_string()
        })
    };
    let mut pos = 0usize;
    while pos <= b.len() {
        if pos != b.len() {
            ch = b[pos];
        }
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_byte_space(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return Ok((rest_at(pos)?, words));
            }
            phase = Phase::Word;
        }
        if phase != Phase::Spaces && pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_byte_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return Ok((rest_at(pos)?, words));
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
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
            word.push(char::from(ch));
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
        word.push(char::from(ch));
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
        assert_eq!(flags("--x=é y"), ("y".into(), vec!["--x=Ã©".into()]));
    }
}
