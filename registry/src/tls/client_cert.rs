//! Which client certificate to send, as Go's crypto/tls picks one from several (docker hands it
//! every `*.cert`/`*.key` pair of the host's certs.d directory): the first, in order, whose key
//! can sign with a scheme the server accepts and, when the server names the authorities it
//! accepts, whose chain has a certificate issued by one of them. None fits: none is sent.

use super::der;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use std::sync::Arc;

/// The host's client certificates, in order.
#[derive(Debug)]
pub(super) struct ClientCertificates {
    /// Each key with the issuer Names (whole DER) of its chain's certificates.
    pub(super) keys: Vec<(Arc<CertifiedKey>, Vec<Vec<u8>>)>,
}

impl ClientCertificates {
    pub(super) fn new(keys: Vec<Arc<CertifiedKey>>) -> ClientCertificates {
        let keys = keys
            .into_iter()
            .map(|key| {
                let issuers = key
                    .cert
                    .iter()
                    .filter_map(|c| der::issuer(c.as_ref()).map(<[u8]>::to_vec))
                    .collect();
                (key, issuers)
            })
            .collect();
        ClientCertificates { keys }
    }
}

impl ResolvesClientCert for ClientCertificates {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.keys
            .iter()
            .find(|(key, issuers)| {
                key.key.choose_scheme(sigschemes).is_some()
                    && (root_hint_subjects.is_empty()
                        || issuers.iter().any(|issuer| {
                            root_hint_subjects.iter().any(|hint| accepts(hint, issuer))
                        }))
            })
            .map(|(key, _)| key.clone())
    }

    fn has_certs(&self) -> bool {
        !self.keys.is_empty()
    }
}

/// A server's hint names `issuer` (whole DER), with or without the Name's outer SEQUENCE.
fn accepts(hint: &[u8], issuer: &[u8]) -> bool {
    hint == issuer || (!hint.is_empty() && issuer.ends_with(hint) && issuer.len() - hint.len() <= 4)
}
