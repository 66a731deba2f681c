//! `--progress=json`: one JSON object per line on stderr, for tools. The schema (README.md,
//! "Progress events") is stable: fields are only ever added.
//!
//! Every object has `event` and `time` (seconds since the build started); step events also
//! have `step` (the number plain mode prints) and `name`. Transfer progress is written at most
//! five times a second per item, and always on completion.

use super::{event_name, Out, Printer, Steps, Summary};
use crate::events::Event;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The schema's version, in the first line (`{"event":"progress","version":1}`).
pub const VERSION: u32 = 1;

pub(super) struct Json {
    out: Out,
    steps: Mutex<Steps>,
    /// When each transfer item was last written: at most every [`TRANSFER_EVERY`], and
    /// always when it completes.
    transfers: Mutex<HashMap<(usize, String), Instant>>,
}

const TRANSFER_EVERY: Duration = Duration::from_millis(200);

impl Json {
    pub(super) fn new(out: Box<dyn Write + Send>) -> Json {
        let j = Json {
            out: Out::new(out),
            steps: Mutex::new(Steps::default()),
            transfers: Mutex::new(HashMap::new()),
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
        Event::Isolation { mode, description } => {
            json!({"event": "isolation", "mode": mode, "description": description})
        }
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
        if let Event::Isolation { .. } = e {
            return self.line(encode(&e, 0));
        }
        let step = {
            let mut steps = self.steps.lock().expect("progress lock");
            steps.observe(&e);
            steps.number(event_name(&e)).0
        };
        if let Event::Transfer {
            item, done, total, ..
        } = &e
        {
            let complete = total.is_some_and(|t| *done >= t);
            let mut last = self.transfers.lock().expect("progress lock");
            let key = (step, item.clone());
            if !complete && last.get(&key).is_some_and(|t| t.elapsed() < TRANSFER_EVERY) {
                return;
            }
            last.insert(key, Instant::now());
        }
        self.line(encode(&e, step));
    }

    fn finish(&self, s: &Summary) {
        let (hits, misses) = self.steps.lock().expect("progress lock").tally();
        self.line(json!({
            "event": "summary",
            "status": if s.error.is_some() { "error" } else { "ok" },
            "command": s.command.unwrap_or("build"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_follow_the_schema_and_transfers_are_throttled() {
        let buf = Buf::default();
        let j = Json::new(Box::new(buf.clone()));
        for done in [1, 2, 3, 10] {
            j.event(Event::Transfer {
                name: "[internal] pull busybox".into(),
                item: "sha256:abc".into(),
                done,
                total: Some(10),
            });
        }
        j.event(Event::Cached {
            name: "[1/2] FROM busybox".into(),
        });
        j.finish(&Summary::default());
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["progress", "transfer", "transfer", "step.cached", "summary"],
            "{text}"
        );
        assert_eq!(lines[2]["done"], 10);
        assert_eq!(lines[3]["step"], 2);
        assert_eq!(lines[4]["cache"]["hits"], 1);
        assert!(lines.iter().all(|l| l["time"].is_number()));
    }
}
