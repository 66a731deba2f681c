//! `--progress=json`: one JSON object per line on stderr, for tools. The schema (README.md,
//! "Progress events") is stable: fields are only ever added.
//!
//! Every object has `event` and `time` (seconds since the build started); step events also
//! have `step` (the number plain mode prints) and `name`.

use super::{event_name, Out, Printer, Steps, Summary};
use crate::solver::Event;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Mutex;

/// The schema's version, in the first line (`{"event":"progress","version":1}`).
pub const VERSION: u32 = 1;

pub(super) struct Json {
    out: Out,
    steps: Mutex<Steps>,
}

impl Json {
    pub(super) fn new(out: Box<dyn Write + Send>) -> Json {
        let j = Json {
            out: Out::new(out),
            steps: Mutex::new(Steps::default()),
        };
        j.line(json!({"event": "progress", "version": VERSION}));
        j
    }

    fn line(&self, mut v: Value) {
        let t = (self.out.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        v["time"] = json!(t);
        self.out.write(&format!("{v}\n"));
    }
}

/// An event as its JSON object (without `time`).
fn encode(e: &Event, step: usize) -> Value {
    let name = event_name(e);
    match e {
        Event::Started { .. } => json!({"event": "step.started", "step": step, "name": name}),
        Event::Cached { .. } => json!({"event": "step.cached", "step": step, "name": name}),
        Event::Log { line, .. } => {
            json!({"event": "step.log", "step": step, "name": name, "line": line})
        }
        Event::Done { seconds, .. } => json!({
            "event": "step.finished",
            "step": step,
            "name": name,
            "seconds": (seconds * 1000.0).round() / 1000.0,
        }),
        Event::Failed { message, .. } => {
            json!({"event": "step.error", "step": step, "name": name, "message": message})
        }
        Event::Miss { reasons, .. } => {
            let reasons: Vec<Value> = reasons
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).expect("reasons serialize");
                    v["message"] = json!(r.to_string());
                    v
                })
                .collect();
            json!({"event": "step.miss", "step": step, "name": name, "reasons": reasons})
        }
        Event::Transfer {
            item, done, total, ..
        } => json!({
            "event": "transfer",
            "step": step,
            "name": name,
            "item": item,
            "done": done,
            "total": total,
        }),
    }
}

impl Printer for Json {
    fn event(&self, e: Event) {
        let step = {
            let mut steps = self.steps.lock().expect("progress lock");
            steps.observe(&e);
            steps.number(event_name(&e)).0
        };
        self.line(encode(&e, step));
    }

    fn finish(&self, s: &Summary) {
        let (hits, misses) = self.steps.lock().expect("progress lock").tally();
        self.line(json!({
            "event": "summary",
            "status": if s.error.is_some() { "error" } else { "ok" },
            "dry_run": s.dry_run,
            "image": s.image,
            "digest": s.digest,
            "size": s.size,
            "layers": s.layers,
            "seconds": (s.seconds * 1000.0).round() / 1000.0,
            "cache": {"hits": hits, "misses": misses},
            "error": s.error,
        }));
    }
}
