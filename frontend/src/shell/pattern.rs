//! Shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`.
//!
//! BuildKit turns a pattern into a Go regular expression (`*` -> `.*` or `.*?`, `?` -> `.`,
//! everything else literal) and lets Go's `regexp` find the leftmost-first match. The same
//! happens here without a regex engine: the pattern becomes a tiny program (literal, any
//! character but newline, star loop) run by a Pike VM with thread priorities, which yields
//! the same match as Go's leftmost-first semantics in `O(pattern * text)` time and without
//! recursion. Positions are in chars; strings are sliced only at char boundaries.

use super::text::{is_digit, is_letter, rune_string};
use super::ExpandError;

/// A pattern Go's regexp compiler refuses: an escape of anything but `*`, `?` and `\` (the
/// escaped character, U+FFFD when the escape ends the pattern).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid escape '\\{0}'")]
pub struct InvalidEscape(pub String);

#[derive(Clone, Copy, Debug)]
enum Inst {
    /// One literal character.
    Char(char),
    /// Any character but `\n` (Go's `.` without the `s` flag).
    Any,
    /// Continue at both targets, the first with higher priority.
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub(super) struct Pattern {
    prog: Vec<Inst>,
    anchored: bool,
}

/// BuildKit's `convertShellPatternToRegex`: `greedy` picks `.*` over `.*?` for `*`, and
/// `anchored` only allows matches at the start of the text. The error text is Go's.
pub(super) fn compile(
    pattern: &str,
    greedy: bool,
    anchored: bool,
) -> Result<Pattern, InvalidEscape> {
    let mut chars = pattern.chars().peekable();
    // Go's text/scanner drops a byte order mark at the very start of its input.
    if chars.peek() == Some(&'\u{FEFF}') {
        chars.next();
    }
    let mut prog = Vec::new();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => {
                let split = prog.len();
                let (any, after) = (split + 1, split + 3);
                prog.push(if greedy {
                    Inst::Split(any, after)
                } else {
                    Inst::Split(after, any)
                });
                prog.push(Inst::Any);
                prog.push(Inst::Jmp(split));
            }
            '?' => prog.push(Inst::Any),
            '\\' => {
                // `}` and `/` have to be escaped inside ${}, but the escape is not part of
                // the pattern.
                if matches!(chars.peek(), Some('}') | Some('/')) {
                    continue;
                }
                match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => prog.push(Inst::Char(c)),
                    other => return Err(InvalidEscape(rune_string(other))),
                }
            }
            c => prog.push(Inst::Char(c)),
        }
    }
    prog.push(Inst::Match);
    Ok(Pattern { prog, anchored })
}

/// A set of program counters in insertion order (one thread list of the Pike VM).
struct Threads {
    /// (pc, start position of the match attempt), highest priority first.
    list: Vec<(usize, usize)>,
    seen: Vec<bool>,
}

impl Threads {
    fn new(len: usize) -> Self {
        Threads {
            list: Vec::new(),
            seen: vec![false; len],
        }
    }

    fn clear(&mut self) {
        for &(pc, _) in &self.list {
            self.seen[pc] = false;
        }
        self.list.clear();
    }
}

impl Pattern {
    /// Adds a thread at `pc` and everything it reaches without consuming input, in priority
    /// order; a pc already present keeps its earlier (higher-priority) thread.
    fn add(&self, threads: &mut Threads, stack: &mut Vec<usize>, pc: usize, start: usize) {
        stack.clear();
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            match self.prog[pc] {
                Inst::Jmp(to) => stack.push(to),
                Inst::Split(first, second) => {
                    stack.push(second);
                    stack.push(first);
                }
                _ => {
                    if !threads.seen[pc] {
                        threads.seen[pc] = true;
                        threads.list.push((pc, start));
                    }
                }
            }
        }
    }

    /// The leftmost-first match starting at or after `from` (Go's `FindStringIndex` on
    /// `text[from..]` as `replaceAll` calls it), as char positions `(start, end)`.
    pub(super) fn find(&self, text: &[char], from: usize) -> Option<(usize, usize)> {
        let len = self.prog.len();
        let mut clist = Threads::new(len);
        let mut nlist = Threads::new(len);
        let mut stack = Vec::new();
        let mut matched = None;
        let mut pos = from;
        loop {
            if matched.is_none() && (!self.anchored || pos == 0) && pos <= text.len() {
                self.add(&mut clist, &mut stack, 0, pos);
            }
            if clist.list.is_empty() {
                break;
            }
            let ch = text.get(pos).copied();
            nlist.clear();
            for i in 0..clist.list.len() {
                let (pc, start) = clist.list[i];
                match self.prog[pc] {
                    Inst::Match => {
                        // Lower-priority threads can only find worse matches.
                        matched = Some((start, pos));
                        break;
                    }
                    Inst::Char(c) if ch == Some(c) => {
                        self.add(&mut nlist, &mut stack, pc + 1, start)
                    }
                    Inst::Any if ch.is_some_and(|c| c != '\n') => {
                        self.add(&mut nlist, &mut stack, pc + 1, start)
                    }
                    _ => {}
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
            if pos >= text.len() {
                // Threads left now wait for input past the end; none can match.
                break;
            }
            pos += 1;
        }
        matched
    }
}

/// Byte offset of char position `pos` in `s` (the length for positions at or past the end).
fn byte_at(s: &str, pos: usize) -> usize {
    s.char_indices().nth(pos).map_or(s.len(), |(i, _)| i)
}

/// `${v#p}` / `${v##p}`: BuildKit's `trimPrefix`.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, ExpandError> {
    let re = compile(pattern, greedy, true).map_err(|e| ExpandError::InvalidPattern {
        pattern: pattern.to_string(),
        source: e,
    })?;
    let text: Vec<char> = value.chars().collect();
    Ok(match re.find(&text, 0) {
        Some((_, end)) => text[end..].iter().collect(),
        None => value.to_owned(),
    })
}

/// `${v%p}` / `${v%%p}`: BuildKit's `trimSuffix`, which reverses pattern and value and trims
/// a prefix (so its error messages show the reversed pattern).
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, ExpandError> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern keeping each `\x` pair in order (BuildKit's `reversePattern`).
pub(super) fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = chars.clone();
    let n = chars.len();
    let mut i = 0;
    while i < n {
        let o = n - 1 - i;
        if chars[i] == '\\' && i + 1 < n {
            out[o - 1] = '\\';
            out[o] = chars[i + 1];
            i += 2;
        } else {
            out[o] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${v/p/r}`: replaces the first match with `replacement`, literally.
pub(super) fn replace_first(re: &Pattern, value: &str, replacement: &str) -> String {
    let text: Vec<char> = value.chars().collect();
    match re.find(&text, 0) {
        Some((start, end)) => {
            let (a, b) = (byte_at(value, start), byte_at(value, end));
            format!("{}{}{}", &value[..a], replacement, &value[b..])
        }
        None => value.to_owned(),
    }
}

/// `${v//p/r}`: Go's `Regexp.ReplaceAllString(value, replacement)`, including its treatment
/// of empty matches and the `$` template syntax of `replacement`; None once the result would
/// pass `limit` bytes.
pub(super) fn replace_all(
    re: &Pattern,
    value: &str,
    replacement: &str,
    limit: usize,
) -> Option<String> {
    let text: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((start, end)) = re.find(&text, search) else {
            break;
        };
        out.extend(&text[last_end..start]);
        // No replacement for an empty match right after the previous match.
        if end > last_end || start == 0 {
            expand_template(&mut out, replacement, &text[start..end]);
        }
        if out.len() > limit {
            return None;
        }
        last_end = end;
        // Advance past this match, always by at least one character.
        let width = usize::from(search < text.len());
        if search + width > end {
            search += width;
        } else if search + 1 > end {
            search += 1;
        } else {
            search = end;
        }
    }
    out.extend(&text[last_end..]);
    (out.len() <= limit).then_some(out)
}

/// Go's `Regexp.expand` for a regexp without groups: `$$` is `$`, `$0`/`${0}` the match,
/// any other well-formed `$name`/`${name}` nothing, and a malformed `$` stays literal.
fn expand_template(out: &mut String, template: &str, whole: &[char]) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_name(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.extend(whole);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Go's `extract`: a leading `name` or `{name}` of letters, digits and `_`, and the rest.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (body, brace) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(is_letter(c) || is_digit(c) || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if brace {
        body[end..].strip_prefix('}').map(|rest| (name, rest))
    } else {
        Some((name, &body[end..]))
    }
}
