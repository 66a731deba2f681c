//! Human and JSON renderings of lowering results (graph, image config, warnings). Build
//! progress lives in `crate::progress`.

use frontend::lint::Warning;
use frontend::lower::Lowered;
use graph::{FileAction, MountKind, Op, Source, Vertex};

/// Warnings to stderr, one per line: `warning: RULE: message (Dockerfile:12)`.
pub fn warnings(ws: &[Warning], file: &str) {
    eprint!("{}", warning_lines(ws, file));
}

/// The lines [`warnings`] prints, each ending in a newline.
pub fn warning_lines(ws: &[Warning], file: &str) -> String {
    let mut out = String::new();
    for w in ws {
        let rule = w.rule.map(|r| format!("{r}: ")).unwrap_or_default();
        let at = w
            .span
            .filter(|s| s.start_line > 0)
            .map(|s| format!(" ({file}:{})", s.start_line))
            .unwrap_or_default();
        out.push_str(&format!("warning: {rule}{}{at}\n", w.message));
    }
    out
}

pub fn graph_json(l: &Lowered) -> String {
    let value = serde_json::json!({
        "target": l.target,
        "stages": l.stages,
        "root": l.root,
        "vertices": l.graph.vertices,
        "image": l.image,
        "warnings": l.warnings,
    });
    serde_json::to_string_pretty(&value).expect("graph serializes")
}

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("blake3:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}

pub fn graph_text(l: &Lowered) -> String {
    let mut out = format!(
        "target {} (stages: {}), {} ops, root {}\n\n",
        l.target,
        l.stages.join(", "),
        l.graph.vertices.len(),
        short(&l.root)
    );
    for v in &l.graph.vertices {
        out.push_str(&vertex_text(v));
    }
    out.push_str("\nimage config:\n");
    out.push_str(&serde_json::to_string_pretty(&l.image).expect("image serializes"));
    out.push('\n');
    out
}

fn vertex_text(v: &Vertex) -> String {
    let mut out = format!(
        "{}  {}\n",
        short(&v.digest),
        if v.meta.name.is_empty() {
            "-"
        } else {
            &v.meta.name
        }
    );
    let line = match &v.op {
        Op::Source(Source::Scratch) => "source scratch".to_string(),
        Op::Source(Source::Image {
            reference,
            platform,
        }) => format!("source image {reference} ({platform})"),
        Op::Source(Source::Local {
            name,
            exclude_patterns,
        }) => {
            format!(
                "source local {name} (excludes: {})",
                if exclude_patterns.is_empty() {
                    "none".into()
                } else {
                    exclude_patterns.join(" ")
                }
            )
        }
        Op::Source(Source::Http { url, checksum, .. }) => format!(
            "source http {url}{}",
            checksum
                .as_ref()
                .map(|c| format!(" checksum {c}"))
                .unwrap_or_default()
        ),
        Op::Source(Source::Git {
            remote, reference, ..
        }) => format!("source git {remote} {reference}"),
        Op::Exec(e) => {
            let mut s = format!(
                "exec {:?} cwd={} user={} network={:?}",
                e.args,
                e.cwd,
                if e.user.is_empty() { "root" } else { &e.user },
                e.network
            );
            for m in &e.mounts {
                s.push_str(&format!(
                    "\n      mount {} {}",
                    m.target,
                    mount_text(&m.kind)
                ));
            }
            s
        }
        Op::File(f) => {
            let mut s = format!("file{}", if f.on_input { "" } else { " (on scratch)" });
            for a in &f.actions {
                s.push_str(&format!("\n      {}", action_text(a)));
            }
            s
        }
        Op::Merge => "merge".to_string(),
    };
    out.push_str(&format!("    {line}\n"));
    if !v.inputs.is_empty() {
        let ins: Vec<&str> = v.inputs.iter().map(|d| short(d)).collect();
        out.push_str(&format!("    inputs: {}\n", ins.join(" ")));
    }
    for (source, paths) in &v.meta.context_paths {
        let which = if source == "context" {
            String::new()
        } else {
            format!(" {source}")
        };
        out.push_str(&format!("    reads context{which}: {}\n", paths.join(" ")));
    }
    if !v.meta.expanded_from.is_empty() {
        let vars: Vec<String> = v
            .meta
            .expanded_from
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("    expanded: {}\n", vars.join(" ")));
    }
    out
}

fn mount_text(k: &MountKind) -> String {
    match k {
        MountKind::Input {
            input,
            source,
            readonly,
        } => format!(
            "bind input {input}:{source}{}",
            if *readonly { " ro" } else { " rw" }
        ),
        MountKind::Cache { id, sharing, .. } => format!("cache id={id} sharing={sharing}"),
        MountKind::Secret { id, env, .. } => format!(
            "secret id={id}{}",
            env.as_ref()
                .map(|e| format!(" env={e}"))
                .unwrap_or_default()
        ),
        MountKind::Ssh { id, .. } => format!("ssh id={id}"),
        MountKind::Tmpfs { size } => format!(
            "tmpfs{}",
            size.map(|s| format!(" size={s}")).unwrap_or_default()
        ),
    }
}

fn action_text(a: &FileAction) -> String {
    match a {
        FileAction::Mkdir { path, mode, .. } => format!("mkdir {path} {mode:o}"),
        FileAction::Mkfile {
            path, mode, data, ..
        } => format!("mkfile {path} {mode:o} ({} bytes)", data.len()),
        FileAction::Copy(c) => format!(
            "copy input {}:{} -> {}{}{}",
            c.input,
            c.src,
            c.dest,
            c.owner
                .as_ref()
                .map(|o| format!(" chown={o}"))
                .unwrap_or_default(),
            c.mode
                .as_ref()
                .map(|m| format!(" chmod={m}"))
                .unwrap_or_default()
        ),
    }
}
