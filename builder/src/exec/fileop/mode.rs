//! `--chmod` values: octal (`0755`, `755`, up to `07777`) or symbolic (`u+x,go-w`, `a=rX`,
//! `g=u`), as fsutil applies them (`Mode` / `ModeStr` via the `dchapes/mode` port of BSD
//! `setmode(3)`, with a zero umask: a clause without `ugoa` means `a`).
//!
//! Octal replaces the permission, setuid, setgid and sticky bits. Symbolic clauses are applied
//! left to right to the source entry's mode; `X` means "execute if the entry is a directory or
//! already had an execute bit in its original mode".

use super::FileOpError;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModeSpec {
    Octal(u32),
    Symbolic(Vec<Clause>),
}

/// One comma-separated clause: who (bit mask over u/g/o) and its actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    who: u32,
    actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Action {
    op: char,
    perms: Perms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perms {
    /// `r`, `w`, `x`, `X`, `s`, `t` as flags.
    Bits {
        r: bool,
        w: bool,
        x: bool,
        big_x: bool,
        s: bool,
        t: bool,
    },
    /// `u`, `g` or `o`: copy that class's current bits.
    Copy(char),
}

const WHO_U: u32 = 0o4700 | S_ISUID;
const WHO_G: u32 = 0o2070 | S_ISGID;
const WHO_O: u32 = 0o1007;

impl ModeSpec {
    pub(crate) fn parse(s: &str) -> Result<ModeSpec, FileOpError> {
        let bad = || {
            FileOpError::User(format!(
                "invalid chmod parameter: {s:?}; use an octal mode up to 07777 (0755) or a \
                 symbolic mode (u+x,go-w, a=rX)"
            ))
        };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return match u32::from_str_radix(s, 8) {
                Ok(v) if v <= 0o7777 => Ok(ModeSpec::Octal(v)),
                _ => Err(bad()),
            };
        }
        let mut clauses = Vec::new();
        for text in s.split(',') {
            let mut chars = text.chars().peekable();
            let mut who = 0;
            while let Some(&c) = chars.peek() {
                who |= match c {
                    'u' => WHO_U,
                    'g' => WHO_G,
                    'o' => WHO_O,
                    'a' => WHO_U | WHO_G | WHO_O,
                    _ => break,
                };
                chars.next();
            }
            let mut actions = Vec::new();
            while let Some(op) = chars.next() {
                if !matches!(op, '+' | '-' | '=') {
                    return Err(bad());
                }
                let perms = match chars.peek() {
                    Some(&c @ ('u' | 'g' | 'o')) => {
                        chars.next();
                        Perms::Copy(c)
                    }
                    _ => {
                        let (mut r, mut w, mut x, mut big_x, mut s, mut t) =
                            (false, false, false, false, false, false);
                        while let Some(&c) = chars.peek() {
                            match c {
                                'r' => r = true,
                                'w' => w = true,
                                'x' => x = true,
                                'X' => big_x = true,
                                's' => s = true,
                                't' => t = true,
                                _ => break,
                            }
                            chars.next();
                        }
                        Perms::Bits {
                            r,
                            w,
                            x,
                            big_x,
                            s,
                            t,
                        }
                    }
                };
                actions.push(Action { op, perms });
            }
            if actions.is_empty() {
                return Err(bad());
            }
            clauses.push(Clause { who, actions });
        }
        Ok(ModeSpec::Symbolic(clauses))
    }

    /// The new permission and special bits (`& 0o7777`) for an entry whose mode was
    /// `original`.
    pub(crate) fn apply(&self, original: u32, is_dir: bool) -> u32 {
        let original = original & 0o7777;
        match self {
            ModeSpec::Octal(m) => *m,
            ModeSpec::Symbolic(clauses) => {
                let mut m = original;
                let any_exec = original & 0o111 != 0;
                for clause in clauses {
                    let explicit = clause.who != 0;
                    let who = if explicit {
                        clause.who
                    } else {
                        WHO_U | WHO_G | WHO_O
                    };
                    for action in &clause.actions {
                        let bits = match action.perms {
                            Perms::Copy(c) => {
                                let v = match c {
                                    'u' => (m >> 6) & 7,
                                    'g' => (m >> 3) & 7,
                                    _ => m & 7,
                                };
                                (v << 6 | v << 3 | v) & who & 0o777
                            }
                            Perms::Bits {
                                r,
                                w,
                                x,
                                big_x,
                                s,
                                t,
                            } => {
                                let mut b = 0;
                                if r {
                                    b |= 0o444;
                                }
                                if w {
                                    b |= 0o222;
                                }
                                if x || (big_x && (is_dir || any_exec)) {
                                    b |= 0o111;
                                }
                                if s {
                                    b |= S_ISUID | S_ISGID;
                                }
                                if t && (who & WHO_O == WHO_O) {
                                    b |= S_ISVTX;
                                }
                                b & who
                            }
                        };
                        match action.op {
                            '+' => m |= bits,
                            '-' => m &= !bits,
                            _ => {
                                let mut clear = who & 0o777;
                                if who & WHO_U == WHO_U {
                                    clear |= S_ISUID;
                                }
                                if who & WHO_G == WHO_G {
                                    clear |= S_ISGID;
                                }
                                if who & WHO_O == WHO_O {
                                    clear |= S_ISVTX;
                                }
                                m = (m & !clear) | bits;
                            }
                        }
                    }
                }
                m & 0o7777
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ModeSpec;

    fn sym(s: &str, mode: u32, dir: bool) -> u32 {
        ModeSpec::parse(s).unwrap().apply(mode, dir)
    }

    #[test]
    fn symbolic() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("go-w", 0o666, false), 0o644);
        assert_eq!(sym("+x", 0o644, false), 0o755);
        assert_eq!(sym("a=rX", 0o640, false), 0o444);
        assert_eq!(sym("a=rX", 0o700, false), 0o555);
        assert_eq!(sym("a=rX", 0o700, true), 0o555);
        assert_eq!(sym("u=rwX,go=rX", 0o600, true), 0o755);
        assert_eq!(sym("u=rwX,go=rX", 0o600, false), 0o644);
        assert_eq!(sym("g=u", 0o750, false), 0o770);
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("+t", 0o777, true), 0o1777);
        assert_eq!(sym("u+x-w", 0o644, false), 0o544);
        assert_eq!(ModeSpec::parse("0755").unwrap(), ModeSpec::Octal(0o755));
        assert!(ModeSpec::parse("8").is_err());
        assert!(ModeSpec::parse("u").is_err());
        assert!(ModeSpec::parse("q+x").is_err());
    }
}
