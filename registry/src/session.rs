//! Per-process registry state and the one request loop every API call goes through: endpoint
//! discovery (ping `/v2/` over HTTPS, falling back to plain HTTP only where the config allows),
//! the registry's auth challenge, credentials looked up once per host, bearer tokens cached per
//! (registry, scope set) and refetched on expiry or a 401, retries with backoff for connection
//! failures, 5xx, 408 and 429 (honoring Retry-After), and redirects followed by hand so that an
//! Authorization header never reaches another host.

use crate::auth::{self, Challenge, Token};
use crate::transport::{self, Body, FailureKind, Method, Response, Transport};
use crate::{Credential, DockerConfig, RegistryError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Docker Hub's API host (references say `docker.io`).
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The host that serves a reference's domain.
pub(crate) fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => DOCKER_HUB_API,
        other => other,
    }
}

/// A registry endpoint once discovered: base URL, agent and its auth challenge.
pub(crate) struct Endpoint {
    /// `host[:port]`: the key for TLS settings, credentials and tokens.
    pub(crate) host: String,
    /// `https://host[:port]` or `http://host[:port]`.
    pub(crate) base: String,
    challenge: Mutex<Option<Challenge>>,
}

impl Endpoint {
    pub(crate) fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().expect("challenge lock").clone()
    }
}

/// One HTTP exchange as the API code describes it.
pub(crate) struct Call<'a, 's> {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body<'a>,
    /// Token scopes (`repository:NAME:pull,push`) this request needs.
    pub(crate) scopes: &'s [String],
    /// Follow 3xx (GET/HEAD only), dropping Authorization on another host.
    pub(crate) follow_redirects: bool,
}

impl<'a, 's> Call<'a, 's> {
    /// A request with no headers and no body; GET and HEAD follow redirects, the rest never do.
    pub(crate) fn new(method: Method, url: String, scopes: &'s [String]) -> Self {
        let follow_redirects = matches!(method, Method::Get | Method::Head);
        Call {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            scopes,
            follow_redirects,
        }
    }

    pub(crate) fn headers(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers = headers;
        self
    }

    pub(crate) fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

pub(crate) struct Session {
    pub(crate) transport: Transport,
    credentials: DockerConfig,
    creds_cache: Mutex<HashMap<String, Option<Credential>>>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    /// Serializes token fetches so parallel transfers share one token.
    token_fetch: Mutex<()>,
    /// Serializes endpoint discovery and credential lookups (one ping, one helper run).
    discovery: Mutex<()>,
}

impl Session {
    pub(crate) fn new(transport: Transport, credentials: DockerConfig) -> Session {
        Session {
            transport,
            credentials,
            creds_cache: Mutex::new(HashMap::new()),
            endpoints: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_fetch: Mutex::new(()),
            discovery: Mutex::new(()),
        }
    }

    /// Stored credentials for `host` (docker config / helper), looked up once.
    pub(crate) fn credential(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some(c) = self.creds_cache.lock().expect("creds lock").get(host) {
            return Ok(c.clone());
        }
        let _one = self.discovery.lock().expect("discovery lock");
        if let Some(c) = self.creds_cache.lock().expect("creds lock").get(host) {
            return Ok(c.clone());
        }
        let cred = self.credentials.get(host)?;
        self.creds_cache
            .lock()
            .expect("creds lock")
            .insert(host.to_string(), cred.clone());
        Ok(cred)
    }

    /// The endpoint for `host`, discovered on first use. `scheme` forces one (mirrors).
    pub(crate) fn endpoint(
        &self,
        host: &str,
        scheme: Option<&str>,
    ) -> Result<Arc<Endpoint>, RegistryError> {
        if let Some(ep) = self.endpoints.lock().expect("endpoints lock").get(host) {
            return Ok(ep.clone());
        }
        let _one = self.discovery.lock().expect("discovery lock");
        if let Some(ep) = self.endpoints.lock().expect("endpoints lock").get(host) {
            return Ok(ep.clone());
        }
        let ep = Arc::new(self.discover(host, scheme)?);
        self.endpoints
            .lock()
            .expect("endpoints lock")
            .insert(host.to_string(), ep.clone());
        Ok(ep)
    }

    /// Pings `/v2/` over HTTPS (then HTTP when allowed) and records the auth challenge. With
    /// two schemes to try, each is tried once first: a plain-HTTP registry answers HTTPS with
    /// a broken connection, which alone would be retried with backoff (3 s) before HTTP got
    /// its turn. Only when neither answers are they tried again with the retry policy.
    fn discover(&self, host: &str, scheme: Option<&str>) -> Result<Endpoint, RegistryError> {
        let schemes: &[&str] = match scheme {
            Some("http") => &["http"],
            Some(_) => &["https"],
            None if self.transport.config.plain_http(host) => &["http"],
            None if self.transport.config.allows_http(host) => &["https", "http"],
            None => &["https"],
        };
        let attempts = self.transport.config.retry.attempts;
        if schemes.len() > 1 {
            if let Ok(ep) = self.discover_with(host, schemes, 1) {
                return Ok(ep);
            }
        }
        self.discover_with(host, schemes, attempts)
    }

    fn discover_with(
        &self,
        host: &str,
        schemes: &[&str],
        attempts: u32,
    ) -> Result<Endpoint, RegistryError> {
        let mut first_error = None;
        for scheme in schemes {
            let base = format!("{scheme}://{host}");
            let agent = self.transport.agent(host, &base)?;
            match self.ping(&agent, host, &base, None, attempts) {
                Ok(challenge) => {
                    return Ok(Endpoint {
                        host: host.to_string(),
                        base,
                        challenge: Mutex::new(challenge),
                    })
                }
                // A certificate problem means the server speaks TLS: plain HTTP won't help.
                Err(PingError::Connect(e))
                    if transport::classify(&e) == FailureKind::Certificate =>
                {
                    return Err(transport::connection_error(host, &e, self.idle()))
                }
                // Nothing listens on the port: plain HTTP would be refused too.
                Err(PingError::Connect(ureq::Error::Io(e)))
                    if e.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    let e = ureq::Error::Io(e);
                    return Err(first_error.unwrap_or(transport::connection_error(
                        host,
                        &e,
                        self.idle(),
                    )));
                }
                Err(PingError::Connect(e)) => {
                    first_error.get_or_insert(transport::connection_error(host, &e, self.idle()));
                }
                Err(PingError::Registry(e)) => return Err(e),
            }
        }
        Err(first_error.expect("at least one scheme tried"))
    }

    /// GET /v2/: Ok(challenge) when a registry answered (200 = no auth needed, 401 = challenge).
    fn ping(
        &self,
        agent: &ureq::Agent,
        host: &str,
        base: &str,
        authorization: Option<String>,
        attempts: u32,
    ) -> Result<Option<Challenge>, PingError> {
        let url = format!("{base}/v2/");
        let headers: Vec<(&str, String)> = authorization
            .into_iter()
            .map(|a| ("authorization", a))
            .collect();
        let policy = &self.transport.config.retry;
        let mut attempt = 0;
        loop {
            let result = self
                .transport
                .send(agent, Method::Get, &url, &headers, &mut Body::Empty);
            let retry = match &result {
                Ok(r) => transient_status(r.status().as_u16()),
                Err(e) => transport::is_transient(e),
            };
            if retry && attempt + 1 < attempts {
                std::thread::sleep(policy.delay(attempt));
                attempt += 1;
                continue;
            }
            let resp = result.map_err(PingError::Connect)?;
            let status = resp.status().as_u16();
            let challenge = auth::parse_challenges(
                resp.headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            let body = transport::read_body(resp, 1 << 16, &self.transport.config.transfer)
                .unwrap_or_default();
            return match status {
                200..=299 => Ok(None),
                401 if challenge.is_some() => Ok(challenge),
                _ => Err(PingError::Registry(crate::error::http_error(
                    host,
                    format!("{host} (/v2/)"),
                    "GET",
                    status,
                    &body,
                    crate::error::Action::Ping,
                ))),
            };
        }
    }

    /// The Authorization header for a request needing `scopes`, if the registry wants one.
    fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
    ) -> Result<Option<String>, RegistryError> {
        match ep.challenge() {
            None => Ok(None),
            Some(Challenge::Basic) => {
                Ok(self.credential(&ep.host)?.map(|c| auth::basic_header(&c)))
            }
            Some(Challenge::Bearer { realm, service }) => {
                let key = (ep.host.clone(), scope_key(scopes));
                let cached = |tokens: &HashMap<(String, String), Token>| {
                    tokens
                        .get(&key)
                        .filter(|t| t.expires > Instant::now())
                        .map(|t| format!("Bearer {}", t.value))
                };
                if let Some(h) = cached(&self.tokens.lock().expect("tokens lock")) {
                    return Ok(Some(h));
                }
                let _fetching = self.token_fetch.lock().expect("token fetch lock");
                if let Some(h) = cached(&self.tokens.lock().expect("tokens lock")) {
                    return Ok(Some(h));
                }
                let cred = self.credential(&ep.host)?;
                let agent = self.transport.agent(&ep.host, &realm)?;
                let token = auth::fetch_token(
                    &self.transport,
                    &agent,
                    &ep.host,
                    &realm,
                    service.as_deref(),
                    scopes,
                    cred.as_ref(),
                    false,
                )?;
                let header = format!("Bearer {}", token.value);
                self.tokens.lock().expect("tokens lock").insert(key, token);
                Ok(Some(header))
            }
        }
    }

    /// The idle timeout, for the errors that say a registry went silent.
    fn idle(&self) -> std::time::Duration {
        self.transport.config.transfer.idle_timeout
    }

    fn forget_token(&self, ep: &Endpoint, scopes: &[String]) {
        let key = (ep.host.clone(), scope_key(scopes));
        self.tokens.lock().expect("tokens lock").remove(&key);
    }

    /// Sends a call: auth, one re-auth on 401, retries (replayable bodies only), redirects.
    /// Returns the final response whatever its status; connection failures are errors.
    pub(crate) fn call(
        &self,
        ep: &Endpoint,
        mut call: Call<'_, '_>,
    ) -> Result<Response, RegistryError> {
        let policy = &self.transport.config.retry;
        let replayable = call.body.replayable();
        let mut attempt = 0;
        let mut reauthed = false;
        let mut redirects = 0;
        let mut send_auth = true;
        let mut url = call.url.clone();
        loop {
            let mut headers = call.headers.clone();
            if send_auth {
                if let Some(a) = self.authorization(ep, call.scopes)? {
                    headers.push(("authorization", a));
                }
            }
            let agent = self.transport.agent(&ep.host, &url)?;
            let result = self
                .transport
                .send(&agent, call.method, &url, &headers, &mut call.body);
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    if replayable && transport::is_transient(&e) && attempt + 1 < policy.attempts {
                        std::thread::sleep(policy.delay(attempt));
                        attempt += 1;
                        continue;
                    }
                    let idle = self.idle();
                    return Err(transport::connection_error(
                        transport::url_host(&url),
                        &e,
                        idle,
                    ));
                }
            };
            let status = resp.status().as_u16();
            if status == 401 && send_auth && !reauthed && replayable {
                let challenge = auth::parse_challenges(
                    resp.headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                );
                if let Some(c) = challenge {
                    *ep.challenge.lock().expect("challenge lock") = Some(c);
                    self.forget_token(ep, call.scopes);
                    reauthed = true;
                    drain(resp, &self.transport.config.transfer);
                    continue;
                }
            }
            if transient_status(status) && replayable && attempt + 1 < policy.attempts {
                let wait = transport::retry_after(&resp).unwrap_or_else(|| policy.delay(attempt));
                drain(resp, &self.transport.config.transfer);
                std::thread::sleep(wait);
                attempt += 1;
                continue;
            }
            if call.follow_redirects
                && matches!(status, 301 | 302 | 303 | 307 | 308)
                && redirects < 10
            {
                if let Some(location) = transport::header(&resp, "location") {
                    let next = transport::resolve_url(&url, &location);
                    // Storage backends (S3, CDNs) must not see the registry's token.
                    if transport::url_host(&next) != transport::url_host(&url)
                        || scheme(&next) != scheme(&url)
                    {
                        send_auth = false;
                    }
                    drain(resp, &self.transport.config.transfer);
                    url = next;
                    redirects += 1;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// `pallet login`: checks `cred` against the registry's auth without caching anything.
    pub(crate) fn check_login(
        &self,
        host: &str,
        cred: Option<&Credential>,
    ) -> Result<(), RegistryError> {
        let ep = self.endpoint(host, None)?;
        let authorization = match ep.challenge() {
            None => return Ok(()),
            Some(Challenge::Basic) => cred.map(auth::basic_header),
            Some(Challenge::Bearer { realm, service }) => {
                let agent = self.transport.agent(host, &realm)?;
                let token = auth::fetch_token(
                    &self.transport,
                    &agent,
                    host,
                    &realm,
                    service.as_deref(),
                    &[],
                    cred,
                    true,
                )?;
                Some(format!("Bearer {}", token.value))
            }
        };
        let attempts = self.transport.config.retry.attempts;
        let agent = self.transport.agent(host, &ep.base)?;
        match self.ping(&agent, host, &ep.base, authorization, attempts) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(crate::error::http_error(
                host,
                format!("login to {host}"),
                "GET",
                401,
                b"",
                crate::error::Action::Token,
            )),
            Err(PingError::Connect(e)) => Err(transport::connection_error(host, &e, self.idle())),
            Err(PingError::Registry(e)) => Err(e),
        }
    }
}

enum PingError {
    Connect(ureq::Error),
    Registry(RegistryError),
}

pub(crate) fn transient_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

fn scope_key(scopes: &[String]) -> String {
    let mut s = scopes.to_vec();
    s.sort();
    s.join(" ")
}

fn scheme(url: &str) -> &str {
    url.split("://").next().unwrap_or("")
}

/// Reads what is left of a small response so its connection can go back to the pool.
fn drain(resp: Response, limits: &crate::config::TransferLimits) {
    let _ = transport::read_body(resp, 1 << 16, limits);
}
