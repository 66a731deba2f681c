//! Server certificate verification: webpki's, plus the one thing Go's x509 (docker, skopeo,
//! buildah) accepts and webpki refuses: a server certificate that is itself one of the
//! certificates configured for that host (certs.d or `--registry-ca`). docker's documentation
//! makes such a certificate with `openssl req -x509` (CA:TRUE, self-signed) and copies it to
//! `certs.d/HOST:PORT/ca.crt`; webpki says `CaUsedAsEndEntity`. Go finds the leaf in its root
//! pool and takes the one-certificate chain.
//!
//! Nothing else is loosened. The pinned path is taken only after webpki refused, only when the
//! presented end-entity certificate is byte-for-byte a configured one, and it still checks the
//! validity period, the name (webpki's own matcher), the extended key usage (serverAuth when
//! the extension is present) and, as every handshake, the handshake signatures with the
//! certificate's key. Every other failure keeps webpki's error.

use super::der;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use std::sync::Arc;

/// webpki's verifier, and the host's own certificates accepted as its end-entity certificate.
#[derive(Debug)]
pub(super) struct HostVerifier {
    pub(super) webpki: Arc<WebPkiServerVerifier>,
    /// The certificates configured for this host (DER).
    pub(super) pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for HostVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Err(refused);
        }
        verify_pinned(end_entity, server_name, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The checks a pinned certificate still passes: validity period, name, extended key usage.
fn verify_pinned(
    cert: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let bad = || Error::InvalidCertificate(CertificateError::BadEncoding);
    let facts = der::read(cert.as_ref()).ok_or_else(bad)?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < facts.not_before {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > facts.not_after {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    let parsed = ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&parsed, name)?;
    if let Some(purposes) = &facts.eku {
        if !purposes.iter().any(|p| p == der::SERVER_AUTH) {
            return Err(Error::InvalidCertificate(CertificateError::InvalidPurpose));
        }
    }
    Ok(())
}

/// For registries listed as insecure: any certificate, as docker does for them. The handshake
/// signatures are still checked against the presented certificate's key.
#[derive(Debug)]
pub(super) struct AnyCertificate {
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::RootCertStore;
    use std::process::Command;
    use testkit::{require, Need};

    /// A self-signed certificate as docker's documentation makes it (CA:TRUE), with `extra`
    /// openssl arguments (P-256 instead of RSA 4096: fast).
    fn self_signed(dir: &std::path::Path, name: &str, extra: &[&str]) -> CertificateDer<'static> {
        let crt = dir.join(format!("{name}.crt"));
        testkit::run::ok_bytes(
            Command::new("openssl")
                .args([
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args(["-nodes", "-sha256", "-keyout"])
                .arg(dir.join(format!("{name}.key")))
                .args(["-x509", "-days", "1", "-out"])
                .arg(&crt)
                .args(["-subj", "/CN=127.0.0.1"])
                .args(extra),
        );
        CertificateDer::from_pem_file(&crt).unwrap()
    }

    fn verifier(pinned: Vec<CertificateDer<'static>>) -> HostVerifier {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(pinned.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        HostVerifier { webpki, pinned }
    }

    #[test]
    fn a_pinned_certificate_is_accepted_and_still_checked() {
        if !require("pinned certificate checks", &[Need::Tool("openssl")]) {
            return;
        }
        let tmp = testkit::files::temp_dir("pallet-pinned");
        let san = ["-addext", "subjectAltName=IP:127.0.0.1"];
        let cert = self_signed(tmp.path(), "docs", &san);
        let v = verifier(vec![cert.clone()]);
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let now = UnixTime::now();
        let check = |v: &HostVerifier, cert: &CertificateDer<'_>, name: &ServerName<'_>, now| {
            v.verify_server_cert(cert, &[], name, &[], now)
        };

        // webpki alone refuses it; the host's own certificate is accepted.
        let alone = v.webpki.verify_server_cert(&cert, &[], &name, &[], now);
        assert!(
            format!("{alone:?}").contains("CaUsedAsEndEntity"),
            "{alone:?}"
        );
        check(&v, &cert, &name, now).unwrap();

        // Still checked: the name, the validity period, the extended key usage.
        let other = ServerName::try_from("10.0.0.1").unwrap();
        let err = check(&v, &cert, &other, now).unwrap_err();
        assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");
        let later =
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.as_secs() + 3 * 86_400));
        let err = check(&v, &cert, &name, later).unwrap_err();
        assert!(format!("{err:?}").contains("Expired"), "{err:?}");
        let earlier =
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.as_secs() - 86_400));
        let err = check(&v, &cert, &name, earlier).unwrap_err();
        assert!(format!("{err:?}").contains("NotValidYet"), "{err:?}");
        let client_only = self_signed(
            tmp.path(),
            "client-only",
            &[san[0], san[1], "-addext", "extendedKeyUsage=clientAuth"],
        );
        let v2 = verifier(vec![client_only.clone()]);
        let err = check(&v2, &client_only, &name, now).unwrap_err();
        assert!(format!("{err:?}").contains("InvalidPurpose"), "{err:?}");

        // A certificate that is not the configured one keeps webpki's error.
        let stranger = self_signed(tmp.path(), "stranger", &san);
        let err = check(&v, &stranger, &name, now).unwrap_err();
        let webpki = v.webpki.verify_server_cert(&stranger, &[], &name, &[], now);
        assert_eq!(
            format!("{:?}", Err::<(), _>(err)),
            format!("{:?}", webpki.map(|_| ()))
        );
    }
}
