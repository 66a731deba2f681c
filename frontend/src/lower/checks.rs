//! Build checks that need only the parsed file (no dispatch): instruction casing, FROM/AS
//! casing, stage names (lowercase, unique, not reserved), MAINTAINER and definition comments. Rule names and texts
//! are BuildKit's. They see no stage state: what dispatch finds is checked there.

use crate::ast::{Dockerfile, Node};
use crate::instructions::Instructions;
use crate::lint::Linter;

/// Checks that need only the parsed file, in BuildKit's order: those its instruction parser
/// runs on each instruction (`parse_time`), then stage names and keyword casing.
pub(super) fn run(df: &Dockerfile, ins: &Instructions, linter: &mut Linter) {
    parse_time(df, usize::MAX, linter);
    stage_names(ins, linter);
    let case = majority_case(df);
    for n in &df.nodes {
        keyword_casing(n, case, linter);
    }
}

/// The checks BuildKit's instruction parser runs as it reads each instruction (so they are
/// reported also when a later instruction fails to parse), for the instructions that start
/// before line `before`: StageNameCasing, FromAsCasing, MaintainerDeprecated and the
/// experimental InvalidDefinitionDescription.
pub(super) fn parse_time(df: &Dockerfile, before: usize, linter: &mut Linter) {
    for n in df.nodes.iter().take_while(|n| n.span.start_line < before) {
        match n.keyword.as_str() {
            "from" if n.args.len() == 3 => {
                from_casing(n, linter);
                // Stage names are lower-cased when read, so the comment must be too.
                description(n, "FROM", &[n.args[2].to_lowercase()], linter);
            }
            "maintainer" => linter.run(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label".into(),
                Some(n.span),
            ),
            "arg" => {
                let keys: Vec<String> = n
                    .args
                    .iter()
                    .map(|a| a.split_once('=').map_or(a.as_str(), |(k, _)| k).to_string())
                    .collect();
                description(n, "ARG", &keys, linter);
            }
            _ => {}
        }
    }
}

/// InvalidDefinitionDescription: the comment right above a named stage or an ARG describes
/// it when its first word is the name (`# version the version to build`).
fn description(n: &Node, instruction: &str, names: &[String], linter: &mut Linter) {
    let (Some(comment), Some(first)) = (n.prev_comment.last(), names.first()) else {
        return;
    };
    let word = comment.split(' ').next().unwrap_or("");
    if names.iter().any(|k| k == word) {
        return;
    }
    let example = if names.len() > 1 { "<arg_key>" } else { first };
    linter.run(
        "InvalidDefinitionDescription",
        format!("Comment for {instruction} should follow the format: `# {example} <description>`"),
        Some(n.span),
    );
}

/// The case most keywords are written in: "lowercase" when more are, else "uppercase".
fn majority_case(df: &Dockerfile) -> &'static str {
    let (mut lower, mut upper) = (0, 0);
    for n in &df.nodes {
        if n.keyword_raw == n.keyword_raw.to_lowercase() {
            lower += 1;
        } else if n.keyword_raw == n.keyword_raw.to_uppercase() {
            upper += 1;
        }
    }
    if lower > upper {
        "lowercase"
    } else {
        "uppercase"
    }
}

/// ConsistentInstructionCasing: the keyword in the majority's `case`.
fn keyword_casing(n: &Node, case: &str, linter: &mut Linter) {
    let raw = &n.keyword_raw;
    let ok = if case == "lowercase" {
        *raw == raw.to_lowercase()
    } else {
        *raw == raw.to_uppercase()
    };
    if !ok {
        linter.run(
            "ConsistentInstructionCasing",
            format!("Command '{raw}' should match the case of the command majority ({case})"),
            Some(n.span),
        );
    }
}

/// `FROM base AS name`: StageNameCasing and FromAsCasing (AS in the case of FROM).
fn from_casing(n: &Node, linter: &mut Linter) {
    let (from, as_word, name) = (&n.keyword_raw, &n.args[1], &n.args[2]);
    let from_lower = *from == from.to_lowercase();
    let from_upper = *from == from.to_uppercase();
    if *name != name.to_lowercase() {
        linter.run(
            "StageNameCasing",
            format!("Stage name '{name}' should be lowercase"),
            Some(n.span),
        );
    }
    if (from_lower && *as_word != as_word.to_lowercase())
        || (from_upper && *as_word != as_word.to_uppercase())
    {
        linter.run(
            "FromAsCasing",
            format!("'{as_word}' and '{from}' keywords' casing do not match"),
            Some(n.span),
        );
    }
}

/// ReservedStageName and DuplicateStageName.
fn stage_names(ins: &Instructions, linter: &mut Linter) {
    let mut seen: Vec<&str> = Vec::new();
    for st in &ins.stages {
        let Some(name) = st.name.as_deref() else {
            continue;
        };
        if name == "scratch" || name == "context" {
            linter.run(
                "ReservedStageName",
                format!("Stage name should not use the same name as reserved stage \"{name}\""),
                Some(st.span),
            );
        }
        if seen.contains(&name) {
            linter.run(
                "DuplicateStageName",
                format!("Duplicate stage name \"{name}\", stage names should be unique"),
                Some(st.span),
            );
        }
        seen.push(name);
    }
}
