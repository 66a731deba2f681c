//! Hostile expansion (issue 13, defect 3): words that grow exponentially through ARG and ENV
//! made pallet abort at 5.5 GB. Each expanded word is capped at `shell::MAX_EXPANDED` and a
//! stage's variables at `MAX_ENV_BYTES`; either gives a clear error at the line, fast.

use frontend::lower::{lower, LowerOptions, Offline};
use frontend::parser::parse;
use std::time::Instant;

fn lower_text(text: &str) -> Result<(), frontend::diagnostic::FrontendError> {
    let df = parse(text.as_bytes()).expect("parses");
    lower(&df, &LowerOptions::default(), &Offline).map(drop)
}

#[test]
fn the_arg_doubling_bomb_stops_at_its_line() {
    let mut text = String::from("FROM scratch\nARG A=xxxxxxxx\n");
    for _ in 0..12 {
        text.push_str("ARG A=$A$A$A$A$A$A$A$A\n");
    }
    text.push_str("RUN echo $A\n");
    let started = Instant::now();
    let e = lower_text(&text).unwrap_err();
    // 8 bytes * 8^6 = 2 MiB: the sixth doubling line (line 8) is the first past 1 MiB.
    assert_eq!(e.span.start_line, 8, "{e:?}");
    assert!(e.message.contains("larger than 1 MiB"), "{}", e.message);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn a_global_arg_bomb_and_an_env_bomb_stop_too() {
    let mut global = String::from("ARG A=xxxxxxxx\n");
    for _ in 0..12 {
        global.push_str("ARG A=\"$A$A$A$A$A$A$A$A\"\n");
    }
    global.push_str("FROM scratch\n");
    let e = lower_text(&global).unwrap_err();
    // Here the first ARG is line 1: the sixth doubling is line 7.
    assert_eq!(e.span.start_line, 7, "{e:?}");
    assert!(e.message.contains("larger than 1 MiB"), "{}", e.message);

    let mut env = String::from("FROM scratch\nENV A=xxxxxxxx\n");
    for _ in 0..12 {
        env.push_str("ENV A=${A}${A}${A}${A}${A}${A}${A}${A}\n");
    }
    let e = lower_text(&env).unwrap_err();
    assert_eq!(e.span.start_line, 8, "{e:?}");
    assert!(e.message.contains("larger than 1 MiB"), "{}", e.message);
}

#[test]
fn pattern_replacement_cannot_multiply_past_the_cap() {
    // 512 KiB of `x`, each replaced by 16 bytes: 8 MiB if nothing stopped it.
    let mut text = String::from("FROM scratch\nARG A=xxxxxxxx\n");
    for _ in 0..8 {
        text.push_str("ARG A=$A$A$A$A\n");
    }
    text.push_str("ARG B=${A//x/yyyyyyyyyyyyyyyy}\n");
    let e = lower_text(&text).unwrap_err();
    assert_eq!(e.span.start_line, 11, "{e:?}");
    assert!(e.message.contains("larger than 1 MiB"), "{}", e.message);
}

#[test]
fn many_large_variables_hit_the_stage_cap() {
    // A: 8 * 4^8 = 512 KiB (lines 3-10); each Bn (from line 11) copies it.
    let mut text = String::from("FROM scratch\nARG A=xxxxxxxx\n");
    for _ in 0..8 {
        text.push_str("ARG A=$A$A$A$A\n");
    }
    for n in 0..20 {
        text.push_str(&format!("ARG B{n}=$A\n"));
    }
    let e = lower_text(&text).unwrap_err();
    assert!(e.message.contains("more than 4 MiB"), "{}", e.message);
    // A and B0..B5 hold 3.5 MiB and their names; B6 (line 17) would pass 4 MiB.
    assert_eq!(e.span.start_line, 17, "{e:?}");
}

#[test]
fn ordinary_large_values_still_lower() {
    // A 32 KiB value (the parser takes lines up to 64 KiB) used a few times is fine.
    let big = "y".repeat(32 * 1024);
    let text = format!("FROM scratch\nARG A={big}\nENV B=$A C=$A\nRUN echo $B $C\n");
    lower_text(&text).unwrap();
}

#[test]
fn errors_do_not_echo_huge_words_or_lines() {
    // A 60 KB word with a bad substitution at its end.
    let word = format!("{}${{A/x}}", "w".repeat(60_000));
    let text = format!("FROM scratch\nARG A=1\nENV X={word}\n");
    let e = lower_text(&text).unwrap_err();
    assert!(e.message.len() < 1000, "{} bytes", e.message.len());
    assert!(e.message.contains('…'), "{}", e.message);
    let rendered = e.render("Dockerfile", &text);
    assert!(
        rendered.len() < 2000,
        "{} bytes:\n{rendered}",
        rendered.len()
    );
    assert!(rendered.contains("Dockerfile:3"), "{rendered}");
}
