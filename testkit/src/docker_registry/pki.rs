//! The TLS material of `Config::tls`: a CA and a server certificate for 127.0.0.1 and
//! localhost, made with the openssl CLI (P-256 keys: fast to make); of `Config::self_signed`:
//! the certificate docker's documentation makes; of `Config::client_cert`: a client CA and a
//! client certificate it signed.

use crate::run::ok_bytes as run;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) struct Pki {
    pub(super) ca_cert: PathBuf,
    pub(super) server_cert: PathBuf,
    pub(super) server_key: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1/localhost, in `dir`.
pub(super) fn make_pki(dir: &Path) -> Pki {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt"))
        .args(["-days", "2", "-subj", "/CN=pallet test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"))
        .args(["-subj", "/CN=localhost"]));
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-in"])
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .args(["-CAcreateserial", "-days", "2", "-extfile"])
        .arg(p("server.ext"))
        .arg("-out")
        .arg(p("server.crt")));
    Pki {
        ca_cert: p("ca.crt"),
        server_cert: p("server.crt"),
        server_key: p("server.key"),
    }
}

/// docker's documented certificate for a private registry ("Use self-signed certificates",
/// docs.docker.com/registry/insecure): one `openssl req -x509` line, RSA 4096, CA:TRUE (openssl's
/// default v3_ca extensions), self-signed, SAN IP:127.0.0.1. The subject is given on the
/// command line instead of at the prompt. Returns (domain.crt, domain.key).
pub(super) fn docker_documented(dir: &Path) -> (PathBuf, PathBuf) {
    let (crt, key) = (dir.join("domain.crt"), dir.join("domain.key"));
    run(Command::new("openssl")
        .args(["req", "-newkey", "rsa:4096", "-nodes", "-sha256", "-keyout"])
        .arg(&key)
        .args(["-x509", "-days", "365", "-out"])
        .arg(&crt)
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-subj", "/CN=127.0.0.1"]));
    (crt, key)
}

/// A client CA and a client certificate (clientAuth) it signed: (ca.crt, client.cert,
/// client.key), the names docker's certs.d uses.
pub(super) fn client_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("client-ca.key"))
        .arg("-out")
        .arg(p("client-ca.crt"))
        .args(["-days", "2", "-subj", "/CN=pallet test client CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("client.key"))
        .arg("-out")
        .arg(p("client.csr"))
        .args(["-subj", "/CN=pallet test client"]));
    std::fs::write(
        p("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-in"])
        .arg(p("client.csr"))
        .arg("-CA")
        .arg(p("client-ca.crt"))
        .arg("-CAkey")
        .arg(p("client-ca.key"))
        .args(["-CAcreateserial", "-days", "2", "-extfile"])
        .arg(p("client.ext"))
        .arg("-out")
        .arg(p("client.cert")));
    (p("client-ca.crt"), p("client.cert"), p("client.key"))
}
