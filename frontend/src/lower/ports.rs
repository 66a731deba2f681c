//! EXPOSE port specs, as docker's `nat.ParsePortSpec` reads them (`80`, `8000-8002/udp`,
//! `[ip:]host:container`): each becomes the `port/proto` keys of the image config's
//! ExposedPorts. Knows nothing of stages or of the graph.

/// A port spec docker refuses (its texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// The container part, without a port before its `/proto`.
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    /// Not tcp, udp or sctp (lower-cased).
    #[error("invalid proto: {0}")]
    Proto(String),
    #[error("invalid IP address: {0}")]
    Ip(String),
    /// Not a port or an ascending `start-end` range of them.
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    /// A host range whose length differs from the container range's.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    Ranges { container: String, host: String },
}

/// EXPOSE port specs (`80`, `8000-8002/udp`, `[ip:]host:container`) -> `port/proto` keys.
pub(super) fn parse_port_spec(raw: &str) -> Result<Vec<String>, PortSpecError> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.len() {
        1 => ("".to_string(), "", parts[0]),
        2 => ("".to_string(), parts[0], parts[1]),
        n => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(PortSpecError::NoPort(container.to_string()));
    }
    let proto = match proto.to_lowercase().as_str() {
        "" => "tcp".to_string(),
        p @ ("tcp" | "udp" | "sctp") => p.to_string(),
        p => return Err(PortSpecError::Proto(p.to_string())),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(PortSpecError::Ip(ip.to_string()));
    }
    let (start, end) =
        port_range(port).ok_or_else(|| PortSpecError::ContainerPort(port.to_string()))?;
    if !host.is_empty() {
        let (hs, he) = port_range(host).ok_or_else(|| PortSpecError::HostPort(host.to_string()))?;
        if end - start != he - hs && end != start {
            return Err(PortSpecError::Ranges {
                container: port.to_string(),
                host: host.to_string(),
            });
        }
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `port` or `start-end` (ascending), as an inclusive range.
fn port_range(s: &str) -> Option<(u32, u32)> {
    let parse = |x: &str| x.parse::<u16>().ok().map(u32::from);
    match s.split_once('-') {
        None => parse(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port_spec("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_port_spec("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            parse_port_spec("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(
            parse_port_spec("127.0.0.1:8080:80").unwrap(),
            vec!["80/tcp"]
        );
        assert_eq!(
            parse_port_spec("80/xyz").unwrap_err().to_string(),
            "invalid proto: xyz"
        );
        assert_eq!(
            parse_port_spec("99999").unwrap_err(),
            PortSpecError::ContainerPort("99999".into())
        );
    }
}
