//! A hostile front for a real registry (std only): a plain-HTTP proxy on 127.0.0.1 that
//! answers chosen requests itself, with bytes the test crafted (a manifest no registry would
//! store, a redirect, a blob that is not what its digest says), forwards every other request
//! to the registry behind it, and logs every request it sees with its headers. What pallet
//! talks to is then a registry an attacker controls: the real one for everything the test did
//! not replace.
//!
//! ```text
//! let front = Front::start(&reg.host(), vec![Rule::get("/v2/evil/manifests/1", Answer::manifest(bytes))]);
//! // pull front.host()/evil:1; then front.requests(), front.saw("/blobs/")
//! ```

use super::http::read_head;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the front answers instead of the registry.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// `200 OK` with a manifest (or index) body of this media type, and the digest header a
    /// registry sends (the sha256 of the body).
    pub fn manifest(media_type: &str, body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            headers: vec![
                ("Content-Type".into(), media_type.into()),
                ("Docker-Content-Digest".into(), crate::digest::sha256(&body)),
            ],
            body,
        }
    }

    /// `200 OK` with these bytes as a blob.
    pub fn blob(body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body,
        }
    }

    /// A `307 Temporary Redirect` to `location`.
    pub fn redirect(location: &str) -> Answer {
        Answer {
            status: 307,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// The same answer with one more header (or a header replaced).
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Requests whose method is `method` (`GET` also matches `HEAD`, answered without the body;
/// `*` matches all) and whose path (query included) is exactly `path` get `answer`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: String,
    pub path: String,
    pub answer: Answer,
}

impl Rule {
    pub fn get(path: &str, answer: Answer) -> Rule {
        Rule {
            method: "GET".into(),
            path: path.into(),
            answer,
        }
    }
}

/// One request as the front saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The request line and headers, as received.
    pub lines: Vec<String>,
}

impl Seen {
    /// `METHOD PATH`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The running front.
pub struct Front {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Front {
    /// A front on a free port of 127.0.0.1 before `upstream` (`host:port`, plain HTTP).
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the front");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rules = Arc::new(rules);
        let (s, upstream) = (seen.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (rules, seen, up) = (rules.clone(), s.clone(), upstream.clone());
                std::thread::spawn(move || connection(client, &up, &rules, &seen));
            }
        });
        Front { port, seen }
    }

    /// `127.0.0.1:PORT` of the front.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `METHOD PATH` of every request seen, in order.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Seen::line).collect()
    }

    /// Whether a request's path contained `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        self.requests().iter().any(|r| r.path.contains(needle))
    }
}

fn connection(client: TcpStream, upstream: &str, rules: &[Rule], seen: &Mutex<Vec<Seen>>) {
    let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    seen.lock().unwrap().push(Seen {
        method: head.method.clone(),
        path: head.path.clone(),
        lines: head.lines.clone(),
    });
    let rule = rules.iter().find(|r| {
        let method = r.method == "*"
            || r.method.eq_ignore_ascii_case(&head.method)
            || (r.method == "GET" && head.method == "HEAD");
        method && r.path == head.path
    });
    if let Some(rule) = rule {
        let a = &rule.answer;
        let mut out = format!("HTTP/1.1 {} X\r\n", a.status);
        for (k, v) in &a.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            a.body.len()
        ));
        let _ = client.write_all(out.as_bytes());
        if head.method != "HEAD" {
            let _ = client.write_all(&a.body);
        }
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut forwarded = String::new();
    for line in &head.lines {
        let name = line.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("connection") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    if up.write_all(forwarded.as_bytes()).is_err() {
        return;
    }
    let len: Option<u64> = head.header("content-length").and_then(|v| v.parse().ok());
    let mut up_reader = up.try_clone().unwrap();
    let to_upstream = std::thread::spawn(move || {
        match len {
            Some(n) => {
                let _ = std::io::copy(&mut (&mut reader).take(n), &mut up);
            }
            None => {
                let _ = std::io::copy(&mut reader, &mut up);
            }
        }
        let _ = up.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_reader, &mut client);
    let _ = up_reader.shutdown(std::net::Shutdown::Both);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = to_upstream.join();
}
