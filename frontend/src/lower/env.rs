//! The variables a stage expands words with: an ordered list where a later definition of a
//! key replaces the earlier one in place (BuildKit's `llb.EnvList`), and the one expander that
//! every instruction's words go through. Which words of which instruction are expanded is
//! the instruction layer's (`Command::expand`), not this module's.

use crate::shell::{Lexer, ShellError, VarLookup};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(Vec<(String, String)>);

impl EnvList {
    pub fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `KEY=value` strings in order, as a process environment.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
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
