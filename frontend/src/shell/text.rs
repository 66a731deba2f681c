//! The few Go text conventions the lexer's behaviour depends on: character classes of Go's
//! `unicode` package, `string(rune)` of EOF, and `%q` quoting for error messages.

use super::tables::{in_table, DIGIT, LETTER, PRINT};

/// Go's `unicode.IsLetter`.
pub(super) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        in_table(LETTER, c)
    }
}

/// Go's `unicode.IsDigit` (decimal digits of any script).
pub(super) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        in_table(DIGIT, c)
    }
}

/// Go's `unicode.IsSpace`. Both it and Rust's `char::is_whitespace` are the Unicode
/// `White_Space` property (Go spells out the Latin-1 part: `\t \n \v \f \r`, space, U+0085,
/// U+00A0), so the Rust one is used.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `string(r)` for a rune read by `text/scanner`: EOF (-1) becomes U+FFFD.
pub(super) fn rune_string(c: Option<char>) -> String {
    c.unwrap_or(char::REPLACEMENT_CHARACTER).to_string()
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and ASCII space.
fn is_print(c: char) -> bool {
    match c as u32 {
        0x20..=0x7E => true,
        0..=0x1F | 0x7F..=0xA0 | 0xAD => false,
        0xA1..=0xFF => true,
        _ => in_table(PRINT, c),
    }
}

/// `fmt.Sprintf("%q", s)` for a valid UTF-8 string (Go's `strconv.Quote`).
pub(super) fn go_quote(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_print(c) => out.push(c),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0C' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0B' => out.push_str("\\v"),
            c => {
                let v = c as u32;
                let (prefix, digits) = if v < 0x20 || v == 0x7F {
                    ("\\x", 2)
                } else if v < 0x10000 {
                    ("\\u", 4)
                } else {
                    ("\\U", 8)
                };
                out.push_str(prefix);
                for i in (0..digits).rev() {
                    out.push(char::from(HEX[((v >> (4 * i)) & 0xF) as usize]));
                }
            }
        }
    }
    out.push('"');
    out
}
