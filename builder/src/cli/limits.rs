//! `--shm-size` and `--ulimit` as docker and buildx read them (go-units' RAMInBytes and
//! ParseUlimit), for every RUN of the build.

use super::error::CliError;
use graph::ULIMIT_NAMES;

/// `--shm-size SIZE`: bytes, or a number with a binary unit (`64m`, `1g`, `512MiB`, `1.5g`).
pub fn shm_size(value: &str) -> Result<u64, CliError> {
    let bad = || {
        CliError::msg(format!("invalid --shm-size \"{value}\": not a size"))
            .with_help("give bytes or a number with a unit: --shm-size 128m, --shm-size 1g")
    };
    let v = value.trim();
    let digits_end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let bytes = number * 2f64.powi(shift);
    if !bytes.is_finite() || bytes <= 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; -1 is unlimited).
pub fn ulimit(value: &str) -> Result<graph::Ulimit, CliError> {
    let help = "write --ulimit NAME=SOFT[:HARD], e.g. --ulimit nofile=1024:4096";
    let (name, limits) = value.split_once('=').ok_or_else(|| {
        CliError::msg(format!("invalid --ulimit \"{value}\": no '='")).with_help(help)
    })?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(CliError::msg(format!(
            "invalid --ulimit \"{value}\": invalid ulimit type: {name}"
        ))
        .with_help(format!("the types are {}", ULIMIT_NAMES.join(", "))));
    }
    let number = |s: &str| {
        s.parse::<i64>().ok().filter(|&n| n >= -1).ok_or_else(|| {
            CliError::msg(format!(
                "invalid --ulimit \"{value}\": \"{s}\" is not a number (-1 is unlimited)"
            ))
            .with_help(help)
        })
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => {
            let n = number(limits)?;
            (n, n)
        }
    };
    let unlimited = |n: i64| if n == -1 { i64::MAX } else { n };
    if unlimited(soft) > unlimited(hard) {
        return Err(CliError::msg(format!(
            "invalid --ulimit \"{value}\": ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(graph::Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(shm_size("134217728").unwrap(), 134_217_728);
        assert_eq!(shm_size("128m").unwrap(), 134_217_728);
        assert_eq!(shm_size("128MiB").unwrap(), 134_217_728);
        assert_eq!(shm_size("1g").unwrap(), 1 << 30);
        assert_eq!(shm_size("1.5k").unwrap(), 1536);
        assert_eq!(shm_size("2t").unwrap(), 2 << 40);
        for bad in ["", "m", "12x", "-1", "0", "1.2.3m"] {
            let e = shm_size(bad).unwrap_err().to_string();
            assert!(e.contains("invalid --shm-size"), "{bad}: {e}");
        }
    }

    #[test]
    fn ulimits_as_docker_reads_them() {
        let u = ulimit("nofile=1062:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1062, 2048));
        let u = ulimit("nproc=100").unwrap();
        assert_eq!((u.soft, u.hard), (100, 100));
        let u = ulimit("core=0:-1").unwrap();
        assert_eq!((u.soft, u.hard), (0, -1));
        let e = |v: &str| ulimit(v).unwrap_err().to_string();
        assert!(e("nofiles=1").contains("invalid ulimit type: nofiles"));
        assert!(e("nofile").contains("no '='"));
        assert!(e("nofile=a").contains("\"a\" is not a number"));
        assert!(e("nofile=10:5").contains("soft limit must be less than or equal to hard limit"));
    }
}
