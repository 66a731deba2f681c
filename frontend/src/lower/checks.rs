//! Build checks that need only the parsed file (no dispatch): instruction casing, FROM/AS
//! casing, stage names (lowercase, unique, not reserved) and MAINTAINER. Rule names and texts
//! are BuildKit's. They see no stage state: what dispatch finds is checked there.

use crate::ast::{Dockerfile, Node};
use crate::instructions::Instructions;
use crate::lint::Linter;

/// Checks that need only the parsed file: stage names, keyword casing, MAINTAINER. Each
/// instruction's findings come in order.
pub(super) fn run(df: &Dockerfile, ins: &Instructions, linter: &mut Linter) {
    let case = majority_case(df);
    for n in &df.nodes {
        keyword_casing(n, case, linter);
        if n.keyword == "from" && n.args.len() == 3 {
            from_casing(n, linter);
        }
        if n.keyword == "maintainer" {
            linter.run(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label".into(),
                Some(n.span),
            );
        }
    }
    stage_names(ins, linter);
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

/// `FROM base AS name`: FromAsCasing (AS in the case of FROM) and StageNameCasing.
fn from_casing(n: &Node, linter: &mut Linter) {
    let (from, as_word, name) = (&n.keyword_raw, &n.args[1], &n.args[2]);
    let from_lower = *from == from.to_lowercase();
    let from_upper = *from == from.to_uppercase();
    if (from_lower && *as_word != as_word.to_lowercase())
        || (from_upper && *as_word != as_word.to_uppercase())
    {
        linter.run(
            "FromAsCasing",
            format!("'{as_word}' and '{from}' keywords' casing do not match"),
            Some(n.span),
        );
    }
    if *name != name.to_lowercase() {
        linter.run(
            "StageNameCasing",
            format!("Stage name '{name}' should be lowercase"),
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
