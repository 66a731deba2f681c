//! Which proxy a request goes through: Go's rule (golang.org/x/net/http/httpproxy, what
//! `http.ProxyFromEnvironment` uses in docker, BuildKit, skopeo and buildah), in one place for
//! the registry client and for `ADD <url>`.
//!
//! - `HTTPS_PROXY` for `https` URLs, `HTTP_PROXY` for `http` URLs (the upper-case name first,
//!   then the lower-case one; an empty value is unset). An https request never falls back to
//!   `HTTP_PROXY`. `ALL_PROXY` is not Go's and is not read.
//! - A value without a scheme (`proxy:3128`) means `http://proxy:3128`.
//! - Never for `localhost` or a loopback address.
//! - `NO_PROXY` (then `no_proxy`): a comma list; `*` alone means no proxy at all; an IP or a
//!   CIDR range matches addresses (an IP may carry a port: `1.2.3.4:80`, `[::1]:443`);
//!   `example.com` matches it and its subdomains, `.example.com` and `*.example.com` only the
//!   subdomains; a name may carry a port too. Names never match an address.
//! - With `REQUEST_METHOD` set (a CGI environment, where `HTTP_PROXY` comes from a request
//!   header), `HTTP_PROXY` is refused with an error (golang.org/s/cgihttpproxy).
//!
//! Knows nothing of registries; returns proxy URLs, and the ureq `Proxy` for them.

use std::net::IpAddr;

/// The proxy settings of an environment, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTP_PROXY` as a URL (scheme added), None when unset.
    http: Option<String>,
    /// `HTTPS_PROXY` as a URL (scheme added), None when unset.
    https: Option<String>,
    /// The name `http` came from, for errors.
    http_var: &'static str,
    https_var: &'static str,
    no_proxy: Vec<Matcher>,
    /// `NO_PROXY=*`.
    none: bool,
    cgi: bool,
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    Cidr(IpAddr, u32),
    Ip(IpAddr, Option<u16>),
    /// `.example.com` (always with the leading dot); `exact` also matches `example.com`.
    Domain {
        suffix: String,
        port: Option<u16>,
        exact: bool,
    },
}

/// A proxy setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{var}={value} is not a usable proxy: {message}")]
    Unusable {
        var: &'static str,
        value: String,
        message: String,
    },
    #[error(
        "refusing to use HTTP_PROXY in a CGI environment (REQUEST_METHOD is set), as Go does: \
         see golang.org/s/cgihttpproxy"
    )]
    Cgi,
}

impl ProxyEnv {
    /// The settings of this process's environment.
    pub fn from_process() -> ProxyEnv {
        ProxyEnv::from_vars(&|name| std::env::var(name).ok())
    }

    /// The settings `var` gives (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` or their lower-case
    /// forms, `REQUEST_METHOD`).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> ProxyEnv {
        let any = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| var(n).filter(|v| !v.is_empty()).map(|v| (n, v)))
        };
        let http = any(["HTTP_PROXY", "http_proxy"]);
        let https = any(["HTTPS_PROXY", "https_proxy"]);
        let no_proxy = any(["NO_PROXY", "no_proxy"]).map(|(_, v)| v);
        let mut env = ProxyEnv {
            http_var: http.as_ref().map_or("HTTP_PROXY", |(n, _)| n),
            https_var: https.as_ref().map_or("HTTPS_PROXY", |(n, _)| n),
            http: http.map(|(_, v)| with_scheme(&v)),
            https: https.map(|(_, v)| with_scheme(&v)),
            cgi: var("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
            ..ProxyEnv::default()
        };
        env.parse_no_proxy(no_proxy.as_deref().unwrap_or(""));
        env
    }

    fn parse_no_proxy(&mut self, list: &str) {
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                self.none = true;
                self.no_proxy.clear();
                return;
            }
            if let Some((net, bits)) = cidr(&entry) {
                self.no_proxy.push(Matcher::Cidr(net, bits));
                continue;
            }
            let (host, port) = match split_host_port(&entry) {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (entry.clone(), None),
            };
            // Go keeps the port as a string and compares it with the request's: a port that
            // is not a number matches no request.
            let port = match port {
                None => None,
                Some(p) => match p.parse::<u16>() {
                    Ok(n) => Some(n),
                    Err(_) => continue,
                },
            };
            if host.is_empty() {
                continue;
            }
            if let Ok(ip) = host.parse::<IpAddr>() {
                self.no_proxy.push(Matcher::Ip(ip, port));
                continue;
            }
            let host = host
                .strip_prefix('*')
                .filter(|h| h.starts_with('.'))
                .unwrap_or(&host);
            let (suffix, exact) = match host.strip_prefix('.') {
                Some(_) => (host.to_string(), false),
                None => (format!(".{host}"), true),
            };
            self.no_proxy.push(Matcher::Domain {
                suffix,
                port,
                exact,
            });
        }
    }

    /// The proxy URL for a request to `scheme://host:port` (`host` bare or in brackets), None
    /// to connect directly.
    pub fn proxy_url(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<Option<&str>, ProxyError> {
        let proxy = match scheme {
            "https" => self.https.as_deref(),
            "http" => {
                if self.http.is_some() && self.cgi {
                    return Err(ProxyError::Cgi);
                }
                self.http.as_deref()
            }
            _ => None,
        };
        let Some(proxy) = proxy else {
            return Ok(None);
        };
        Ok(self.use_proxy(host, port).then_some(proxy))
    }

    /// The ureq proxy for a request, None to connect directly.
    pub fn proxy_for(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<Option<ureq::Proxy>, ProxyError> {
        let Some(url) = self.proxy_url(scheme, host, port)? else {
            return Ok(None);
        };
        let var = if scheme == "https" {
            self.https_var
        } else {
            self.http_var
        };
        let unusable = |message: String| ProxyError::Unusable {
            var,
            value: url.to_string(),
            message,
        };
        if url.starts_with("socks") {
            return Err(unusable(
                "SOCKS proxies are not supported; use an HTTP(S) proxy".into(),
            ));
        }
        ureq::Proxy::new(url)
            .map(Some)
            .map_err(|e| unusable(e.to_string()))
    }

    /// Go's `useProxy`: false for loopback and for hosts `NO_PROXY` names.
    fn use_proxy(&self, host: &str, port: u16) -> bool {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host == "localhost" {
            return false;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.to_canonical().is_loopback()) {
            return false;
        }
        if self.none {
            return false;
        }
        let host = host.trim().to_ascii_lowercase();
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        !self.no_proxy.iter().any(|m| match (m, ip) {
            (Matcher::Cidr(net, bits), Some(ip)) => in_cidr(ip, *net, *bits),
            (Matcher::Ip(want, p), Some(ip)) => same_ip(*want, ip) && port_ok(p),
            (
                Matcher::Domain {
                    suffix,
                    port: p,
                    exact,
                },
                None,
            ) => (host.ends_with(suffix.as_str()) || (*exact && host == suffix[1..])) && port_ok(p),
            _ => false,
        })
    }
}

/// Go's `parseProxy`: a value without a scheme and host is taken as `http://VALUE`.
fn with_scheme(value: &str) -> String {
    match value.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && !rest.is_empty() => value.to_string(),
        _ => format!("http://{value}"),
    }
}

/// Go's `net.SplitHostPort` for `host:port` and `[v6]:port` (None when there is no port).
fn split_host_port(entry: &str) -> Option<(&str, &str)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = entry.rsplit_once(':')?;
    // A bare IPv6 address has colons of its own and no port.
    (!host.contains(':')).then_some((host, port))
}

/// `a.b.c.d/n` or `v6/n`, as Go's `net.ParseCIDR` takes them.
fn cidr(entry: &str) -> Option<(IpAddr, u32)> {
    let (net, bits) = entry.split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let width = if net.is_ipv4() { 32 } else { 128 };
    (bits <= width).then_some((net, bits))
}

/// IPv4 and its IPv4-mapped IPv6 form are the same address (Go's `IP.Equal`).
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    let (ip, net, width) = match (ip.to_canonical(), net) {
        (IpAddr::V4(i), IpAddr::V4(n)) => (u128::from(u32::from(i)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(i), IpAddr::V6(n)) => (u128::from(i), u128::from(n), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_vars(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    /// `url` split as Go's canonicalAddr does: scheme, host, port (default by scheme).
    fn pick(e: &ProxyEnv, url: &str) -> Result<Option<String>, ProxyError> {
        let (scheme, rest) = url.split_once("://").unwrap();
        let authority = rest.split('/').next().unwrap();
        let default = if scheme == "https" { 443 } else { 80 };
        let (host, port) = match split_host_port(authority) {
            Some((h, p)) => (h, p.parse().unwrap()),
            None => (authority, default),
        };
        e.proxy_url(scheme, host, port)
            .map(|p| p.map(str::to_string))
    }

    /// golang.org/x/net/http/httpproxy's `proxyForURLTests`, case by case.
    #[test]
    fn go_proxy_for_url_table() {
        // (environment, request URL, proxy Go picks)
        type Case = (
            &'static [(&'static str, &'static str)],
            &'static str,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                &[("HTTP_PROXY", "127.0.0.1:8080")],
                "http://example.com",
                Some("http://127.0.0.1:8080"),
            ),
            (
                &[("HTTP_PROXY", "cache.corp.example.com:1234")],
                "http://example.com",
                Some("http://cache.corp.example.com:1234"),
            ),
            (
                &[("HTTP_PROXY", "cache.corp.example.com")],
                "http://example.com",
                Some("http://cache.corp.example.com"),
            ),
            (
                &[("HTTP_PROXY", "https://cache.corp.example.com")],
                "http://example.com",
                Some("https://cache.corp.example.com"),
            ),
            (
                &[("HTTP_PROXY", "http://127.0.0.1:8080")],
                "http://example.com",
                Some("http://127.0.0.1:8080"),
            ),
            (
                &[("HTTP_PROXY", "https://127.0.0.1:8080")],
                "http://example.com",
                Some("https://127.0.0.1:8080"),
            ),
            (
                &[("HTTP_PROXY", "socks5://127.0.0.1")],
                "http://example.com",
                Some("socks5://127.0.0.1"),
            ),
            // Don't use the secure one for http; use it for https.
            (
                &[
                    ("HTTP_PROXY", "http.proxy.tld"),
                    ("HTTPS_PROXY", "secure.proxy.tld"),
                ],
                "http://insecure.tld/",
                Some("http://http.proxy.tld"),
            ),
            (
                &[
                    ("HTTP_PROXY", "http.proxy.tld"),
                    ("HTTPS_PROXY", "secure.proxy.tld"),
                ],
                "https://secure.tld/",
                Some("http://secure.proxy.tld"),
            ),
            (
                &[
                    ("HTTP_PROXY", "http.proxy.tld"),
                    ("HTTPS_PROXY", "https://secure.proxy.tld"),
                ],
                "https://secure.tld/",
                Some("https://secure.proxy.tld"),
            ),
            // HTTPS proxy is still used in a CGI environment.
            (
                &[
                    ("HTTPS_PROXY", "https://secure.proxy.tld"),
                    ("REQUEST_METHOD", "GET"),
                ],
                "https://secure.tld/",
                Some("https://secure.proxy.tld"),
            ),
            (&[], "http://example.com", None),
            (
                &[("NO_PROXY", "example.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                None,
            ),
            (
                &[("NO_PROXY", ".example.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                Some("http://proxy"),
            ),
            (
                &[("NO_PROXY", "ample.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                Some("http://proxy"),
            ),
            (
                &[("NO_PROXY", "example.com"), ("HTTP_PROXY", "proxy")],
                "http://foo.example.com/",
                None,
            ),
            (
                &[("NO_PROXY", ".foo.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                Some("http://proxy"),
            ),
            // Lower-case names, upper case first; an https request never takes HTTP_PROXY.
            (
                &[("http_proxy", "lower:1")],
                "http://example.com",
                Some("http://lower:1"),
            ),
            (
                &[("HTTP_PROXY", "upper:1"), ("http_proxy", "lower:1")],
                "http://example.com",
                Some("http://upper:1"),
            ),
            (&[("HTTP_PROXY", "p:1")], "https://example.com", None),
            (&[("ALL_PROXY", "p:1")], "https://example.com", None),
            (
                &[("HTTP_PROXY", "p:1"), ("no_proxy", "example.com")],
                "http://example.com",
                None,
            ),
        ];
        for (vars, url, want) in cases {
            let got = pick(&env(vars), url).unwrap();
            assert_eq!(got.as_deref(), *want, "{vars:?} {url}");
        }
        // Issue 16405: HTTP_PROXY in a CGI environment is an error.
        let cgi = env(&[
            ("HTTP_PROXY", "http://10.1.2.3:8080"),
            ("REQUEST_METHOD", "GET"),
        ]);
        assert!(matches!(
            pick(&cgi, "http://example.com"),
            Err(ProxyError::Cgi)
        ));
    }

    /// golang.org/x/net/http/httpproxy's `UseProxyTests` (requests on port 80).
    #[test]
    fn go_use_proxy_table() {
        let no_proxy = "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, \
                        192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, \
                        [2001:db8::52:0:3]:80, 2002:db8:a::45/64";
        let cases = [
            ("localhost", false),
            ("127.0.0.1", false),
            ("127.0.0.2", false),
            ("[::1]", false),
            ("[::2]", true),
            ("192.168.1.1", false),
            ("192.168.1.2", true),
            ("192.168.1.3", false),
            ("192.168.1.4", true),
            ("10.0.0.2", false),
            ("[2001:db8::52:0:1]", false),
            ("[2001:db8::52:0:2]", true),
            ("[2001:db8::52:0:3]", false),
            ("[2002:db8:a::123]", false),
            ("[fe80::424b:c8be:1643:a1b6]", true),
            ("barbaz.net", true),
            ("www.barbaz.net", false),
            ("foobar.com", false),
            ("www.foobar.com", false),
            ("foofoobar.com", true),
            ("baz.com", true),
            ("localhost.net", true),
            ("local.localhost", true),
            ("barbarbaz.net", true),
            ("wildcard.io", true),
            ("nested.wildcard.io", false),
            ("awildcard.io", true),
        ];
        let e = env(&[("NO_PROXY", no_proxy)]);
        let all = env(&[("NO_PROXY", "*")]);
        for (host, want) in cases {
            assert_eq!(e.use_proxy(host, 80), want, "{host}");
            // TestAllNoProxy: `*` means never.
            assert!(!all.use_proxy(host, 80), "{host} with *");
        }
        // TestInvalidNoProxy: a malformed entry is ignored.
        assert!(env(&[("NO_PROXY", ":1")]).use_proxy("example.com", 80));
    }

    #[test]
    fn ureq_proxy_and_errors() {
        let e = env(&[
            ("HTTPS_PROXY", "proxy.corp:3128"),
            ("HTTP_PROXY", "socks5://s:1080"),
        ]);
        let p = e.proxy_for("https", "example.com", 443).unwrap().unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 3128));
        let err = e
            .proxy_for("http", "example.com", 80)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTP_PROXY=socks5://s:1080") && err.contains("SOCKS"),
            "{err}"
        );
        assert!(e.proxy_for("https", "127.0.0.1", 5000).unwrap().is_none());
    }
}
