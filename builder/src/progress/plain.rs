//! `--progress=plain`: BuildKit's plain mode, one line per event, readable in a CI log.
//!
//!     #2 [2/3] RUN echo hi
//!     #2 cache miss: build arg V changed: "1" -> "2"
//!     #2 0.104 hi
//!     #2 DONE 0.3s
//!
//! A step's title is printed again when another step printed in between (parallel steps).

use super::{event_name, human_size, summary_text, Out, Printer, Steps, Summary};
use crate::events::Event;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

pub(super) struct Plain {
    out: Out,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    steps: Steps,
    /// The step whose title is the last one printed.
    current: Option<usize>,
    started: HashMap<usize, Instant>,
    /// When each transfer item was last printed.
    transfers: HashMap<(usize, String), Instant>,
}

impl Plain {
    pub(super) fn new(out: Box<dyn Write + Send>) -> Plain {
        Plain {
            out: Out::new(out),
            state: Mutex::new(State::default()),
        }
    }
}

impl Printer for Plain {
    fn event(&self, e: Event) {
        if let Event::Isolation { description, .. } = &e {
            // The build's header, before any step.
            self.out.write(&format!("{description}\n"));
            return;
        }
        let mut st = self.state.lock().expect("progress lock");
        st.steps.observe(&e);
        let name = event_name(&e).to_string();
        let (n, _) = st.steps.number(&name);
        let mut text = String::new();
        if st.current != Some(n) {
            if st.current.is_some() {
                text.push('\n');
            }
            text.push_str(&format!("#{n} {name}\n"));
            st.current = Some(n);
        }
        match e {
            Event::Isolation { .. } => {}
            Event::Started { .. } => {
                st.started.insert(n, Instant::now());
            }
            Event::Cached { .. } => text.push_str(&format!("#{n} CACHED\n")),
            Event::Miss { reasons, .. } => {
                let r: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                text.push_str(&format!("#{n} cache miss: {}\n", r.join("; ")));
            }
            Event::Log { line, .. } => {
                let t = st
                    .started
                    .get(&n)
                    .map_or(0.0, |s| s.elapsed().as_secs_f64());
                text.push_str(&format!("#{n} {t:.3} {line}\n"));
            }
            Event::Done { seconds, .. } => text.push_str(&format!("#{n} DONE {seconds:.1}s\n")),
            Event::Failed { message, .. } => text.push_str(&format!("#{n} ERROR: {message}\n")),
            Event::Transfer {
                item, done, total, ..
            } => {
                // On completion, and at most every two seconds while it moves.
                let complete = total.is_some_and(|t| done >= t);
                let key = (n, item.clone());
                let due = st
                    .transfers
                    .get(&key)
                    .is_none_or(|t| t.elapsed().as_secs_f64() >= 2.0);
                if complete || due {
                    st.transfers.insert(key, Instant::now());
                    let size = match total {
                        Some(t) => format!("{} / {}", human_size(done), human_size(t)),
                        None => human_size(done),
                    };
                    let end = if complete { " done" } else { "" };
                    text.push_str(&format!("#{n} {item} {size}{end}\n"));
                } else if text.is_empty() {
                    return;
                }
            }
        }
        self.out.write(&text);
    }

    fn finish(&self, summary: &Summary) {
        let st = self.state.lock().expect("progress lock");
        let (hits, misses) = st.steps.tally();
        let lead = if st.current.is_some() { "\n" } else { "" };
        self.out
            .write(&format!("{lead}{}", summary_text(summary, hits, misses)));
    }
}
