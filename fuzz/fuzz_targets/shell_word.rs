//! `frontend::shell::Lexer::process_word`: ARG/ENV expansion of one word with a small env.
//!
//! The first byte picks the lexer's options (escape character, raw quotes/escapes, skipping
//! unset variables, skipping quotes); the rest is the word. Invariants: never a panic; the
//! names it reports as matched are set in the env and the unmatched ones are not; the
//! expanded word and its fields stay under the lexer's size cap (`MAX_EXPANDED`, plus the
//! word's own length).
#![no_main]

use frontend::shell::{Lexer, MAX_EXPANDED};
use libfuzzer_sys::fuzz_target;

const ENV: [(&str, &str); 7] = [
    ("A", "a"),
    ("SP", "x y  z"),
    ("EMPTY", ""),
    ("GLOB", "*.py?[ab]"),
    ("PATHV", "/usr/local/bin:/usr/bin"),
    ("Q", "'\"\\$"),
    (
        "LONG",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ),
];

fuzz_target!(|data: &[u8]| {
    let Some((&opts, word)) = data.split_first() else {
        return;
    };
    let Ok(word) = std::str::from_utf8(word) else {
        return;
    };
    let mut lexer = Lexer::new(if opts & 1 == 0 { '\\' } else { '`' });
    lexer.raw_quotes = opts & 2 != 0;
    lexer.raw_escapes = opts & 4 != 0;
    lexer.skip_unset_env = opts & 8 != 0;
    lexer.skip_process_quotes = opts & 16 != 0;
    match lexer.process_word(word, &ENV) {
        Ok(exp) => {
            for name in &exp.matched {
                assert!(
                    ENV.iter().any(|(k, _)| k == name),
                    "{word:?}: {name:?} reported as set"
                );
            }
            for name in &exp.unmatched {
                assert!(
                    !ENV.iter().any(|(k, _)| k == name),
                    "{word:?}: {name:?} reported as unset"
                );
            }
            // Literal characters may be copied without a check, variables' values may not.
            let cap = MAX_EXPANDED + word.len();
            assert!(
                exp.result.len() <= cap,
                "{word:?}: {} bytes",
                exp.result.len()
            );
            let fields: usize = exp.words.iter().map(String::len).sum();
            assert!(fields <= cap, "{word:?}: fields of {fields} bytes");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
