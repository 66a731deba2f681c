//! Word expansion tests.
//!
//! The tables port BuildKit's `frontend/dockerfile/shell` test data (`envVarTest`,
//! `wordsTest`, `lex_test.go`), rewritten as Rust data; BuildKit's Linux expectations are
//! used where Windows differs. The `skip` columns and the raw-quotes table hold what
//! BuildKit's lexer itself produces with `SkipUnsetEnv` (and `RawQuotes`) and no variables
//! (upstream's own loop over that mode never runs, as it re-reads an exhausted file); words are
//! the intact ones (see the module doc on BuildKit's dropped-prefix quirk). The remaining
//! tests (escape character backtick, error texts, patterns, Unicode) are ours, derived from
//! `lex.go`'s code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use frontend::shell::{env_from_list, Expansion, Lexer, ShellError, VarLookup, MAX_NESTING};
use proptest::prelude::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn word(lex: &Lexer, input: &str, env: &dyn VarLookup) -> Result<String, ShellError> {
    lex.process_word(input, env).map(|e| e.result)
}

/// `envVarTest`: input, expected with `PWD=/home SHELL=bash KOREAN=한국어 NULL=`, expected
/// with `SkipUnsetEnv` and no variables. `None` is an error.
type EnvRow = (&'static str, Option<&'static str>, Option<&'static str>);

const E: Option<&str> = None;

#[rustfmt::skip]
const ENV_VAR_TEST: &[EnvRow] = &[
    (r#"hello"#, Some(r#"hello"#), Some(r#"hello"#)),
    (r#"he'll'o"#, Some(r#"hello"#), Some(r#"hello"#)),
    (r#"he'llo"#, E, E),
    (r#"he\'llo"#, Some(r#"he'llo"#), Some(r#"he'llo"#)),
    (r#"he\\'llo"#, E, E),
    (r#"abc\tdef"#, Some(r#"abctdef"#), Some(r#"abctdef"#)),
    (r#""abc\tdef""#, Some(r#"abc\tdef"#), Some(r#"abc\tdef"#)),
    (r#""abc\\tdef""#, Some(r#"abc\tdef"#), Some(r#"abc\tdef"#)),
    (r#"'abc\tdef'"#, Some(r#"abc\tdef"#), Some(r#"abc\tdef"#)),
    (r#"hello\"#, Some(r#"hello"#), Some(r#"hello"#)),
    (r#"hello\\"#, Some(r#"hello\"#), Some(r#"hello\"#)),
    (r#""hello"#, E, E),
    (r#""hello\""#, E, E),
    (r#""hel'lo""#, Some(r#"hel'lo"#), Some(r#"hel'lo"#)),
    (r#"'hello"#, E, E),
    (r#"'hello\'"#, Some(r#"hello\"#), Some(r#"hello\"#)),
    (r#"'hello\there'"#, Some(r#"hello\there"#), Some(r#"hello\there"#)),
    (r#"'hello\\there'"#, Some(r#"hello\\there"#), Some(r#"hello\\there"#)),
    (r#""''""#, Some(r#"''"#), Some(r#"''"#)),
    (r#"$."#, Some(r#"$."#), Some(r#"$."#)),
    (r#"he$1x"#, Some(r#"hex"#), Some(r#"he$1x"#)),
    (r#"he$.x"#, Some(r#"he$.x"#), Some(r#"he$.x"#)),
    // Windows expects "he/home." here (case-insensitive names); Linux does not.
    (r#"he$pwd."#, Some(r#"he."#), Some(r#"he$pwd."#)),
    (r#"he$PWD"#, Some(r#"he/home"#), Some(r#"he$PWD"#)),
    (r#"he\$PWD"#, Some(r#"he$PWD"#), Some(r#"he$PWD"#)),
    (r#"he\\$PWD"#, Some(r#"he\/home"#), Some(r#"he\$PWD"#)),
    (r#""he\$PWD""#, Some(r#"he$PWD"#), Some(r#"he$PWD"#)),
    (r#""he\\$PWD""#, Some(r#"he\/home"#), Some(r#"he\$PWD"#)),
    (r#"\${}"#, Some(r#"${}"#), Some(r#"${}"#)),
    (r#"\${}aaa"#, Some(r#"${}aaa"#), Some(r#"${}aaa"#)),
    (r#"he\${}"#, Some(r#"he${}"#), Some(r#"he${}"#)),
    (r#"he\${}xx"#, Some(r#"he${}xx"#), Some(r#"he${}xx"#)),
    (r#"${}"#, E, E),
    (r#"${}aaa"#, E, E),
    (r#"he${}"#, E, E),
    (r#"he${}xx"#, E, E),
    (r#"he${hi}"#, Some(r#"he"#), Some(r#"he${hi}"#)),
    (r#"he${hi}xx"#, Some(r#"hexx"#), Some(r#"he${hi}xx"#)),
    (r#"he${PWD}"#, Some(r#"he/home"#), Some(r#"he${PWD}"#)),
    (r#"he${.}"#, E, E),
    (r#"he${XXX:-000}xx"#, Some(r#"he000xx"#), Some(r#"he${XXX:-000}xx"#)),
    (r#"he${PWD:-000}xx"#, Some(r#"he/homexx"#), Some(r#"he${PWD:-000}xx"#)),
    (r#"he${XXX:-$PWD}xx"#, Some(r#"he/homexx"#), Some(r#"he${XXX:-$PWD}xx"#)),
    (r#"he${XXX:-${PWD:-yyy}}xx"#, Some(r#"he/homexx"#), Some(r#"he${XXX:-${PWD:-yyy}}xx"#)),
    (r#"he${XXX:-${YYY:-yyy}}xx"#, Some(r#"heyyyxx"#), Some(r#"he${XXX:-${YYY:-yyy}}xx"#)),
    (r#"he${XXX:YYY}"#, E, Some(r#"he${XXX:YYY}"#)),
    (r#"he${XXX?}"#, E, Some(r#"he${XXX?}"#)),
    (r#"he${XXX:?}"#, E, Some(r#"he${XXX:?}"#)),
    (r#"he${PWD?}"#, Some(r#"he/home"#), Some(r#"he${PWD?}"#)),
    (r#"he${PWD:?}"#, Some(r#"he/home"#), Some(r#"he${PWD:?}"#)),
    (r#"he${NULL?}"#, Some(r#"he"#), Some(r#"he${NULL?}"#)),
    (r#"he${NULL:?}"#, E, Some(r#"he${NULL:?}"#)),
    (r#"he${XXX:+${PWD}}xx"#, Some(r#"hexx"#), Some(r#"he${XXX:+${PWD}}xx"#)),
    (r#"he${PWD:+${XXX}}xx"#, Some(r#"hexx"#), Some(r#"he${PWD:+${XXX}}xx"#)),
    (r#"he${PWD:+${SHELL}}xx"#, Some(r#"hebashxx"#), Some(r#"he${PWD:+${SHELL}}xx"#)),
    (r#"he${XXX:+000}xx"#, Some(r#"hexx"#), Some(r#"he${XXX:+000}xx"#)),
    (r#"he${PWD:+000}xx"#, Some(r#"he000xx"#), Some(r#"he${PWD:+000}xx"#)),
    (r#"'he${XX}'"#, Some(r#"he${XX}"#), Some(r#"he${XX}"#)),
    (r#""he${PWD}""#, Some(r#"he/home"#), Some(r#"he${PWD}"#)),
    (r#""he'$PWD'""#, Some(r#"he'/home'"#), Some(r#"he'$PWD'"#)),
    (r#""$PWD""#, Some(r#"/home"#), Some(r#"$PWD"#)),
    (r#"'$PWD'"#, Some(r#"$PWD"#), Some(r#"$PWD"#)),
    (r#"'\$PWD'"#, Some(r#"\$PWD"#), Some(r#"\$PWD"#)),
    (r#"'"hello"'"#, Some(r#""hello""#), Some(r#""hello""#)),
    (r#"he\$PWD"#, Some(r#"he$PWD"#), Some(r#"he$PWD"#)),
    (r#""he\$PWD""#, Some(r#"he$PWD"#), Some(r#"he$PWD"#)),
    (r#"'he\$PWD'"#, Some(r#"he\$PWD"#), Some(r#"he\$PWD"#)),
    (r#"he${PWD"#, E, E),
    (r#"he${PWD:=000}xx"#, E, Some(r#"he${PWD:=000}xx"#)),
    (r#"he${PWD:+${PWD}:}xx"#, Some(r#"he/home:xx"#), Some(r#"he${PWD:+${PWD}:}xx"#)),
    (r#"he${XXX:-\$PWD:}xx"#, Some(r#"he$PWD:xx"#), Some(r#"he${XXX:-$PWD:}xx"#)),
    (r#"he${XXX:-\${PWD}z}xx"#, Some(r#"he${PWDz}xx"#), Some(r#"he${XXX:-${PWD}z}xx"#)),
    (r#"안녕하세요"#, Some(r#"안녕하세요"#), Some(r#"안녕하세요"#)),
    (r#"안'녕'하세요"#, Some(r#"안녕하세요"#), Some(r#"안녕하세요"#)),
    (r#"안'녕하세요"#, E, E),
    (r#"안녕\'하세요"#, Some(r#"안녕'하세요"#), Some(r#"안녕'하세요"#)),
    (r#"안\\'녕하세요"#, E, E),
    (r#"안녕\t하세요"#, Some(r#"안녕t하세요"#), Some(r#"안녕t하세요"#)),
    (r#""안녕\t하세요""#, Some(r#"안녕\t하세요"#), Some(r#"안녕\t하세요"#)),
    (r#"'안녕\t하세요"#, E, E),
    (r#"안녕하세요\"#, Some(r#"안녕하세요"#), Some(r#"안녕하세요"#)),
    (r#"안녕하세요\\"#, Some(r#"안녕하세요\"#), Some(r#"안녕하세요\"#)),
    (r#""안녕하세요"#, E, E),
    (r#""안녕하세요\""#, E, E),
    (r#""안녕'하세요""#, Some(r#"안녕'하세요"#), Some(r#"안녕'하세요"#)),
    (r#"'안녕하세요"#, E, E),
    (r#"'안녕하세요\'"#, Some(r#"안녕하세요\"#), Some(r#"안녕하세요\"#)),
    (r#"안녕$1x"#, Some(r#"안녕x"#), Some(r#"안녕$1x"#)),
    (r#"안녕$.x"#, Some(r#"안녕$.x"#), Some(r#"안녕$.x"#)),
    // Windows expects "안녕/home." here; Linux does not.
    (r#"안녕$pwd."#, Some(r#"안녕."#), Some(r#"안녕$pwd."#)),
    (r#"안녕$PWD"#, Some(r#"안녕/home"#), Some(r#"안녕$PWD"#)),
    (r#"안녕\$PWD"#, Some(r#"안녕$PWD"#), Some(r#"안녕$PWD"#)),
    (r#"안녕\\$PWD"#, Some(r#"안녕\/home"#), Some(r#"안녕\$PWD"#)),
    (r#"안녕\${}"#, Some(r#"안녕${}"#), Some(r#"안녕${}"#)),
    (r#"안녕\${}xx"#, Some(r#"안녕${}xx"#), Some(r#"안녕${}xx"#)),
    (r#"안녕${}"#, E, E),
    (r#"안녕${}xx"#, E, E),
    (r#"안녕${hi}"#, Some(r#"안녕"#), Some(r#"안녕${hi}"#)),
    (r#"안녕${hi}xx"#, Some(r#"안녕xx"#), Some(r#"안녕${hi}xx"#)),
    (r#"안녕${PWD}"#, Some(r#"안녕/home"#), Some(r#"안녕${PWD}"#)),
    (r#"안녕${.}"#, E, E),
    (r#"안녕${XXX:-000}xx"#, Some(r#"안녕000xx"#), Some(r#"안녕${XXX:-000}xx"#)),
    (r#"안녕${PWD:-000}xx"#, Some(r#"안녕/homexx"#), Some(r#"안녕${PWD:-000}xx"#)),
    (r#"안녕${XXX:-$PWD}xx"#, Some(r#"안녕/homexx"#), Some(r#"안녕${XXX:-$PWD}xx"#)),
    (r#"안녕${XXX:-${PWD:-yyy}}xx"#, Some(r#"안녕/homexx"#), Some(r#"안녕${XXX:-${PWD:-yyy}}xx"#)),
    (r#"안녕${XXX:-${YYY:-yyy}}xx"#, Some(r#"안녕yyyxx"#), Some(r#"안녕${XXX:-${YYY:-yyy}}xx"#)),
    (r#"안녕${XXX:YYY}"#, E, Some(r#"안녕${XXX:YYY}"#)),
    (r#"안녕${XXX:+${PWD}}xx"#, Some(r#"안녕xx"#), Some(r#"안녕${XXX:+${PWD}}xx"#)),
    (r#"안녕${PWD:+${XXX}}xx"#, Some(r#"안녕xx"#), Some(r#"안녕${PWD:+${XXX}}xx"#)),
    (r#"안녕${PWD:+${SHELL}}xx"#, Some(r#"안녕bashxx"#), Some(r#"안녕${PWD:+${SHELL}}xx"#)),
    (r#"안녕${XXX:+000}xx"#, Some(r#"안녕xx"#), Some(r#"안녕${XXX:+000}xx"#)),
    (r#"안녕${PWD:+000}xx"#, Some(r#"안녕000xx"#), Some(r#"안녕${PWD:+000}xx"#)),
    (r#"'안녕${XX}'"#, Some(r#"안녕${XX}"#), Some(r#"안녕${XX}"#)),
    (r#""안녕${PWD}""#, Some(r#"안녕/home"#), Some(r#"안녕${PWD}"#)),
    (r#""안녕'$PWD'""#, Some(r#"안녕'/home'"#), Some(r#"안녕'$PWD'"#)),
    (r#"'"안녕"'"#, Some(r#""안녕""#), Some(r#""안녕""#)),
    (r#"안녕\$PWD"#, Some(r#"안녕$PWD"#), Some(r#"안녕$PWD"#)),
    (r#""안녕\$PWD""#, Some(r#"안녕$PWD"#), Some(r#"안녕$PWD"#)),
    (r#"'안녕\$PWD'"#, Some(r#"안녕\$PWD"#), Some(r#"안녕\$PWD"#)),
    (r#"안녕${PWD"#, E, E),
    (r#"안녕${PWD:=000}xx"#, E, Some(r#"안녕${PWD:=000}xx"#)),
    (r#"안녕${PWD:+${PWD}:}xx"#, Some(r#"안녕/home:xx"#), Some(r#"안녕${PWD:+${PWD}:}xx"#)),
    (r#"안녕${XXX:-\$PWD:}xx"#, Some(r#"안녕$PWD:xx"#), Some(r#"안녕${XXX:-$PWD:}xx"#)),
    (r#"안녕${XXX:-\${PWD}z}xx"#, Some(r#"안녕${PWDz}xx"#), Some(r#"안녕${XXX:-${PWD}z}xx"#)),
    (r#"$KOREAN"#, Some(r#"한국어"#), Some(r#"$KOREAN"#)),
    (r#"안녕$KOREAN"#, Some(r#"안녕한국어"#), Some(r#"안녕$KOREAN"#)),
    (r#"${{aaa}"#, E, E),
    (r#"${aaa}}"#, Some(r#"}"#), Some(r#"${aaa}}"#)),
    (r#"${aaa"#, E, E),
    (r#"${{aaa:-bbb}"#, E, E),
    (r#"${aaa:-bbb}}"#, Some(r#"bbb}"#), Some(r#"${aaa:-bbb}}"#)),
    (r#"${aaa:-bbb"#, E, E),
    (r#"${aaa:-bbb}"#, Some(r#"bbb"#), Some(r#"${aaa:-bbb}"#)),
    (r#"${aaa:-${bbb:-ccc}}"#, Some(r#"ccc"#), Some(r#"${aaa:-${bbb:-ccc}}"#)),
    (r#"${aaa:-bbb ${foo}"#, E, E),
    (r#"${aaa:-bbb {foo}"#, Some(r#"bbb {foo"#), Some(r#"${aaa:-bbb {foo}"#)),
    (r#"${:}"#, E, E),
    (r#"${:-bbb}"#, E, E),
    (r#"${:+bbb}"#, E, E),
];

/// `envVarTest`'s positional and special parameters: none of them is ever set.
fn parameter_rows() -> Vec<(String, &'static str)> {
    let mut rows = Vec::new();
    let params = [
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "999", "001", "@", "*", "#", "?", "-", "$",
        "!", "0",
    ];
    for p in params {
        rows.push((format!("${p}"), ""));
        rows.push((format!("${{{p}}}"), ""));
        rows.push((format!("${{{p}:+bbb}}"), ""));
        rows.push((format!("${{{p}:-bbb}}"), "bbb"));
        if matches!(p, "999" | "001" | "@") {
            rows.push((format!("${p}aaa"), "aaa"));
            rows.push((format!("${{{p}}}aaa"), "aaa"));
            rows.push((format!("${{{p}:+bbb}}aaa"), "aaa"));
            rows.push((format!("${{{p}:-bbb}}aaa"), "bbbaaa"));
        }
    }
    rows.push(("$@@@".into(), "@@"));
    rows
}

fn envvartest_env() -> Vec<(String, String)> {
    ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn envvartest_linux() {
    let lex = Lexer::new('\\');
    let pairs = envvartest_env();
    let as_map: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let as_list = env_from_list(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let mut rows: Vec<(String, Option<&str>)> = ENV_VAR_TEST
        .iter()
        .map(|r| (r.0.to_string(), r.1))
        .collect();
    rows.extend(parameter_rows().into_iter().map(|(i, e)| (i, Some(e))));
    for (input, expected) in &rows {
        let envs: [&dyn VarLookup; 3] = [&pairs, &as_map, &as_list];
        for env in envs {
            let got = word(&lex, input, env);
            match expected {
                None => assert!(got.is_err(), "{input:?}: expected an error, got {got:?}"),
                Some(want) => assert_eq!(got.as_deref(), Ok(*want), "{input:?}"),
            }
        }
    }
    assert_eq!(rows.len(), 228);
}

#[test]
fn envvartest_skip_unset_env() {
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let env: Vec<(String, String)> = Vec::new();
    let mut rows: Vec<(String, Option<String>)> = ENV_VAR_TEST
        .iter()
        .map(|r| (r.0.to_string(), r.2.map(str::to_string)))
        .collect();
    rows.extend(
        parameter_rows()
            .into_iter()
            .map(|(i, _)| (i.clone(), Some(i))),
    );
    for (input, expected) in &rows {
        let got = lex.process_word(input, &env);
        match expected {
            None => assert!(got.is_err(), "{input:?}: expected an error, got {got:?}"),
            Some(want) => {
                let got = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                assert_eq!(&got.result, want, "{input:?}");
                let words: Vec<&str> = if input == "${aaa:-bbb {foo}" {
                    vec!["${aaa:-bbb", "{foo}"]
                } else {
                    vec![want.as_str()]
                };
                assert_eq!(got.words, words, "{input:?}");
            }
        }
    }
}

/// `wordsTest`: `ENV` steps accumulate variables; `None` is an error.
enum Step {
    Env(&'static str),
    Case(&'static str, Option<&'static [&'static str]>),
}

#[rustfmt::skip]
const WORDS_TEST: &[Step] = &[
    Step::Case("hello", Some(&["hello"])),
    Step::Case("hello${hi}bye", Some(&["hellobye"])),
    Step::Env("hi=hi"),
    Step::Case("hello${hi}bye", Some(&["hellohibye"])),
    Step::Env("space=abc  def"),
    Step::Case("hello${space}bye", Some(&["helloabc", "defbye"])),
    Step::Case(r#"hello"${space}"bye"#, Some(&["helloabc  defbye"])),
    Step::Case(r#"hello "${space}"bye"#, Some(&["hello", "abc  defbye"])),
    Step::Env("leading=  ab c"),
    Step::Case("hello${leading}def", Some(&["hello", "ab", "cdef"])),
    Step::Case(r#"hello"${leading}" def"#, Some(&["hello  ab c", "def"])),
    Step::Case(r#"hello"${leading}""#, Some(&["hello  ab c"])),
    Step::Case("hello${leading}", Some(&["hello", "ab", "c"])),
    Step::Env("trailing=ab c   "),
    Step::Case("hello${trailing}", Some(&["helloab", "c"])),
    Step::Case("hello${trailing}d", Some(&["helloab", "c", "d"])),
    Step::Case(r#"hello"${trailing}"d"#, Some(&["helloab c   d"])),
    Step::Case(r#"hel"lo${trailing}""#, Some(&["helloab c   "])),
    Step::Case(r#"hello" there  ""#, Some(&["hello there  "])),
    Step::Case("hello there", Some(&["hello", "there"])),
    Step::Case(r"hello\ there", Some(&["hello there"])),
    Step::Case(r#"hello" there"#, None),
    Step::Case(r#"hello\" there"#, Some(&["hello\"", "there"])),
    Step::Case(r#"hello"\\there""#, Some(&[r"hello\there"])),
    Step::Case(r#"hello"\there""#, Some(&[r"hello\there"])),
    Step::Case(r"hello'\\there'", Some(&[r"hello\\there"])),
    Step::Case(r"hello'\there'", Some(&[r"hello\there"])),
    Step::Case("hello'$there'", Some(&["hello$there"])),
];

#[test]
fn wordstest() {
    let lex = Lexer::new('\\');
    let mut envs: Vec<&str> = Vec::new();
    let mut cases = 0;
    for step in WORDS_TEST {
        match step {
            Step::Env(e) => envs.push(e),
            Step::Case(input, expected) => {
                cases += 1;
                let env = env_from_list(&envs);
                let got = lex.process_words(input, &env);
                match expected {
                    None => assert!(got.is_err(), "{input:?}: {got:?}"),
                    Some(want) => assert_eq!(got.unwrap(), *want, "{input:?}"),
                }
                // ProcessWordsWithMap in older BuildKit: the same through a hash map.
                let hash: HashMap<String, String> = env.into_iter().collect();
                assert_eq!(lex.process_words(input, &hash).is_ok(), expected.is_some());
            }
        }
    }
    assert_eq!(cases, 24);
}

/// `wordsTest` inputs with `RawQuotes` and `SkipUnsetEnv` and no variables: input, word,
/// words (`None`: error).
type RawRow = (
    &'static str,
    Option<(&'static str, &'static [&'static str])>,
);

#[rustfmt::skip]
const WORDS_RAW_QUOTES: &[RawRow] = &[
    ("hello", Some(("hello", &["hello"]))),
    ("hello${hi}bye", Some(("hello${hi}bye", &["hello${hi}bye"]))),
    ("hello${space}bye", Some(("hello${space}bye", &["hello${space}bye"]))),
    (r#"hello"${space}"bye"#, Some((r#"hello"${space}"bye"#, &[r#"hello"${space}"bye"#]))),
    (r#"hello "${space}"bye"#, Some((r#"hello "${space}"bye"#, &["hello", r#""${space}"bye"#]))),
    ("hello${leading}def", Some(("hello${leading}def", &["hello${leading}def"]))),
    (r#"hello"${leading}" def"#, Some((r#"hello"${leading}" def"#, &[r#"hello"${leading}""#, "def"]))),
    (r#"hello"${leading}""#, Some((r#"hello"${leading}""#, &[r#"hello"${leading}""#]))),
    ("hello${leading}", Some(("hello${leading}", &["hello${leading}"]))),
    ("hello${trailing}", Some(("hello${trailing}", &["hello${trailing}"]))),
    ("hello${trailing}d", Some(("hello${trailing}d", &["hello${trailing}d"]))),
    (r#"hello"${trailing}"d"#, Some((r#"hello"${trailing}"d"#, &[r#"hello"${trailing}"d"#]))),
    (r#"hel"lo${trailing}""#, Some((r#"hel"lo${trailing}""#, &[r#"hel"lo${trailing}""#]))),
    (r#"hello" there  ""#, Some((r#"hello" there  ""#, &[r#"hello" there  ""#]))),
    ("hello there", Some(("hello there", &["hello", "there"]))),
    (r"hello\ there", Some(("hello there", &["hello there"]))),
    (r#"hello" there"#, None),
    (r#"hello\" there"#, Some((r#"hello" there"#, &["hello\"", "there"]))),
    (r#"hello"\\there""#, Some((r#"hello"\there""#, &[r#"hello"\there""#]))),
    (r#"hello"\there""#, Some((r#"hello"\there""#, &[r#"hello"\there""#]))),
    (r"hello'\\there'", Some((r"hello'\\there'", &[r"hello'\\there'"]))),
    (r"hello'\there'", Some((r"hello'\there'", &[r"hello'\there'"]))),
    ("hello'$there'", Some(("hello'$there'", &["hello'$there'"]))),
];

#[test]
fn wordstest_raw_quotes_skip_unset_env() {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.skip_unset_env = true;
    let env: BTreeMap<String, String> = BTreeMap::new();
    for (input, expected) in WORDS_RAW_QUOTES {
        let got = lex.process_word(input, &env);
        match expected {
            None => assert!(got.is_err(), "{input:?}: {got:?}"),
            Some((result, words)) => {
                let got = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                assert_eq!(got.result, *result, "{input:?}");
                assert_eq!(got.words, *words, "{input:?}");
            }
        }
    }
}

#[test]
fn mandatory_env_vars() {
    let lex = Lexer::new('\\');
    let set_envs = env_from_list(["VAR=plain", "ARG=x"]);
    let empty_envs = env_from_list(["VAR=", "ARG=x"]);
    let unset_envs = env_from_list(["ARG=x"]);
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";

    assert_eq!(word(&lex, no_empty, &set_envs).unwrap(), "plain");
    let err = word(&lex, no_empty, &empty_envs).unwrap_err();
    assert!(err.message.contains("message herex"), "{err}");
    let err = word(&lex, no_empty, &unset_envs).unwrap_err();
    assert!(err.message.contains("message herex"), "{err}");

    assert_eq!(word(&lex, no_unset, &set_envs).unwrap(), "plain");
    assert_eq!(word(&lex, no_unset, &empty_envs).unwrap(), "");
    let err = word(&lex, no_unset, &unset_envs).unwrap_err();
    assert_eq!(
        err.message,
        r#"failed to process "${VAR?message here$ARG}": VAR: message herex"#
    );
}

#[test]
fn get_env() {
    let get = |list: &[&str], name: &str| env_from_list(list).lookup(name).unwrap_or_default();
    assert_eq!(get(&[], "foo"), "");
    assert_eq!(get(&["foo"], "foo"), "");
    assert_eq!(env_from_list(["foo"]).lookup("foo"), Some(String::new()));
    assert_eq!(get(&["foo="], "foo"), "");
    assert_eq!(get(&["foo=bar"], "foo"), "bar");
    assert_eq!(get(&["foo=bar", "car=hat"], "foo"), "bar");
    assert_eq!(get(&["foo=bar", "car=hat"], "car"), "hat");
    // The last 'car' in the list wins.
    assert_eq!(get(&["foo=bar", "car=hat", "car=bike"], "car"), "bike");
    assert_eq!(get(&["a=b=c"], "a"), "b=c");
}

#[test]
fn lookup_impls() {
    let pairs = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(pairs.lookup("A").as_deref(), Some("2"));
    assert_eq!(pairs.as_slice().lookup("A").as_deref(), Some("2"));
    assert_eq!(pairs.lookup("B"), None);
    let strs = [("A", "x"), ("B", "y"), ("A", "z")];
    assert_eq!(strs.lookup("A").as_deref(), Some("z"));
    let hash: HashMap<String, String> = [("A".to_string(), "h".to_string())].into();
    assert_eq!(hash.lookup("A").as_deref(), Some("h"));
    let lex = Lexer::new('\\');
    let slice: &[(String, String)] = &pairs;
    assert_eq!(word(&lex, "$A", &slice).unwrap(), "2");
    assert_eq!(word(&lex, "$A$B", &strs).unwrap(), "zy");
    assert_eq!(word(&lex, "$A", &hash).unwrap(), "h");
}

/// `TestProcessWithMatches`: input, variables, expected (`None`: error), matched, unmatched.
type MatchRow = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
    &'static [&'static str],
    &'static [&'static str],
);

const FB: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

#[rustfmt::skip]
const PROCESS_WITH_MATCHES: &[MatchRow] = &[
    ("x", &[("DUMMY", "dummy")], Some("x"), &[], &[]),
    ("x ${UNUSED}", &[("DUMMY", "dummy")], Some("x "), &[], &["UNUSED"]),
    ("x ${FOO}", &[("FOO", "y")], Some("x y"), &["FOO"], &[]),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", FB, Some("xxx  ccc"), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", FB, Some("xxx bbb ccc"), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO:-}", FB, Some("xxx"), &["FOO"], &[]),
    ("${FOO:-}", &[], Some(""), &[], &["FOO"]),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", FB, Some("aaa bbb "), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", FB, Some("aaa  "), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO?aaa}", FB, Some("xxx"), &["FOO"], &[]),
    ("${BAR?bbb}", FB, Some(""), &["BAR"], &[]),
    ("${BAZ?ccc}", FB, None, &[], &[]),
    ("${FOO:?aaa}", FB, Some("xxx"), &["FOO"], &[]),
    ("${BAR:?bbb}", FB, None, &[], &[]),
    ("${BAZ:?ccc}", FB, None, &[], &[]),
    ("${BAZ:?}", FB, None, &[], &[]),
    ("${FOO=aaa}", FB, None, &[], &[]),
    ("${FOO=:aaa}", FB, None, &[], &[]),
    ("${FOO=}", &[], None, &[], &[]),
    // Special characters of regular expressions; `}` is escaped so it does not close ${}.
    (r"${FOO#()[]{\}^$.\*\?|\\}", &[("FOO", r"()[]{}^$.*?|\x")], Some("x"), &["FOO"], &[]),
    (r"${FOO%%\**}", &[("FOO", "xx**")], Some("xx"), &["FOO"], &[]),
    ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y"), &["FOO"], &[]),
    ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy"), &["FOO", "BAR"], &[]),
    ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy"), &["FOO", "BAR"], &[]),
    ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy"), &["FOO"], &[]),
    ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    (r"${FOO#?\?}", &[("FOO", "???y")], Some("?y"), &["FOO"], &[]),
    ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], Some(".xxyy."), &["FOO"], &["ABC"]),
    (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], Some("a"), &["FOO"], &[]),
    ("${FOO%}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy"), &["FOO", "BAR"], &[]),
    ("${FOO:#}", &[], None, &[], &[]),
    ("${FOO:##}", &[], None, &[], &[]),
    ("${FOO:%}", &[], None, &[], &[]),
    ("${FOO:%%}", &[], None, &[], &[]),
    // Wildcards.
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")], Some("/foo.*/*.txt - /foo..*.txt"), &["FOO", "NEEDLE"], &[]),
    // `/` in patterns.
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")], Some("/tmp/bar.txt - /bar.txt"), &["FOO", "NEEDLE"], &[]),
    ("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}", &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("REPLACEMENT", "/")], Some("/foo/b/c.txt - /foo/c.txt"), &["FOO", "NEEDLE", "REPLACEMENT"], &[]),
    ("${FOO/$NEEDLE/$REPLACEMENT}", &[("FOO", "http://google.de"), ("NEEDLE", "http://"), ("REPLACEMENT", "https://")], Some("https://google.de"), &["FOO", "NEEDLE", "REPLACEMENT"], &[]),
    // Escaped separator characters.
    (r"${FOO//\//\/}", &[("FOO", "/tmp/foo.txt")], Some(r"\/tmp\/foo.txt"), &["FOO"], &[]),
    // Partial input; upstream only guarantees it does not crash.
    ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], Some("wwxxyy"), &["FOO", "BAR"], &[]),
    ("${FOO//ww}", &[("FOO", "xxyy")], None, &[], &[]),
    ("${FOO//}", &[("FOO", "xxyy")], None, &[], &[]),
    ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO///}", &[], Some(""), &[], &["FOO"]),
];

#[test]
fn process_with_matches() {
    let lex = Lexer::new('\\');
    for (input, env, expected, matched, unmatched) in PROCESS_WITH_MATCHES {
        let got = lex.process_word(input, &map(env));
        match expected {
            None => assert!(got.is_err(), "{input:?}: {got:?}"),
            Some(want) => {
                let got: Expansion = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                assert_eq!(got.result, *want, "{input:?}");
                assert_eq!(got.matched, set(matched), "{input:?}");
                assert_eq!(got.unmatched, set(unmatched), "{input:?}");
            }
        }
    }
    assert_eq!(PROCESS_WITH_MATCHES.len(), 47);
}

#[test]
fn process_with_matches_platform() {
    let lex = Lexer::new('\\');
    let release =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let base = [("VERSION", "v1.2.3"), ("TARGETOS", "linux")];
    let with = |extra: &[(&str, &str)]| {
        let mut env = map(&base);
        env.extend(map(extra));
        word(&lex, release, &env).unwrap()
    };
    assert_eq!(
        with(&[("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")]),
        "something-v1.2.3.linux-arm-v7.tar.gz"
    );
    assert_eq!(
        with(&[("TARGETARCH", "arm64"), ("TARGETVARIANT", "")]),
        "something-v1.2.3.linux-arm64.tar.gz"
    );
    assert_eq!(
        with(&[("TARGETARCH", "arm64")]),
        "something-v1.2.3.linux-arm64.tar.gz"
    );
}

/// Expands `${V<op>$P}` so that the pattern comes verbatim from a variable.
fn with_pattern(op: &str, value: &str, pattern: &str) -> Result<String, ShellError> {
    let env = map(&[("V", value), ("P", pattern)]);
    word(&Lexer::new('\\'), &format!("${{V{op}$P}}"), &env)
}

#[test]
fn pattern_conversion() {
    // BuildKit's TestConvertShellPatternToRegex, by behaviour.
    assert_eq!(with_pattern("##", "abc", "*").unwrap(), "");
    assert_eq!(with_pattern("#", "abc", "?").unwrap(), "bc");
    assert_eq!(with_pattern("#", "*x", r"\*").unwrap(), "x");
    assert_eq!(with_pattern("#", "ax", r"\*").unwrap(), "ax");
    assert_eq!(
        with_pattern("#", r"(()[]{}^$.*?|\rest", r"(()[]{\}^$.\*\?|\\").unwrap(),
        "rest"
    );
    let invalid = [
        (
            r"\",
            "invalid pattern (\\) in substitution: invalid escape '\\\u{FFFD}'",
        ),
        (
            r"\x",
            r"invalid pattern (\x) in substitution: invalid escape '\x'",
        ),
        (
            r"\\\",
            "invalid pattern (\\\\\\) in substitution: invalid escape '\\\u{FFFD}'",
        ),
    ];
    for (pattern, reason) in invalid {
        let err = with_pattern("#", "v", pattern).unwrap_err();
        assert_eq!(
            err.message,
            format!("failed to process \"${{V#$P}}\": {reason}")
        );
    }
    // The replace form compiles the same way.
    let env = map(&[("V", "v"), ("P", r"\q")]);
    let err = word(&Lexer::new('\\'), "${V/$P/}", &env).unwrap_err();
    assert!(
        err.message
            .ends_with(r"invalid pattern (\q) in substitution: invalid escape '\q'"),
        "{err}"
    );
}

#[test]
fn reversed_patterns_for_suffixes() {
    // BuildKit's TestReversePattern, by behaviour: `%` matches the reversed pattern against
    // the reversed value, keeping `\x` pairs in order (and its errors show that pattern).
    assert_eq!(with_pattern("%", "xa*c", r"a\*c").unwrap(), "x");
    assert_eq!(with_pattern("%", r"a\b", r"\\b").unwrap(), "a");
    let bad = [
        (r"\\\ab", r"b\a\\", r"\a"),
        (r"ab\", r"\ba", r"\b"),
        ("👽\\🚀🖖", "🖖\\🚀👽", "\\🚀"),
    ];
    for (pattern, reversed, escape) in bad {
        let err = with_pattern("%", "v", pattern).unwrap_err();
        let want =
            format!("invalid pattern ({reversed}) in substitution: invalid escape '{escape}'");
        assert!(err.message.ends_with(&want), "{err} / {want}");
    }
}

#[test]
fn prefix_suffix_and_replace() {
    let cases = [
        ("#", "a/b/c", "*/", "b/c"),
        ("##", "a/b/c", "*/", "c"),
        ("%", "a/b/c", "/*", "a/b"),
        ("%%", "a/b/c", "/*", "a"),
        ("#", "abc", "x", "abc"),
        ("%", "file.tar.gz", ".*", "file.tar"),
        ("%%", "file.tar.gz", ".*", "file"),
        ("#", "日本語テキスト", "日本", "語テキスト"),
        ("%", "日本語テキスト", "?ト", "日本語テキ"),
        // Like Go's `.`, `*` and `?` do not match a newline.
        ("%%", "a\nb", "*", "a\n"),
        ("##", "a\nb", "*", "\nb"),
        ("#", "a\nb", "*", "a\nb"),
        ("#", "\nb", "?", "\nb"),
        ("/", "\nb", "?", "\n"),
        ("/", "aXbXc", "X", "abXc"),
        ("//", "aXbXc", "X", "abc"),
        ("/", "abcabc", "b*", "a"),
        ("/", "a\nbc", "b*", "a\n"),
    ];
    for (op, value, pattern, want) in cases {
        let env = map(&[("V", value), ("P", pattern)]);
        let input = if op.starts_with('/') {
            format!("${{V{op}$P/}}")
        } else {
            format!("${{V{op}$P}}")
        };
        assert_eq!(
            word(&Lexer::new('\\'), &input, &env).unwrap(),
            want,
            "{input} on {value:?}"
        );
    }
}

#[test]
fn replace_all_follows_go_regexp() {
    let lex = Lexer::new('\\');
    let env = map(&[("X", "abc"), ("N", "a\nb"), ("E", "")]);
    let cases = [
        // Empty matches: around every character, but not right after a match.
        ("${X///-}", "-a-b-c-"),
        ("${X//*/-}", "-"),
        ("${N//*/-}", "-\n-"),
        ("${E//*/-}", "-"),
        ("${E/*/-}", "-"),
        ("${X//?/<&>}", "<&><&><&>"),
        // The replace-all replacement is a Go regexp template: $0 is the match, $$ is $,
        // other names are empty. The single replacement is literal.
        (r"${X//b/[\$0]}", r"a[\b]c"),
        (r"${X/b/[\$0]}", r"a[\$0]c"),
        ("${X//b/'$0$0'}", "abbc"),
        ("${X//b/'${0}'}", "abc"),
        ("${X//b/'$$'}", "a$c"),
        ("${X//b/'$1'}", "ac"),
        ("${X//b/'$00'}", "ac"),
        ("${X//b/'$0x'}", "ac"),
        ("${X//b/'$'}", "a$c"),
        ("${X//b/'${0'}", "a${0c"),
        ("${X//b/'$-'}", "a$-c"),
        ("${X/b/'$$'}", "a$$c"),
    ];
    for (input, want) in cases {
        assert_eq!(word(&lex, input, &env).unwrap(), want, "{input}");
    }
}

/// `failed to process "<input>": <reason>` for each input, with no variables but `SET=v` and
/// `EMPTY=`.
#[test]
fn error_texts() {
    let lex = Lexer::new('\\');
    let env = map(&[("SET", "v"), ("EMPTY", "")]);
    let cases = [
        ("${X:?}", "X: is not allowed to be unset"),
        ("${X?}", "X: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${EMPTY:?must be set}", "EMPTY: must be set"),
        ("${X?it is \"gone\"}", "X: it is gone"),
        ("${X?it's \"gone\"}", "syntax error: missing '}'"),
        ("${X:-${Y:?inner}}", "Y: inner"),
        ("${FOO=aaa}", "unsupported modifier (=) in substitution"),
        ("${FOO:=aaa}", "unsupported modifier (:=) in substitution"),
        ("${SET:=aaa}", "unsupported modifier (:=) in substitution"),
        ("${FOO:YYY}", "unsupported modifier (:Y) in substitution"),
        ("${FOO:#x}", "unsupported modifier (:#) in substitution"),
        ("${FOO:%%x}", "unsupported modifier (:%) in substitution"),
        ("${FOO:/x/y}", "unsupported modifier (:/) in substitution"),
        ("${.}", "unsupported modifier (.) in substitution"),
        ("${aaa", "unsupported modifier (\u{FFFD}) in substitution"),
        ("${aaa:", "syntax error: missing '}'"),
        ("${", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${{a}", "syntax error: bad substitution"),
        ("${:-a}", "syntax error: bad substitution"),
        ("${a:-b", "syntax error: missing '}'"),
        ("${a:-'b", "syntax error: missing '}'"),
        ("${a:-'b}", "syntax error: missing '}'"),
        ("${a:-${b}", "syntax error: missing '}'"),
        ("${a/b", "syntax error: missing '/' in ${}"),
        ("${a//b}", "syntax error: missing '/' in ${}"),
        ("${a/b/c", "syntax error: missing '}'"),
        ("${a/b/c\\", "syntax error: missing '}'"),
        (
            "'abc",
            "unexpected end of statement while looking for matching single-quote",
        ),
        (
            "\"abc",
            "unexpected end of statement while looking for matching double-quote",
        ),
        (
            "\"abc\\",
            "unexpected end of statement while looking for matching double-quote",
        ),
        // Inner errors at the end of the word turn into the outer one's.
        ("${a:-'x'\"y", "syntax error: missing '}'"),
        ("${a/'x/y}", "syntax error: missing '/' in ${}"),
        ("${a:-${}}", "syntax error: bad substitution"),
        ("\"${a:-${b?}}\"", "b: is not allowed to be unset"),
        ("${a:-\"x}\"", "syntax error: missing '}'"),
        (
            "${SET#\\x}",
            r"invalid pattern (\x) in substitution: invalid escape '\x'",
        ),
    ];
    for (input, reason) in cases {
        let err = lex.process_word(input, &env).unwrap_err();
        assert_eq!(
            err.message,
            format!("failed to process {}: {reason}", go_quote(input)),
            "{input}"
        );
        assert_eq!(err.to_string(), err.message);
        assert_eq!(lex.process_words(input, &env).unwrap_err(), err);
    }
}

/// The few quoting rules of Go's `%q` the tests need (the lexer's own quoting is tested on
/// other characters below).
fn go_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""))
}

#[test]
fn error_word_is_quoted_like_go() {
    let lex = Lexer::new('\\');
    let env: [(&str, &str); 0] = [];
    let cases = [
        ("a\n\t\r${X?}", r#""a\n\t\r${X?}""#),
        (
            "\u{7}\u{8}\u{b}\u{c}\u{0}\u{1b}\u{7f}${X?}",
            r#""\a\b\v\f\x00\x1b\x7f${X?}""#,
        ),
        (
            "\u{a0}\u{ad}\u{85}\u{2028}\u{feff}x${X?}",
            r#""\u00a0\u00ad\u0085\u2028\ufeffx${X?}""#,
        ),
        (
            "é한😀\u{e0001}\u{10ffff}${X?}",
            r#""é한😀\U000e0001\U0010ffff${X?}""#,
        ),
        ("\\\"${X?}", r#""\\\"${X?}""#),
    ];
    for (input, quoted) in cases {
        let err = lex.process_word(input, &env).unwrap_err();
        assert_eq!(
            err.message,
            format!("failed to process {quoted}: X: is not allowed to be unset")
        );
    }
}

#[test]
fn backtick_escape() {
    let lex = Lexer::new('`');
    let env = map(&[("PWD", "/home"), ("X", "a b")]);
    let cases: &[(&str, &str, &[&str])] = &[
        ("he`$PWD", "he$PWD", &["he$PWD"]),
        (r"he\$PWD", r"he\/home", &[r"he\/home"]),
        (
            r"C:\dir\$PWD\file",
            r"C:\dir\/home\file",
            &[r"C:\dir\/home\file"],
        ),
        ("\"he`\"llo\"", "he\"llo", &["he\"llo"]),
        ("\"he`$PWD\"", "he$PWD", &["he$PWD"]),
        ("\"a``b\"", "a`b", &["a`b"]),
        ("\"a`b\"", "a`b", &["a`b"]),
        (r#""a\"b"#, r"a\b", &[r"a\b"]),
        ("'a`b'", "a`b", &["a`b"]),
        ("hello`", "hello", &["hello"]),
        ("hello``", "hello`", &["hello`"]),
        ("a` b", "a b", &["a b"]),
        ("a`'b", "a'b", &["a'b"]),
        ("${Y:-a`}b}", "a}b", &["a}b"]),
        ("${Y:-`$PWD}", "$PWD", &["$PWD"]),
        ("${PWD#`/}", "/home", &["/home"]),
        ("${PWD#/}", "home", &["home"]),
        ("$X` c", "a b c", &["a", "b c"]),
        ("\"$X\"`\"", "a b\"", &["a b\""]),
    ];
    for (input, result, words) in cases {
        let got = lex
            .process_word(input, &env)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(got.result, *result, "{input:?}");
        assert_eq!(got.words, *words, "{input:?}");
    }
    for input in ["\"a`\"", "'a", "${Y:-a`}"] {
        assert!(lex.process_word(input, &env).is_err(), "{input:?}");
    }
}

#[test]
fn options() {
    let env = map(&[("PWD", "/home"), ("X", "a b")]);
    let mut raw_escapes = Lexer::new('\\');
    raw_escapes.raw_escapes = true;
    let cases: &[(&str, &str, &[&str])] = &[
        (r"he\$PWD", r"he\$PWD", &[r"he\$PWD"]),
        (r"a\ b", r"a\ b", &[r"a\ b"]),
        (r#""a\"b""#, r#"a\"b"#, &[r#"a\"b"#]),
        // Escapes that escape nothing inside double quotes come out twice.
        (r#""a\b""#, r"a\\b", &[r"a\\b"]),
        ("hello\\", "hello\\", &["hello\\"]),
    ];
    for (input, result, words) in cases {
        let got = raw_escapes.process_word(input, &env).unwrap();
        assert_eq!(
            (got.result.as_str(), got.words.clone()),
            (*result, words.iter().map(|s| s.to_string()).collect()),
            "{input:?}"
        );
    }

    let mut no_quotes = Lexer::new('\\');
    no_quotes.skip_process_quotes = true;
    assert_eq!(
        no_quotes.process_words(r#"'$PWD' "a b""#, &env).unwrap(),
        ["'/home'", "\"a", "b\""]
    );
    assert_eq!(no_quotes.process_words(r#"\"a"#, &env).unwrap(), ["\"a"]);

    let mut raw_quotes = Lexer::new('\\');
    raw_quotes.raw_quotes = true;
    assert_eq!(
        raw_quotes
            .process_word(r#"'$PWD' "$X""#, &env)
            .unwrap()
            .result,
        r#"'$PWD' "a b""#
    );
    assert_eq!(
        raw_quotes.process_words(r#"'$PWD' "$X""#, &env).unwrap(),
        ["'$PWD'", "\"a b\""]
    );

    let mut skip = Lexer::new('\\');
    skip.skip_unset_env = true;
    let cases = [
        ("$PWD $U ${U}", "/home $U ${U}"),
        ("${U:-$PWD}", "${U:-/home}"),
        ("${U/$PWD/x}", "${U//home/x}"),
        ("${U//a/b}", "${U/a/b}"),
        ("${U#*}", "${U#*}"),
        ("${U?nope}", "${U?nope}"),
        ("${U:=nope}", "${U:=nope}"),
        ("${U:YYY}", "${U:YYY}"),
        ("${PWD:-x}", "/home"),
    ];
    for (input, want) in cases {
        assert_eq!(word(&skip, input, &env).unwrap(), want, "{input}");
    }
    // Modifiers that are not even attempted fail whether or not the variable is set.
    assert!(word(&skip, "${PWD=x}", &env).is_err());
    assert!(word(&skip, "${U=x}", &env).is_err());
    assert!(word(&skip, "${PWD:YYY}", &env).is_err());
    assert_eq!(Lexer::default(), Lexer::new('\\'));
}

#[test]
fn names_classify_characters_like_go() {
    let lex = Lexer::new('\\');
    let env = map(&[
        ("한국어", "K"),
        ("x", "X"),
        ("a", "A"),
        ("١٢", "arabic-indic digits"),
        ("_v1", "U"),
        ("10", "ten"),
        ("ǅ", "titlecase"),
    ]);
    let cases = [
        ("$한국어!", "K!"),
        ("$x²", "X²"),                    // '²' is a number but not a decimal digit.
        ("$xⅫ", "XⅫ"),                    // Roman numerals are not letters in Go.
        ("$a\u{345}", "A\u{345}"),        // A combining mark is alphabetic, not a letter.
        ("$١٢x", "arabic-indic digitsx"), // A run of digits of any script.
        ("$_v1-", "U-"),
        ("$10x", "tenx"),
        ("${10}", "ten"),
        ("$ǅ", "titlecase"),
        ("$ⅫX", "$ⅫX"),
        ("\u{feff}$x", "X"), // Go's scanner skips a leading byte order mark...
        ("$x\u{feff}", "X\u{feff}"), // ...and only that one.
    ];
    for (input, want) in cases {
        assert_eq!(word(&lex, input, &env).unwrap(), want, "{input:?}");
    }
    let got = lex.process_word("$١٢ $ⅫX $a\u{345} ${0:-z}", &env).unwrap();
    assert_eq!(got.matched, set(&["١٢", "a"]));
    assert_eq!(got.unmatched, set(&["0"]));
}

#[test]
fn field_splitting() {
    let lex = Lexer::new('\\');
    let env = map(&[("S", " a\u{a0}b\u{3000}c "), ("E", ""), ("X", "x y")]);
    let cases: &[(&str, &[&str])] = &[
        ("$S", &["a", "b", "c"]),
        ("'' \"\" $E", &[]),
        ("a '' b", &["a", "b"]),
        ("\"\"a", &["a"]),
        ("\t a \n b ", &["a", "b"]),
        ("\\ ", &[" "]),
        // Unlike BuildKit, whose shared buffer drops "80" (and "a") here; see the module doc.
        ("80${P:-/tcp}", &["80/tcp"]),
        ("a${E:+x}${X:-z}b", &["ax", "yb"]),
        ("a${X#x}b c", &["a", "yb", "c"]),
        ("a${X/ /_}b", &["ax_yb"]),
    ];
    for (input, words) in cases {
        let got = lex.process_word(input, &env).unwrap();
        assert_eq!(got.words, *words, "{input:?}");
        assert_eq!(lex.process_words(input, &env).unwrap(), *words);
    }
}

#[test]
fn nesting_is_bounded() {
    let lex = Lexer::new('\\');
    let env = map(&[("A", "a")]);
    let ok = format!(
        "{}{}",
        "${X:-".repeat(MAX_NESTING - 1),
        "}".repeat(MAX_NESTING - 1)
    );
    assert_eq!(word(&lex, &format!("{ok}$A"), &env).unwrap(), "a");
    assert_eq!(
        word(
            &lex,
            &format!(
                "{}$A{}",
                "${X:-".repeat(MAX_NESTING - 1),
                "}".repeat(MAX_NESTING - 1)
            ),
            &env
        )
        .unwrap(),
        "a"
    );
    let deep = format!(
        "{}$A{}",
        "${X:-".repeat(MAX_NESTING),
        "}".repeat(MAX_NESTING)
    );
    let err = word(&lex, &deep, &env).unwrap_err();
    assert!(
        err.message.ends_with(&format!(
            "syntax error: expansions nested more than {MAX_NESTING} deep"
        )),
        "{}",
        &err.message[err.message.len() - 60..]
    );
    // Far deeper input, in a thread with a small stack, still just errors.
    let huge = "${X:-\"".repeat(100_000);
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            Lexer::new('\\')
                .process_word(&huge, &BTreeMap::<String, String>::new())
                .is_err()
        })
        .unwrap();
    assert!(handle.join().unwrap());
}

#[test]
fn long_inputs_stay_fast() {
    let lex = Lexer::new('\\');
    let value = "ab".repeat(20_000);
    let pattern = "*a".repeat(200);
    let env = map(&[("V", value.as_str()), ("P", pattern.as_str())]);
    for op in ["#", "##", "%", "%%"] {
        lex.process_word(&format!("${{V{op}$P}}"), &env).unwrap();
    }
    assert_eq!(word(&lex, "${V//b/}", &env).unwrap(), "a".repeat(20_000));
}

fn fuzz_char() -> impl Strategy<Value = char> {
    let specials: Vec<char> = "${}:-+?#%/'\"\\` \t\nab_A1@*!0=.xé한😀\u{feff}\u{a0}"
        .chars()
        .collect();
    prop_oneof![8 => proptest::sample::select(specials), 1 => any::<char>()]
}

fn fuzz_string(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(fuzz_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics(
        input in fuzz_string(48),
        a in fuzz_string(12),
        b in fuzz_string(12),
        escape in prop_oneof![4 => Just('\\'), 2 => Just('`'), 1 => fuzz_char()],
        flags in any::<[bool; 4]>(),
    ) {
        let lex = Lexer {
            escape,
            raw_quotes: flags[0],
            raw_escapes: flags[1],
            skip_unset_env: flags[2],
            skip_process_quotes: flags[3],
        };
        let env = map(&[("a", a.as_str()), ("b", b.as_str()), ("ab", "x"), ("0", "zero")]);
        match lex.process_word(&input, &env) {
            Ok(exp) => {
                prop_assert_eq!(lex.process_words(&input, &env).unwrap(), exp.words.clone());
                prop_assert!(exp.matched.is_disjoint(&exp.unmatched));
                prop_assert!(exp.words.iter().all(|w| !w.is_empty()));
            }
            Err(e) => prop_assert!(e.message.starts_with("failed to process \""), "{}", e.message),
        }
    }
}

/// BuildKit's `processPossibleHeredoc`: `<<` keeps the blanks after it in the same field.
#[test]
fn heredoc_marker_keeps_following_blanks_in_its_field() {
    let lex = Lexer::new('\\');
    let env = std::collections::BTreeMap::<String, String>::new();
    assert_eq!(
        lex.process_words("RUN <<  EOF > x", &env).unwrap(),
        vec!["RUN", "<<  EOF", ">", "x"]
    );
    assert_eq!(
        lex.process_words("a < b", &env).unwrap(),
        vec!["a", "<", "b"]
    );
    assert_eq!(
        lex.process_word("cat <<  EOF", &env).unwrap().result,
        "cat <<  EOF"
    );
}
