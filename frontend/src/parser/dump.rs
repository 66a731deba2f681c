//! Rendering the AST as BuildKit's `Node.Dump()` s-expressions, and Go's `strconv.Quote`.
//!
//! The golden `result` files are `root.Dump() + "\n"`: one `(keyword ["--flag"] "arg" ...)`
//! per instruction, `\n`-separated, with ONBUILD's instruction nested as `(onbuild (run ...))`.

use std::fmt::Write as _;

use super::goprint::is_print;
use super::gostr::{to_lower, trim_space};
use crate::ast::{Dockerfile, Node};

/// Go's `strconv.Quote` (what `%q` prints) for a UTF-8 string.
pub fn go_quote(s: &str) -> String {
    go_quote_bytes(s.as_bytes())
}

/// Go's `strconv.Quote` for arbitrary bytes: an invalid UTF-8 byte becomes `\xNN`.
pub fn go_quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            escape_rune(&mut out, c);
        }
        for &x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
    out.push('"');
    out
}

fn escape_rune(out: &mut String, r: char) {
    if r == '"' || r == '\\' {
        out.push('\\');
        out.push(r);
        return;
    }
    if is_print(r) {
        out.push(r);
        return;
    }
    let cp = r as u32;
    match r {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        _ if cp < 0x20 || cp == 0x7f => {
            let _ = write!(out, "\\x{cp:02x}");
        }
        _ if cp < 0x10000 => {
            let _ = write!(out, "\\u{cp:04x}");
        }
        _ => {
            let _ = write!(out, "\\U{cp:08x}");
        }
    }
}

/// Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// One instruction as `Node.Dump()` renders it (without the surrounding parentheses).
pub fn dump_node(node: &Node) -> String {
    let mut s = to_lower(&node.keyword);
    if !node.flags.is_empty() {
        s.push(' ');
        s.push_str(&quote_list(&node.flags));
    }
    if let Some(child) = &node.onbuild {
        s.push_str(" (");
        s.push_str(&dump_node(child));
        s.push(')');
    }
    for arg in &node.args {
        s.push(' ');
        s.push_str(&go_quote(arg));
    }
    trim_space(&s).to_string()
}

/// The whole file as BuildKit's parser tests compare it: `AST.Dump() + "\n"`.
pub fn dump(df: &Dockerfile) -> String {
    let lines: Vec<String> = df
        .nodes
        .iter()
        .map(|n| format!("({})", dump_node(n)))
        .collect();
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(go_quote("abc"), r#""abc""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\x07\x08\x0c\n\r\t\x0b"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(go_quote("\0\x1b\x7f"), r#""\x00\x1b\x7f""#);
        assert_eq!(go_quote("♥☃é"), "\"♥☃é\"");
        assert_eq!(
            go_quote("\u{a0}\u{ad}\u{200b}\u{feff}"),
            r#""\u00a0\u00ad\u200b\ufeff""#
        );
        assert_eq!(go_quote("\u{e000}\u{10ffff}"), r#""\ue000\U0010ffff""#);
        assert_eq!(go_quote("\u{1f600}"), "\"\u{1f600}\"");
        assert_eq!(go_quote_bytes(b"a\xffb\xe2\x82"), r#""a\xffb\xe2\x82""#);
    }
}
