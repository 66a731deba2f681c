//! Which proxy a download goes through: `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` (and lower
//! case), as Go's `http.ProxyFromEnvironment` reads them; loopback never proxied.

use super::HttpError;

/// The proxy for a request, as Go's `http.ProxyFromEnvironment` picks it: `HTTPS_PROXY` for
/// https, `HTTP_PROXY` for http (upper case first, then lower case), none for localhost and
/// loopback addresses or hosts that `NO_PROXY` names.
pub(super) fn proxy_for(
    scheme: &str,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ureq::Proxy>, HttpError> {
    let any = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
    let (var, value) = if scheme == "https" {
        ("HTTPS_PROXY", any(&["HTTPS_PROXY", "https_proxy"]))
    } else {
        ("HTTP_PROXY", any(&["HTTP_PROXY", "http_proxy"]))
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !use_proxy(
        host,
        any(&["NO_PROXY", "no_proxy"]).as_deref().unwrap_or(""),
    ) {
        return Ok(None);
    }
    ureq::Proxy::new(&value)
        .map(Some)
        .map_err(|e| HttpError::Proxy {
            var,
            value,
            source: Box::new(e),
        })
}

/// Go's `httpproxy` rules: loopback never; `*` matches all; an IP or CIDR matches addresses;
/// `example.com` matches it and its subdomains, `.example.com` only subdomains; `:port` ignored
/// here (one request, one port: an entry with a port still matches its host).
fn use_proxy(host: &str, no_proxy: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    for entry in no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let entry = entry.to_ascii_lowercase();
        if entry == "*" {
            return false;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Some(ip), Ok(net), Ok(bits)) = (ip, net.parse(), bits.parse::<u32>()) {
                if cidr_contains(net, bits, ip) {
                    return false;
                }
            }
            continue;
        }
        // Strip a port: `host:port`, `[v6]:port`; a bare v6 address has colons of its own.
        let name = if let Ok(e) = entry.parse::<std::net::IpAddr>() {
            if ip == Some(e) {
                return false;
            }
            continue;
        } else if let Some(rest) = entry.strip_prefix('[') {
            rest.split(']').next().unwrap_or("").to_string()
        } else {
            entry
                .rsplit_once(':')
                .map_or(entry.clone(), |(h, _)| h.to_string())
        };
        if let Ok(e) = name.parse::<std::net::IpAddr>() {
            if ip == Some(e) {
                return false;
            }
            continue;
        }
        if ip.is_some() {
            continue;
        }
        let name = name.strip_prefix('*').unwrap_or(&name);
        if let Some(suffix) = name.strip_prefix('.') {
            if host.ends_with(&format!(".{suffix}")) {
                return false;
            }
        } else if host == name || host.ends_with(&format!(".{name}")) {
            return false;
        }
    }
    true
}

fn cidr_contains(net: std::net::IpAddr, bits: u32, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr::{V4, V6};
    let (net, ip, width) = match (net, ip) {
        (V4(n), V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
        (V6(n), V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (net >> shift) == (ip >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_as_go_picks_them() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("http_proxy", "proxy.corp:8080"),
            ("NO_PROXY", "internal.corp,.svc,10.0.0.0/8,192.168.1.7"),
        ]);
        let p = proxy_for("https", "example.com", &e).unwrap().unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 3128));
        let p = proxy_for("http", "example.com", &e).unwrap().unwrap();
        assert_eq!(p.port(), 8080);
        for direct in [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "internal.corp",
            "a.internal.corp",
            "x.svc",
            "10.1.2.3",
            "192.168.1.7",
        ] {
            assert!(
                proxy_for("https", direct, &e).unwrap().is_none(),
                "{direct}"
            );
        }
        assert!(proxy_for("https", "svc", &e).unwrap().is_some());
        assert!(proxy_for("https", "192.168.1.8", &e).unwrap().is_some());
        assert!(proxy_for("https", "notinternal.corp", &e)
            .unwrap()
            .is_some());
        let none = env(&[]);
        assert!(proxy_for("https", "example.com", &none).unwrap().is_none());
        let all = env(&[("HTTP_PROXY", "http://p:1"), ("no_proxy", "*")]);
        assert!(proxy_for("http", "example.com", &all).unwrap().is_none());
    }
}
