//! The per-run certificate authority and the API servers' certificates.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::Error;

/// A self-signed CA made at start-up; its PEM goes into every kubeconfig.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM-encoded.
    pub pem: String,
}

impl Ca {
    /// Generates a fresh CA.
    pub fn generate() -> Result<Self, Error> {
        let key = KeyPair::generate().map_err(Error::tls)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(Error::tls)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kubesim CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(Error::tls)?;
        Ok(Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A TLS acceptor whose certificate is valid for `127.0.0.1` and `localhost`, signed by
    /// this CA, offering HTTP/2 and HTTP/1.1.
    pub fn acceptor(&self) -> Result<TlsAcceptor, Error> {
        let key = KeyPair::generate().map_err(Error::tls)?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(Error::tls)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let cert = params.signed_by(&key, &self.issuer).map_err(Error::tls)?;
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::tls)?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(Error::tls)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
