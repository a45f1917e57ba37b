//! HTTPS served directly: the certificate chain and private key come from PEM files
//! (`SHIPLOG_TLS_CERT`, `SHIPLOG_TLS_KEY`) and are read again on SIGHUP, so a renewed
//! certificate is picked up without a restart and without dropping a connection.
//!
//! rustls with the *ring* provider (already in the tree through the hook sender): no OpenSSL on
//! the serving side. Handshakes ask [`Certificate`] for the chain in use; a reload swaps it, and
//! a reload that fails (a half-written file, a key that does not match) keeps the previous one
//! and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the PEM files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (`fullchain.pem`).
    pub cert: PathBuf,
    /// The private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The certificate handshakes are answered with, replaceable while serving.
#[derive(Debug)]
pub struct Certificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Reads both files; fails with a message naming the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again and serves the new certificate from the next handshake on; on
    /// an error the previous certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = Arc::new(read(&self.files, &self.provider)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// The rustls configuration of the listener: TLS 1.2 and 1.3, HTTP/1.1.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot configure TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(current.clone())
    }
}

fn read(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let shown = |path: &Path| path.display().to_string();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("SHIPLOG_TLS_CERT {}: {e}", shown(&files.cert)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("SHIPLOG_TLS_CERT {}: {e}", shown(&files.cert)))?;
    if chain.is_empty() {
        return Err(format!(
            "SHIPLOG_TLS_CERT {}: no certificate in it (expected PEM blocks \
             \"BEGIN CERTIFICATE\", the server's first)",
            shown(&files.cert)
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "SHIPLOG_TLS_KEY {}: {e} (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)",
            shown(&files.key)
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "SHIPLOG_TLS_KEY {} does not go with SHIPLOG_TLS_CERT {}: {e}",
            shown(&files.key),
            shown(&files.cert)
        )
    })
}

/// Listens for SIGHUP from now on: call it before the server says it is listening, so that a
/// SIGHUP sent as soon as it does is caught rather than ending the process.
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP: the TLS certificate will not be reloaded");
            None
        }
    }
}

/// Reloads `certificate` at every SIGHUP (`systemctl reload shiplog`). Without TLS a SIGHUP
/// is logged and otherwise ignored, rather than ending the process as it would by default.
pub async fn reload_on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    certificate: Option<Arc<Certificate>>,
) {
    while hangups.recv().await.is_some() {
        match &certificate {
            None => tracing::info!("SIGHUP: nothing to reload (no SHIPLOG_TLS_CERT)"),
            Some(certificate) => match certificate.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate and key read again"),
                Err(error) => tracing::error!(
                    %error,
                    "SIGHUP: TLS certificate not reloaded; still serving the previous one"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        };
        let missing = Certificate::load(files.clone()).unwrap_err();
        assert!(missing.contains("SHIPLOG_TLS_CERT"), "{missing}");
        assert!(missing.contains("cert.pem"), "{missing}");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        std::fs::write(&key, "").unwrap();
        let empty = Certificate::load(files).unwrap_err();
        assert!(empty.contains("no certificate"), "{empty}");
    }
}
