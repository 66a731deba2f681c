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
