//! TLS for Postgres connections: a rustls connector for `tokio-postgres` that checks the
//! server as the profile's `sslmode` asks (see [`crate::config`]).
//!
//! - `prefer` and `require` encrypt without checking the certificate, as libpq does. The
//!   handshake signature is still checked, so the server proves it holds the key of the
//!   certificate it sent, and SCRAM authentication binds to that certificate
//!   (`tls-server-end-point` channel binding), which stops a man in the middle from relaying
//!   the password exchange.
//! - `verify-ca` requires a chain to a trusted CA (`sslrootcert`, else the system's CAs).
//! - `verify-full` also requires the certificate to name the profile's `host`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::Digest;
use sluice_connector_api::ConnectorError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::config::{ConnectionConfig, SslMode};

/// A TLS failure while connecting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The server's certificate, or the TLS negotiation itself, was refused.
    #[error("{0}")]
    Refused(String),
    /// The connection failed during the handshake.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The crypto provider: aws-lc-rs, the one the rest of the program's TLS uses.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The system's trusted CAs, loaded once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "cannot load a system CA certificate");
            }
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, ignored, "loaded the system CA certificates");
            Arc::new(store)
        })
        .clone()
}

/// The rustls settings for `config`'s `sslmode` and CA certificates.
pub fn client_config(config: &ConnectionConfig) -> Result<ClientConfig, ConnectorError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match config.ssl_mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(NoCertificateCheck {
            algorithms: provider.signature_verification_algorithms,
        }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = if config.root_certs.is_empty() {
                system_roots()
            } else {
                let mut store = RootCertStore::empty();
                for cert in &config.root_certs {
                    // The certificates were checked when the profile was read.
                    store.add(cert.clone()).map_err(|e| {
                        ConnectorError::invalid_config(format!(
                            "profileProperties.sslrootcert has an invalid certificate: {e}"
                        ))
                    })?;
                }
                Arc::new(store)
            };
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| {
                    ConnectorError::invalid_config(format!(
                        "sslmode {} needs trusted CA certificates: set \
                         profileProperties.sslrootcert to the server's CA certificate ({e})",
                        config.ssl_mode
                    ))
                })?;
            if config.ssl_mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectorError::internal(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // The protocol name PostgreSQL 17 servers check; older servers ignore it.
    tls.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(tls)
}

/// `prefer` and `require`: any certificate, as long as the server signs the handshake with
/// its key.
#[derive(Debug)]
struct NoCertificateCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full WebPKI check except the host name. WebPKI checks the chain before
/// the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Makes one [`RustlsConnect`] per connection attempt.
#[derive(Clone)]
pub struct MakeRustlsConnect {
    config: Arc<ClientConfig>,
    mode: SslMode,
}

impl MakeRustlsConnect {
    /// A connector with `config`, for messages about `mode`.
    pub fn new(config: ClientConfig, mode: SslMode) -> Self {
        Self {
            config: Arc::new(config),
            mode,
        }
    }
}

impl MakeTlsConnect<Socket> for MakeRustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, TlsError> {
        // An invalid name only matters once TLS is really used (`disable` never is).
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| format!("host {domain:?} cannot be checked against a certificate ({e})"));
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
            domain: domain.to_owned(),
            mode: self.mode,
        })
    }
}

/// Performs the handshake of one connection.
pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: Result<ServerName<'static>, String>,
    domain: String,
    mode: SslMode,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream, TlsError>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(TlsError::Refused)?;
            match self.connector.connect(name, stream).await {
                Ok(stream) => Ok(RustlsStream(Box::new(stream))),
                Err(error) => Err(handshake_error(error, &self.domain, self.mode)),
            }
        })
    }
}

/// Separates refusals (certificate, protocol) from connection failures, and says what to do
/// about the common ones.
fn handshake_error(error: io::Error, domain: &str, mode: SslMode) -> TlsError {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return TlsError::Io(error);
    };
    let message = match tls {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the server certificate is not signed by a trusted CA (sslmode {mode}); set \
             profileProperties.sslrootcert to the PEM text of the server's CA certificate"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server certificate is not valid for host {domain} (sslmode {mode} checks the \
             name; {tls})"
        ),
        other => format!("{other} (sslmode {mode})"),
    };
    TlsError::Refused(message)
}

/// A TLS connection to the server.
pub struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().0.as_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().0.as_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| tls_server_end_point(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

/// The `tls-server-end-point` channel binding of RFC 5929: the certificate's hash with the
/// hash function of its signature, SHA-256 when that is MD5 or SHA-1. `None` for signature
/// algorithms without a single hash function (Ed25519, RSA-PSS); SCRAM then runs without
/// channel binding, as with libpq.
pub fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    // DER contents of the signature algorithm OIDs (1.2.840.113549.1.1.x, 1.2.840.10045.4.x).
    const MD5_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
    const SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    const SHA1_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const SHA256_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const SHA384_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const SHA512_ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    Some(match signature_algorithm(cert)? {
        MD5_RSA | SHA1_RSA | SHA1_ECDSA | SHA256_RSA | SHA256_ECDSA => {
            sha2::Sha256::digest(cert).to_vec()
        }
        SHA384_RSA | SHA384_ECDSA => sha2::Sha384::digest(cert).to_vec(),
        SHA512_RSA | SHA512_ECDSA => sha2::Sha512::digest(cert).to_vec(),
        _ => return None,
    })
}

/// The OID of `Certificate.signatureAlgorithm` (the element after `tbsCertificate`).
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, certificate, _) = der_element(cert)? else {
        return None;
    };
    let (0x30, _tbs, rest) = der_element(certificate)? else {
        return None;
    };
    let (0x30, algorithm, _) = der_element(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der_element(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// Splits one DER element off `input`: `(tag, content, rest)`.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}
