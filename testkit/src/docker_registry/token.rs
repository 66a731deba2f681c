//! The bearer-token issuer of `Config::token`: a std `TcpListener` thread that checks Basic
//! credentials and answers `{"token": JWT}`, the JWT RS256-signed with `openssl dgst` and its
//! `x5c` header carrying the certificate the registry trusts. Anonymous requests get a token
//! without access; the OAuth form (POST `grant_type=refresh_token`) takes the password as the
//! refresh token, as docker's identity tokens do.

use super::http::{base64, read_head, unescape, STD, URL};
use crate::run::ok_bytes as run;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub const TOKEN_SERVICE: &str = "pallet-test-registry";
pub const TOKEN_ISSUER: &str = "pallet-test-issuer";

/// The bearer-token issuer for `Config::token`.
pub(super) struct TokenServer {
    port: u16,
    pub(super) cert: PathBuf,
    pub(super) count: Arc<AtomicUsize>,
}

impl TokenServer {
    pub(super) fn start(dir: &Path, user: &str, pass: &str) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-days", "2", "-subj", "/CN=pallet test token issuer"]));
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let issuer = Issuer {
            key,
            x5c: base64(&der, STD, true),
            expected_auth: format!(
                "Basic {}",
                base64(format!("{user}:{pass}").as_bytes(), STD, true)
            ),
            user: user.to_string(),
            refresh: pass.to_string(),
            count: count.clone(),
        };
        let issuer = Arc::new(issuer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let issuer = issuer.clone();
                std::thread::spawn(move || issuer.serve(stream));
            }
        });
        TokenServer { port, cert, count }
    }

    pub(super) fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

struct Issuer {
    key: PathBuf,
    x5c: String,
    expected_auth: String,
    user: String,
    refresh: String,
    count: Arc<AtomicUsize>,
}

impl Issuer {
    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let Some(head) = read_head(&mut reader) else {
            return;
        };
        self.count.fetch_add(1, Ordering::SeqCst);
        let target = head.path.clone();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let parse = |text: &str| -> Vec<(String, String)> {
            text.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), unescape(v)))
                .collect()
        };
        let params = parse(query);
        let auth = head.header("authorization");
        // OAuth (docker's identity tokens): POST grant_type=refresh_token; the password is the
        // refresh token here.
        let form = (head.method == "POST").then(|| {
            let len: u64 = head
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = String::new();
            let _ = (&mut reader).take(len).read_to_string(&mut body);
            parse(&body)
        });
        if let Some(form) = form {
            let get = |k: &str| {
                form.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            };
            let ok = get("grant_type") == Some("refresh_token")
                && get("refresh_token") == Some(self.refresh.as_str());
            let (status, body) = if ok {
                let scopes: Vec<&str> = get("scope").unwrap_or("").split(' ').collect();
                let token = self.jwt(true, &scopes);
                (
                    "200 OK",
                    format!(r#"{{"access_token":"{token}","expires_in":300}}"#),
                )
            } else {
                (
                    "401 Unauthorized",
                    r#"{"error":"invalid_grant"}"#.to_string(),
                )
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        let (status, body) = match auth {
            Some(a) if a != self.expected_auth => (
                "401 Unauthorized",
                r#"{"details":"invalid username or password"}"#.to_string(),
            ),
            _ => {
                let authenticated = auth.is_some();
                let scopes: Vec<&str> = params
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' '))
                    .collect();
                let token = self.jwt(authenticated, &scopes);
                (
                    "200 OK",
                    format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#),
                )
            }
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    fn jwt(&self, authenticated: bool, scopes: &[&str]) -> String {
        let access: Vec<String> = if authenticated {
            scopes
                .iter()
                .filter_map(|s| {
                    let (kind, rest) = s.split_once(':')?;
                    let (name, actions) = rest.rsplit_once(':')?;
                    let actions: Vec<String> =
                        actions.split(',').map(|a| format!("\"{a}\"")).collect();
                    Some(format!(
                        r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#,
                        actions.join(",")
                    ))
                })
                .collect()
        } else {
            Vec::new()
        };
        static JTI: AtomicUsize = AtomicUsize::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = format!(r#"{{"typ":"JWT","alg":"RS256","x5c":["{}"]}}"#, self.x5c);
        let sub = if authenticated {
            self.user.as_str()
        } else {
            ""
        };
        let claims = format!(
            r#"{{"iss":"{TOKEN_ISSUER}","sub":"{sub}","aud":"{TOKEN_SERVICE}","exp":{},"nbf":{},"iat":{now},"jti":"{}","access":[{}]}}"#,
            now + 300,
            now - 10,
            JTI.fetch_add(1, Ordering::SeqCst),
            access.join(",")
        );
        let signing_input = format!(
            "{}.{}",
            base64(header.as_bytes(), URL, false),
            base64(claims.as_bytes(), URL, false)
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl dgst");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())
            .unwrap();
        let sig = child.wait_with_output().expect("openssl dgst");
        format!("{signing_input}.{}", base64(&sig.stdout, URL, false))
    }
}
