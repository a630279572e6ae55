//! The loopback servers' TLS identity: a throw-away self-signed certificate for `localhost` and
//! `127.0.0.1`, generated per server with `rcgen`, and the rustls configurations (ring provider)
//! on both sides of it. A client trusts the simulator by adding [`TestCert::cert_der`] as its only
//! root; [`TestCert::client_config`] does exactly that.

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::sync::Arc;

/// The names the certificate is valid for: DNS `localhost` and IP `127.0.0.1`.
pub const CERT_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A generated self-signed certificate and its private key.
#[derive(Clone)]
pub struct TestCert {
    /// The certificate, DER. Clients add it as their (only) trust root.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM (`BEGIN CERTIFICATE`).
    pub cert_pem: String,
    /// The private key, PKCS#8 DER (ECDSA P-256).
    pub key_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for TestCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCert").field("cert_der", &format_args!("{} bytes", self.cert_der.len())).finish()
    }
}

/// rustls' ring crypto provider, the one every Strike TLS endpoint uses.
pub fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl TestCert {
    /// Generates a fresh key pair and a self-signed certificate for [`CERT_NAMES`].
    pub fn generate() -> io::Result<TestCert> {
        let names: Vec<String> = CERT_NAMES.iter().map(|s| s.to_string()).collect();
        let ck =
            rcgen::generate_simple_self_signed(names).map_err(|e| tls_err("generating the test certificate", e))?;
        Ok(TestCert {
            cert_der: ck.cert.der().to_vec(),
            cert_pem: ck.cert.pem(),
            key_der: ck.signing_key.serialize_der(),
            key_pem: ck.signing_key.serialize_pem(),
        })
    }

    /// A rustls server configuration presenting this certificate (TLS 1.2 and 1.3, no client
    /// certificates).
    pub fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let cfg = ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("TLS protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(self.cert_der.clone())], key)
            .map_err(|e| tls_err("TLS server certificate", e))?;
        Ok(Arc::new(cfg))
    }

    /// A rustls client configuration whose only trust root is this certificate (for tests and
    /// tools talking to the simulator; connect with server name `localhost`).
    pub fn client_config(&self) -> io::Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(self.cert_der.clone())).map_err(|e| tls_err("TLS trust root", e))?;
        let cfg = ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("TLS protocol versions", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_usable_certificates() {
        let a = TestCert::generate().unwrap();
        let b = TestCert::generate().unwrap();
        assert_ne!(a.cert_der, b.cert_der);
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.key_pem.contains("PRIVATE KEY"));
        a.server_config().unwrap();
        a.client_config().unwrap();
    }
}
