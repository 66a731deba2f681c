//! Registry authentication: parsing `WWW-Authenticate` challenges (Bearer realm/service/scope,
//! Basic), fetching bearer tokens from the realm (GET with Basic credentials, or the OAuth POST
//! with an identity token as refresh token, as docker does), and the token type whose Debug
//! never shows the secret. Caching and when to authenticate belong to the session.

use crate::encoding::{base64_encode, query_escape};
use crate::error::{http_error, Action};
use crate::transport::{self, Body, Method, Transport};
use crate::{Credential, RegistryError};
use std::time::{Duration, Instant};

/// How a registry wants to be authenticated (from its 401 answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses the `WWW-Authenticate` values of a 401; Bearer is preferred over Basic.
pub(crate) fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for value in values {
        let (scheme, params) = match value.trim().split_once(' ') {
            Some((s, p)) => (s, p),
            None => (value.trim(), ""),
        };
        if scheme.eq_ignore_ascii_case("basic") {
            basic = true;
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let params = parse_params(params);
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            if let Some(realm) = get("realm") {
                return Some(Challenge::Bearer {
                    realm,
                    service: get("service"),
                });
            }
        }
    }
    basic.then_some(Challenge::Basic)
}

/// `key="quoted, value",key2=token` -> pairs (quotes and backslash escapes removed).
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
    out
}

/// `Authorization: Basic ...` for a credential.
pub(crate) fn basic_header(cred: &Credential) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{}:{}", cred.username, cred.secret).as_bytes())
    )
}

/// A bearer token and when to stop using it. Debug hides the token.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) expires: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Asks the realm for a token covering `scopes` (empty for a login check). Retries connection
/// failures and 5xx. `registry` names the registry in errors and hints. `offline` asks for a
/// refresh token as docker's login does (`offline_token=true&client_id=`); pallet does not keep
/// it, but token servers that require the parameter for logins get it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fetch_token(
    transport: &Transport,
    agent: &ureq::Agent,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    cred: Option<&Credential>,
    offline: bool,
) -> Result<Token, RegistryError> {
    let realm_host = transport::url_host(realm).to_string();
    let target = if scopes.is_empty() {
        format!("token for {registry}")
    } else {
        format!("token for {registry} ({})", scopes.join(" "))
    };
    let refresh = cred.filter(|c| c.is_identity_token());
    let (method, url, form) = match refresh {
        Some(c) => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", c.secret.clone()),
                ("client_id", "pallet".to_string()),
                ("access_type", "offline".to_string()),
            ];
            if let Some(s) = service {
                form.push(("service", s.to_string()));
            }
            if !scopes.is_empty() {
                form.push(("scope", scopes.join(" ")));
            }
            let body = form
                .iter()
                .map(|(k, v)| format!("{k}={}", query_escape(v)))
                .collect::<Vec<_>>()
                .join("&");
            (Method::Post, realm.to_string(), Some(body))
        }
        None => {
            let mut url = realm.to_string();
            if let Some(s) = service {
                url = transport::add_query(&url, "service", s);
            }
            for scope in scopes {
                url = transport::add_query(&url, "scope", scope);
            }
            if let Some(c) = cred {
                url = transport::add_query(&url, "account", &c.username);
                if offline {
                    url = transport::add_query(&url, "offline_token", "true");
                    url = transport::add_query(&url, "client_id", "pallet");
                }
            }
            (Method::Get, url, None)
        }
    };
    let mut headers: Vec<(&str, String)> = Vec::new();
    match (cred, &form) {
        (Some(c), None) => headers.push(("authorization", basic_header(c))),
        (_, Some(_)) => headers.push((
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )),
        _ => {}
    }
    let policy = &transport.config.retry;
    let mut attempt = 0;
    let resp = loop {
        let mut body = match &form {
            Some(f) => Body::Bytes(f.as_bytes()),
            None => Body::Empty,
        };
        match transport.send(agent, method, &url, &headers, &mut body) {
            Ok(r) if r.status().as_u16() >= 500 && attempt + 1 < policy.attempts => {}
            Ok(r) => break r,
            Err(e) if transport::is_transient(&e) && attempt + 1 < policy.attempts => {}
            Err(e) => {
                let idle = transport.config.transfer.idle_timeout;
                return Err(transport::connection_error(&realm_host, &e, idle));
            }
        }
        std::thread::sleep(policy.delay(attempt));
        attempt += 1;
    };
    let status = resp.status().as_u16();
    let limits = &transport.config.transfer;
    let body = transport::read_body(resp, 1 << 20, limits)
        .map_err(|e| e.into_error(&realm_host, &format!("token from {realm}"), limits))?;
    if status != 200 {
        return Err(http_error(
            registry,
            target,
            method.as_str(),
            status,
            &body,
            Action::Token,
        ));
    }
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
        RegistryError::http(
            registry,
            target.clone(),
            method.as_str(),
            status,
            format!("unreadable token answer: {e}"),
            "the token server is not a docker token service".into(),
        )
    })?;
    let value = if answer.token.is_empty() {
        answer.access_token
    } else {
        answer.token
    };
    if value.is_empty() {
        return Err(RegistryError::http(
            registry,
            target,
            method.as_str(),
            status,
            "the token server answered without a token".into(),
            "the token server is not a docker token service".into(),
        ));
    }
    // The spec's minimum lifetime is 60 s; stop using a token 10 s before it expires.
    let lifetime = answer.expires_in.unwrap_or(60).max(60);
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(lifetime - 10),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenges(
            [r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#]
                .into_iter(),
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenges([r#"Basic realm="Registry Realm""#].into_iter()),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenges([r#"Basic realm="x""#, "Bearer realm=http://t/token"].into_iter()),
            Some(Challenge::Bearer {
                realm: "http://t/token".into(),
                service: None
            })
        );
        assert_eq!(parse_challenges(["Negotiate"].into_iter()), None);
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = Token {
            value: "s3cret-token".into(),
            expires: Instant::now(),
        };
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
