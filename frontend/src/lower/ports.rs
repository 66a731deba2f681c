//! EXPOSE port specs, as docker's `nat.ParsePortSpec` reads them (`80`, `8000-8002/udp`,
//! `[ip:]host:container`): each becomes the `port/proto` keys of the image config's
//! ExposedPorts. Knows nothing of stages or of the graph.

/// EXPOSE port specs (`80`, `8000-8002/udp`, `[ip:]host:container`) -> `port/proto` keys.
pub(super) fn parse_port_spec(raw: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.len() {
        1 => ("".to_string(), "", parts[0]),
        2 => ("".to_string(), parts[0], parts[1]),
        n => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(format!("no port specified: {container}<empty>"));
    }
    let proto = match proto.to_lowercase().as_str() {
        "" => "tcp".to_string(),
        p @ ("tcp" | "udp" | "sctp") => p.to_string(),
        p => return Err(format!("invalid proto: {p}")),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    let (start, end) = port_range(port).map_err(|_| format!("invalid containerPort: {port}"))?;
    if !host.is_empty() {
        let (hs, he) = port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?;
        if end - start != he - hs && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {port} and {host}"
            ));
        }
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn port_range(s: &str) -> Result<(u32, u32), ()> {
    let parse = |x: &str| x.parse::<u16>().map(u32::from).map_err(|_| ());
    match s.split_once('-') {
        None => parse(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                Err(())
            } else {
                Ok((a, b))
            }
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
        assert_eq!(parse_port_spec("80/xyz").unwrap_err(), "invalid proto: xyz");
        assert_eq!(
            parse_port_spec("99999").unwrap_err(),
            "invalid containerPort: 99999"
        );
    }
}
