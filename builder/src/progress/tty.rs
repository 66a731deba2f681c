//! `--progress=tty`: a live view redrawn about ten times a second from a thread of its own,
//! in the style of buildx: every step with its elapsed time, running steps with their cache-miss
//! reasons, byte progress and last output lines, finished steps collapsed to one line, CACHED
//! steps marked. ANSI escapes only (cursor up, clear to end); lines are cut to the terminal's
//! width so the view never wraps. At the end the final state is printed in full, then the
//! summary.

use super::{event_name, human_size, summary_text, Out, Printer, Steps, Summary};
use crate::events::Event;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Separates a step line's title from its time, which is right-aligned when drawn.
const TIME: char = '\u{1}';
/// Output lines kept per running step.
const TAIL: usize = 5;
const FRAME: Duration = Duration::from_millis(100);

pub(super) struct Tty {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    out: Out,
    view: Mutex<View>,
    stop: AtomicBool,
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    /// Seen (a reason, a transfer) but not started.
    Waiting,
    Running(Instant),
    Cached,
    Done(f64),
    Failed(String, f64),
}

struct StepView {
    number: usize,
    name: String,
    status: Status,
    reasons: Vec<String>,
    tail: VecDeque<String>,
    transfers: BTreeMap<String, (u64, Option<u64>)>,
}

#[derive(Default)]
struct View {
    /// "Building", "Pulling", "Pushing" (empty: "Building").
    title: &'static str,
    /// The isolation line, under the title once the build says it.
    isolation: Option<String>,
    steps: Steps,
    list: Vec<StepView>,
    /// Lines drawn by the last frame (to move back over them).
    drawn: usize,
}

impl Tty {
    /// `title`: the frame's verb ("Building", "Pulling", "Pushing").
    pub(super) fn start(out: Box<dyn Write + Send>, title: &'static str) -> Tty {
        let shared = Arc::new(Shared {
            out: Out::new(out),
            view: Mutex::new(View {
                title,
                ..View::default()
            }),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    s.draw(false);
                    std::thread::sleep(FRAME);
                }
            })
            .ok();
        Tty {
            shared,
            thread: Mutex::new(thread),
        }
    }
}

impl Shared {
    fn draw(&self, full: bool) {
        let (width, height) = terminal_size();
        let mut view = self.view.lock().expect("progress lock");
        let lines = view.render(self.out.start.elapsed().as_secs_f64(), full, height);
        let mut text = String::new();
        if view.drawn > 0 {
            text.push_str(&format!("\x1b[{}A\r", view.drawn));
        }
        for l in &lines {
            text.push_str(&cut(l, width.saturating_sub(1)));
            text.push_str("\x1b[K\n");
        }
        text.push_str("\x1b[J");
        view.drawn = lines.len();
        drop(view);
        self.out.write(&text);
    }
}

impl View {
    fn step(&mut self, name: &str) -> &mut StepView {
        let (number, new) = self.steps.number(name);
        if new {
            self.list.push(StepView {
                number,
                name: name.to_string(),
                status: Status::Waiting,
                reasons: Vec::new(),
                tail: VecDeque::new(),
                transfers: BTreeMap::new(),
            });
        }
        self.list
            .iter_mut()
            .find(|s| s.number == number)
            .expect("every numbered step is listed")
    }

    fn apply(&mut self, e: Event) {
        if let Event::Isolation { description, .. } = e {
            self.isolation = Some(description);
            return;
        }
        // List the step before the tally numbers it.
        self.step(event_name(&e));
        self.steps.observe(&e);
        let s = self.step(event_name(&e));
        match e {
            Event::Started { .. } => s.status = Status::Running(Instant::now()),
            Event::Cached { .. } => s.status = Status::Cached,
            Event::Done { seconds, .. } => s.status = Status::Done(seconds),
            Event::Failed { message, .. } => {
                let t = match s.status {
                    Status::Running(t) => t.elapsed().as_secs_f64(),
                    _ => 0.0,
                };
                s.status = Status::Failed(message, t)
            }
            Event::Miss { reasons, .. } => {
                s.reasons = reasons.iter().map(|r| r.to_string()).collect()
            }
            Event::Log { line, .. } => {
                if s.tail.len() == TAIL {
                    s.tail.pop_front();
                }
                s.tail.push_back(clean(&line));
            }
            Event::Transfer {
                item, done, total, ..
            } => {
                s.transfers.insert(item, (done, total));
            }
            Event::Isolation { .. } => {}
        }
    }

    /// The frame's lines. Live frames (`full` false) fit in `height` rows by leaving out the
    /// oldest finished steps.
    fn render(&self, elapsed: f64, full: bool, height: usize) -> Vec<String> {
        let finished = self
            .list
            .iter()
            .filter(|s| matches!(s.status, Status::Cached | Status::Done(_)))
            .count();
        let title = if self.title.is_empty() {
            "Building"
        } else {
            self.title
        };
        let mut out = vec![format!(
            "[+] {title} {elapsed:.1}s ({finished}/{})",
            self.list.len()
        )];
        out.extend(self.isolation.iter().map(|line| format!(" {line}")));
        let mut blocks: Vec<Vec<String>> = self.list.iter().map(|s| s.lines(full)).collect();
        if !full {
            let header = 2 + usize::from(self.isolation.is_some());
            let budget = height.saturating_sub(header).max(4);
            let mut total: usize = blocks.iter().map(Vec::len).sum();
            let mut hidden = 0;
            for (i, s) in self.list.iter().enumerate() {
                if total <= budget {
                    break;
                }
                if matches!(s.status, Status::Cached | Status::Done(_)) {
                    total -= blocks[i].len();
                    blocks[i].clear();
                    hidden += 1;
                }
            }
            if hidden > 0 {
                out.push(format!(" => ... {hidden} finished steps above"));
            }
        }
        out.extend(blocks.into_iter().flatten());
        out
    }
}

impl StepView {
    fn lines(&self, full: bool) -> Vec<String> {
        let (mark, time) = match &self.status {
            Status::Waiting => ("", String::new()),
            Status::Running(t) => ("", format!("{:.1}s", t.elapsed().as_secs_f64())),
            Status::Cached => ("CACHED ", String::new()),
            Status::Done(s) => ("", format!("{s:.1}s")),
            Status::Failed(_, s) => ("ERROR ", format!("{s:.1}s")),
        };
        let mut out = vec![format!(" => {mark}{}{TIME}{time}", self.name)];
        let running = matches!(self.status, Status::Running(_) | Status::Waiting);
        let failed = matches!(self.status, Status::Failed(..));
        if running || full || failed {
            for r in &self.reasons {
                out.push(format!(" => => cache miss: {r}"));
            }
        }
        if running {
            for (item, (done, total)) in &self.transfers {
                let size = match total {
                    Some(t) => format!("{} / {}", human_size(*done), human_size(*t)),
                    None => human_size(*done),
                };
                out.push(format!(" => => {item} {size}"));
            }
        }
        if running || failed {
            for l in &self.tail {
                out.push(format!(" => => # {l}"));
            }
        }
        if let Status::Failed(m, _) = &self.status {
            out.push(format!(" => => ERROR: {m}"));
        }
        out
    }
}

impl Printer for Tty {
    fn event(&self, e: Event) {
        self.shared.view.lock().expect("progress lock").apply(e);
    }

    fn finish(&self, summary: &Summary) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().expect("progress lock").take() {
            let _ = t.join();
        }
        self.shared.draw(true);
        let (hits, misses) = self
            .shared
            .view
            .lock()
            .expect("progress lock")
            .steps
            .tally();
        self.shared.out.write(&summary_text(summary, hits, misses));
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

/// Output text without control characters or ANSI escape sequences (colors, cursor moves),
/// which would break the view; tabs become spaces.
fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters... final byte in @..~; other escapes: one more char.
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
                } else {
                    chars.next();
                }
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `line` in `width` columns: cut to fit; a step's time right-aligned (the title cut first).
fn cut(line: &str, width: usize) -> String {
    let width = width.max(20);
    match line.split_once(TIME) {
        None => line.chars().take(width).collect(),
        Some((title, time)) => {
            let room = width.saturating_sub(time.chars().count() + 1);
            let title: String = title.chars().take(room).collect();
            let pad = width - title.chars().count() - time.chars().count();
            format!("{title}{}{time}", " ".repeat(pad))
        }
    }
}

/// (columns, rows) of the terminal on stderr; 80x24 when unknown.
fn terminal_size() -> (usize, usize) {
    // SAFETY: winsize is plain integers, for which all-zero bytes are a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass; nothing else is touched.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        (ws.ws_col as usize, ws.ws_row as usize)
    } else {
        (80, 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_lose_escapes() {
        assert_eq!(clean("\x1b[1;31mred\x1b[0m\tok\r"), "red ok");
        assert_eq!(clean("a\x1b7b"), "ab");
    }

    #[test]
    fn frames_mark_cached_and_show_running_tails() {
        let mut v = View::default();
        v.apply(Event::Cached {
            name: "[1/3] FROM busybox".into(),
        });
        v.apply(Event::Started {
            name: "[2/3] RUN make".into(),
        });
        v.apply(Event::Log {
            name: "[2/3] RUN make".into(),
            line: "compiling\tfoo".into(),
        });
        let lines = v.render(1.0, false, 24);
        assert_eq!(lines[0], "[+] Building 1.0s (1/2)");
        assert_eq!(
            cut(&lines[1], 40),
            format!(" => CACHED [1/3] FROM busybox{}", " ".repeat(11))
        );
        assert_eq!(cut(&lines[2], 30), " => [2/3] RUN make        0.0s");
        assert_eq!(lines[3], " => => # compiling foo");
        v.apply(Event::Done {
            name: "[2/3] RUN make".into(),
            seconds: 1.3,
        });
        let lines = v.render(2.0, false, 24);
        assert_eq!(lines.len(), 3, "finished steps collapse: {lines:?}");
        assert_eq!(cut(&lines[2], 24), " => [2/3] RUN make  1.3s");
        assert_eq!(
            cut(&lines[2], 20),
            " => [2/3] RUN m 1.3s",
            "the title is cut, not the time"
        );
    }
}
