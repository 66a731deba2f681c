//! The variables a stage expands words with: an ordered list where a later definition of a
//! key replaces the earlier one in place (BuildKit's `llb.EnvList`), and the one expander that
//! every instruction's words go through. Which words of which instruction are expanded is
//! the instruction layer's (`Command::expand`), not this module's.

use crate::shell::{Lexer, ShellError, VarLookup};
use std::collections::{BTreeMap, HashMap};

/// The most bytes a stage's variables (names and values) may hold together. Each word is
/// capped on its own (`shell::MAX_EXPANDED`); this caps the many: a thousand `ARG Bn=$A` of a
/// large `A`. Linux refuses an environment over about 2 MiB at exec anyway.
pub const MAX_ENV_BYTES: usize = 4 << 20;

/// A variable that would take a stage's variables past [`MAX_ENV_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{key}: the stage's ARG and ENV values would add up to more than {} MiB; shorten them",
    MAX_ENV_BYTES >> 20
)]
pub struct EnvTooLarge {
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    vars: Vec<(String, String)>,
    /// Where each name is in `vars` (20k build args must not make lowering quadratic).
    index: HashMap<String, usize>,
    /// Bytes of every name and value.
    bytes: usize,
}

impl EnvList {
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EnvTooLarge> {
        let old = self.get(key).map_or(0, |v| key.len() + v.len());
        let bytes = self.bytes - old + key.len() + value.len();
        if bytes > MAX_ENV_BYTES {
            return Err(EnvTooLarge {
                key: key.to_string(),
            });
        }
        self.inherit(key, value);
        Ok(())
    }

    /// A variable of the base image's config. Counted, but never refused: the base exists
    /// already, and the cap is on what a Dockerfile grows.
    pub fn inherit(&mut self, key: &str, value: &str) {
        let old = self.get(key).map_or(0, |v| key.len() + v.len());
        self.bytes = self.bytes - old + key.len() + value.len();
        match self.index.get(key) {
            Some(&at) => self.vars[at].1 = value.to_string(),
            None => {
                self.index.insert(key.to_string(), self.vars.len());
                self.vars.push((key.to_string(), value.to_string()));
            }
        }
    }

    /// Drops `key`, keeping the order of the rest (BuildKit's `EnvList.Delete`).
    pub fn remove(&mut self, key: &str) {
        let Some(at) = self.index.remove(key) else {
            return;
        };
        let (k, v) = self.vars.remove(at);
        self.bytes -= k.len() + v.len();
        for i in self.index.values_mut() {
            if *i > at {
                *i -= 1;
            }
        }
    }

    /// The names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(k, _)| k.as_str())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&at| self.vars[at].1.as_str())
    }

    /// `KEY=value` strings in order, as a process environment.
    pub fn to_strings(&self) -> Vec<String> {
        self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

impl VarLookup for EnvList {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

/// Expands words against an env and remembers which variables were used (for op metadata and
/// the cache-miss report) and which were referenced but unset (for the UndefinedVar check).
pub struct Expander<'a> {
    pub lexer: &'a Lexer,
    pub env: &'a EnvList,
    pub used: BTreeMap<String, String>,
    pub unset: Vec<String>,
}

impl<'a> Expander<'a> {
    pub fn new(lexer: &'a Lexer, env: &'a EnvList) -> Self {
        Expander {
            lexer,
            env,
            used: BTreeMap::new(),
            unset: Vec::new(),
        }
    }

    pub fn word(&mut self, word: &str) -> Result<String, ShellError> {
        let ex = self.lexer.process_word(word, self.env)?;
        for name in &ex.matched {
            if let Some(v) = self.env.get(name) {
                self.used.insert(name.clone(), v.to_string());
            }
        }
        for name in ex.unmatched {
            if !self.unset.contains(&name) {
                self.unset.push(name);
            }
        }
        Ok(ex.result)
    }

    /// Expands and splits into fields (EXPOSE).
    pub fn words(&mut self, word: &str) -> Result<Vec<String>, ShellError> {
        // Record usage through the single-word path, then split as BuildKit's ProcessWords.
        self.word(word)?;
        self.lexer.process_words(word, self.env)
    }
}
