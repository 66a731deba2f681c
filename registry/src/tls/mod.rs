//! TLS for one registry host, as docker (Go's crypto/tls and x509) gives it: the system roots
//! plus the host's own CA files (`certs.d/HOST[:PORT]/*.crt`, `--registry-ca`, the config's
//! `ca`), a server certificate that is itself one of those files accepted as the host's
//! certificate (`verifier.rs`), the client certificate of `certs.d/HOST[:PORT]/*.cert` with its
//! `*.key` or of the config's `keypair` for mutual TLS (picked as Go picks among several:
//! `client_cert.rs`), and no verification at all only for
//! registries configured as insecure. The result is a rustls `ClientConfig`; `connector.rs`
//! puts it under ureq. Knows nothing of HTTP or of the distribution API.

mod client_cert;
mod connector;
mod der;
mod verifier;

pub(crate) use connector::TlsConnector;

use crate::config::{KeyPair, RegistryConfig};
use crate::RegistryError;
use client_cert::ClientCertificates;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use verifier::{AnyCertificate, HostVerifier};

/// The system CA bundle Debian (and most distributions) ship.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The rustls configuration for connections to `registry` (`host[:port]`).
pub(crate) fn client_config(
    config: &RegistryConfig,
    registry: &str,
) -> Result<Arc<ClientConfig>, RegistryError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| tls_error(registry, e.to_string(), "this is a bug in pallet".into()))?
        .dangerous();
    let builder = if config.skip_verify(registry) {
        builder.with_custom_certificate_verifier(Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }))
    } else {
        let pinned = host_certificates(config, registry)?;
        let mut roots = RootCertStore::empty();
        match system_roots() {
            Some(system) => {
                roots.add_parsable_certificates(system.iter().cloned());
            }
            // No system bundle: the registry's own CA only (a private registry), or, without
            // one, the Mozilla roots ureq ships.
            None if pinned.is_empty() => {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            None => {}
        }
        roots.add_parsable_certificates(pinned.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| {
                tls_error(
                    registry,
                    format!("no usable CA certificate: {e:?}"),
                    format!(
                        "put the registry's CA in {}/{registry}/ca.crt",
                        config.certs_dir.display()
                    ),
                )
            })?;
        builder.with_custom_certificate_verifier(Arc::new(HostVerifier { webpki, pinned }))
    };
    let keypairs = config
        .client_keypairs(registry)
        .map_err(|(message, hint)| tls_error(registry, message, hint))?;
    if keypairs.is_empty() {
        return Ok(Arc::new(builder.with_no_client_auth()));
    }
    let mut keys = Vec::new();
    for pair in &keypairs {
        let (chain, key) = load_keypair(registry, pair)?;
        let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
            tls_error(
                registry,
                format!(
                    "client certificate {} with key {}: {e}",
                    pair.cert.display(),
                    pair.key.display()
                ),
                "the key must be the certificate's private key (PEM)".into(),
            )
        })?;
        keys.push(Arc::new(certified));
    }
    let resolver = Arc::new(ClientCertificates::new(keys));
    Ok(Arc::new(builder.with_client_cert_resolver(resolver)))
}

fn tls_error(registry: &str, message: String, hint: String) -> RegistryError {
    RegistryError::Tls {
        registry: registry.to_string(),
        message,
        hint,
    }
}

/// Every certificate in the host's CA files, in order; an unreadable file or one without a
/// certificate is an error that names it.
fn host_certificates(
    config: &RegistryConfig,
    registry: &str,
) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let mut certs = Vec::new();
    for file in config.ca_files_for(registry) {
        let found = pem_certificates(&file).map_err(|message| {
            tls_error(
                registry,
                format!("CA file {}: {message}", file.display()),
                "give a PEM file with the registry's CA certificate".into(),
            )
        })?;
        certs.extend(found);
    }
    Ok(certs)
}

/// The certificates of a PEM file; an error when it cannot be read or holds none.
fn pem_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(file).map_err(|e| e.to_string())?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// A client certificate chain and its private key from PEM files.
fn load_keypair(
    registry: &str,
    pair: &KeyPair,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), RegistryError> {
    let chain = pem_certificates(&pair.cert).map_err(|message| {
        tls_error(
            registry,
            format!("client certificate {}: {message}", pair.cert.display()),
            "give the client certificate as PEM".into(),
        )
    })?;
    let bad_key = |message: String| {
        tls_error(
            registry,
            format!("client key {}: {message}", pair.key.display()),
            "give the client certificate's private key as PEM (PKCS#1, PKCS#8 or SEC1)".into(),
        )
    };
    let pem = std::fs::read(&pair.key).map_err(|e| bad_key(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => bad_key("no PEM private key in it".into()),
        e => bad_key(format!("not a PEM private key: {e}")),
    })?;
    Ok((chain, key))
}

/// The system CA bundle, parsed once; None when the file is missing or empty.
fn system_roots() -> Option<&'static Vec<CertificateDer<'static>>> {
    static ROOTS: OnceLock<Option<Vec<CertificateDer<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| pem_certificates(Path::new(SYSTEM_BUNDLE)).ok())
        .as_ref()
}
