//! The one-way layering of the builder crate, checked (ARCHITECTURE.md draws it). Cargo
//! enforces the crate boundaries (the frontend, graph, context, codec and reference crates
//! cannot see the builder); inside the builder, each top-level module may import only the
//! modules below it in [`ALLOWED`]. A `use crate::x` or an inline `crate::x::...` path in a
//! module's source counts as an import of `x`.
//!
//! A new import that runs upward fails here, naming the file and the edge. Move what both
//! layers need into a leaf (events, fill, or a crate of its own) instead of allowing the edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of builder/src and the modules it may import.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "cli",
        &[
            "build", "progress", "run", "store", "export", "events", "userns", "binfmt",
        ],
    ),
    (
        "build",
        &[
            "solver",
            "export",
            "store",
            "exec",
            "ssh",
            "events",
            "binfmt",
            "remote_cache",
        ],
    ),
    (
        "solver",
        &[
            "exec",
            "snapshot",
            "store",
            "ssh",
            "events",
            "fill",
            "remote_cache",
        ],
    ),
    ("export", &["store", "snapshot", "events"]),
    ("remote_cache", &["store", "events"]),
    ("run", &["exec", "store", "snapshot", "events", "binfmt"]),
    ("store", &["snapshot", "events", "fill"]),
    ("exec", &["snapshot", "fill", "userns"]),
    ("snapshot", &["fill", "userns"]),
    ("progress", &["events"]),
    ("ssh", &[]),
    ("events", &[]),
    ("fill", &[]),
    ("userns", &[]),
    ("binfmt", &[]),
];

/// Edges the issue that set up the layering named as never allowed (kept as a second check,
/// so that loosening [`ALLOWED`] by mistake cannot let them back in).
const NEVER: &[(&str, &str)] = &[
    ("progress", "solver"),
    ("store", "export"),
    ("export", "solver"),
    ("exec", "solver"),
    ("exec", "store"),
    ("snapshot", "store"),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`solver/ops/run.rs` -> `solver`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// Top-level modules a source text imports through `crate::`: `crate::x`, and each item of
/// `crate::{x, y::z}`. Comments are skipped.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn builder_modules_import_only_downward() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let module = module_of(file);
        if module == "lib" || module == "main" {
            continue;
        }
        modules.insert(module.clone());
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module `{module}` is not in ALLOWED: give it its place in the layering",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&text) {
            if target == module || !allowed.contains_key(target.as_str()) {
                continue;
            }
            if !may.contains(&target.as_str()) || NEVER.contains(&(module.as_str(), &target)) {
                wrong.push(format!(
                    "{}: `{module}` imports `{target}`, which is not below it",
                    file.display()
                ));
            }
        }
    }
    assert!(
        modules.len() >= 10,
        "found only {modules:?} under {}",
        src().display()
    );
    assert!(wrong.is_empty(), "upward imports:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_both_import_forms() {
    let text = "use crate::store::{a, b};\nuse crate::{solver::x, exec};\nlet p = crate::build::f(); // crate::cli\n";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["build", "exec", "solver", "store"]);
}
