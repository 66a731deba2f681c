//! The exec form: BuildKit's `parseJSON`, i.e. Go's `encoding/json` decoding the rest of the
//! line into `[]any`, then requiring every element to be a string.
//!
//! Outcomes mirror Go: text that does not start with `[`, is not valid JSON (Go's grammar,
//! nesting limit 10000), or holds a number too large for a float64 (an `UnmarshalTypeError`)
//! falls back to the shell form; a valid array with a non-string element is a hard error.
//! The validator is iterative, so deep nesting cannot overflow the stack.

use super::gostr::trim_left_space;

/// Go's `encoding/json` maximum nesting depth.
const MAX_DEPTH: usize = 10_000;

pub(crate) enum Json {
    /// Not a JSON array (or not valid JSON): use the shell form.
    Shell,
    /// A valid array with a non-string element.
    NotStrings,
    Strings(Vec<String>),
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    overflow: bool,
}

type R<T> = Result<T, ()>;

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(())
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.b.get(at..at + 4)?;
        let s = std::str::from_utf8(h).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }

    /// A string literal, decoded as Go does (lone surrogates become U+FFFD).
    fn string(&mut self) -> R<String> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek().ok_or(())?;
            self.i += 1;
            match c {
                b'"' => break,
                0x00..=0x1f => return Err(()),
                b'\\' => {
                    let e = self.peek().ok_or(())?;
                    self.i += 1;
                    let simple = match e {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(0x08),
                        b'f' => Some(0x0c),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => return Err(()),
                    };
                    if let Some(s) = simple {
                        out.push(s);
                        continue;
                    }
                    let r = self.hex4(self.i).ok_or(())?;
                    self.i += 4;
                    let ch = if (0xd800..0xe000).contains(&r) {
                        let pair = if r < 0xdc00 && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
                            self.hex4(self.i + 2)
                                .filter(|lo| (0xdc00..0xe000).contains(lo))
                        } else {
                            None
                        };
                        match pair {
                            Some(lo) => {
                                self.i += 6;
                                char::from_u32(0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00))
                                    .unwrap_or('\u{fffd}')
                            }
                            None => '\u{fffd}',
                        }
                    } else {
                        char::from_u32(r).unwrap_or('\u{fffd}')
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| ())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number per the JSON grammar; records whether it overflows a float64.
    fn number(&mut self) -> R<()> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(()),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(());
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|_| ())?;
        if text.parse::<f64>().map_or(true, f64::is_infinite) {
            self.overflow = true;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(())
        }
    }

    fn object_key(&mut self) -> R<()> {
        self.ws();
        self.string()?;
        self.ws();
        self.eat(b':')
    }

    /// Any value, iteratively; `depth` is the nesting already open around it.
    fn value(&mut self, depth: usize) -> R<()> {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            // Expecting a value.
            self.ws();
            let mut closed = false;
            match self.peek().ok_or(())? {
                open @ (b'[' | b'{') => {
                    self.i += 1;
                    stack.push(open);
                    if depth + stack.len() > MAX_DEPTH {
                        return Err(());
                    }
                    self.ws();
                    let close = if open == b'[' { b']' } else { b'}' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        stack.pop();
                        closed = true;
                    } else if open == b'{' {
                        self.object_key()?;
                    }
                }
                b'"' => {
                    self.string()?;
                    closed = true;
                }
                b't' => self.literal(b"true").map(|_| closed = true)?,
                b'f' => self.literal(b"false").map(|_| closed = true)?,
                b'n' => self.literal(b"null").map(|_| closed = true)?,
                _ => self.number().map(|_| closed = true)?,
            }
            if !closed {
                continue;
            }
            // After a complete value: close containers or move to the next element.
            loop {
                let Some(&top) = stack.last() else {
                    return Ok(());
                };
                self.ws();
                match (self.peek(), top) {
                    (Some(b','), _) => {
                        self.i += 1;
                        if top == b'{' {
                            self.object_key()?;
                        }
                        break;
                    }
                    (Some(b']'), b'[') | (Some(b'}'), b'{') => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => return Err(()),
                }
            }
        }
    }

    /// The top-level array: each element's decoded string, or None when not a string.
    fn top_array(&mut self) -> R<Vec<Option<String>>> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if self.peek() == Some(b'"') {
                    items.push(Some(self.string()?));
                } else {
                    self.value(1)?;
                    items.push(None);
                }
                self.ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b']') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(()),
                }
            }
        }
        self.ws();
        if self.i != self.b.len() {
            return Err(());
        }
        Ok(items)
    }
}

/// BuildKit's `parseJSON` outcome for the text after the flags.
pub(crate) fn parse_json(rest: &str) -> Json {
    let rest = trim_left_space(rest);
    if !rest.starts_with('[') {
        return Json::Shell;
    }
    let mut r = Reader {
        b: rest.as_bytes(),
        i: 0,
        overflow: false,
    };
    let Ok(items) = r.top_array() else {
        return Json::Shell;
    };
    if r.overflow {
        return Json::Shell;
    }
    items
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .map_or(Json::NotStrings, Json::Strings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &str) -> Option<Vec<String>> {
        match parse_json(s) {
            Json::Strings(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn json_arrays() {
        assert_eq!(strings("[]"), Some(vec![]));
        assert_eq!(
            strings(r#"[ "a" , "b" ]"#),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            strings(r#"["\ud83d\ude00\ud800x"]"#),
            Some(vec!["😀\u{fffd}x".into()])
        );
        assert!(matches!(parse_json(r#"["a", ["b"]]"#), Json::NotStrings));
        assert!(matches!(
            parse_json(r#"["a", {"k": [1, null]}]"#),
            Json::NotStrings
        ));
        assert!(matches!(parse_json("[1e400]"), Json::Shell));
        assert!(matches!(parse_json("['a']"), Json::Shell));
        assert!(matches!(parse_json(r#"["a"] x"#), Json::Shell));
        assert!(matches!(parse_json(r#"["a",]"#), Json::Shell));
        assert!(matches!(parse_json("[01]"), Json::Shell));
        let deep = "[".repeat(20_000);
        assert!(matches!(parse_json(&deep), Json::Shell));
        let ok_deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(matches!(parse_json(&ok_deep), Json::NotStrings));
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(parse_json(&too_deep), Json::Shell));
    }
}
