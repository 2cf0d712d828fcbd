//! TLS with rustls (aws-lc-rs provider): the server configuration from PEM
//! files, self-signed certificates for quickstart, a stream that can be
//! upgraded in the middle of a session (STARTTLS), and the names Postfix
//! logs for what was negotiated.
//!
//! TLS 1.2 and 1.3 only (rustls has nothing older).

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

/// Reads a certificate chain and its key (PEM) into a server configuration.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, String> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| format!("{}: {}", p.display(), ironpost_conf::io_reason(&e)))
    };
    let cert_pem = read(cert_file)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert_file.display()));
    }
    let key_pem = read(key_file)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("{}: {e}", key_file.display()))?
        .ok_or_else(|| format!("{}: no private key in it", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))?;
    Ok(Arc::new(config))
}

/// A self-signed certificate and its key (PEM), for `quickstart`.
pub fn self_signed(host: &str) -> Result<(String, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, host);
    params.distinguished_name = name;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A connection that starts in plain text and may switch to TLS.
pub enum Conn<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// During the switch (never seen by readers or writers).
    Switching,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Runs the TLS handshake on a plain connection.
    pub async fn start_tls(&mut self, config: Arc<ServerConfig>) -> io::Result<()> {
        let Conn::Plain(s) = std::mem::replace(self, Conn::Switching) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = acceptor.accept(s).await?;
        *self = Conn::Tls(Box::new(tls));
        Ok(())
    }

    /// The tls-exporter channel binding (RFC 9266): 32 bytes exported with
    /// the label `EXPORTER-Channel-Binding`.
    pub fn channel_binding(&self) -> Option<Vec<u8>> {
        let Conn::Tls(t) = self else {
            return None;
        };
        t.get_ref()
            .1
            .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
            .ok()
    }

    /// What was negotiated, as Postfix writes it: `TLSv1.3 with cipher
    /// TLS_AES_256_GCM_SHA384 (256/256 bits)`.
    pub fn describe(&self) -> Option<String> {
        let Conn::Tls(t) = self else {
            return None;
        };
        let (_, conn) = t.get_ref();
        let version = match conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        };
        let suite = conn.negotiated_cipher_suite()?.suite();
        let (name, bits) = cipher_name(suite);
        Some(format!("{version} with cipher {name} ({bits}/{bits} bits)"))
    }
}

/// OpenSSL's name of a cipher suite (which Postfix logs), and its key size.
pub fn cipher_name(suite: rustls::CipherSuite) -> (String, u32) {
    use rustls::CipherSuite as C;
    let (name, bits) = match suite {
        C::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        C::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        C::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-RSA-CHACHA20-POLY1305", 256),
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-ECDSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-ECDSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-ECDSA-CHACHA20-POLY1305", 256),
        other => return (format!("{other:?}"), 0),
    };
    (name.to_string(), bits)
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            Conn::Switching => Poll::Ready(Err(io::Error::other("connection is switching to TLS"))),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            Conn::Switching => Poll::Ready(Err(io::Error::other("connection is switching to TLS"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            Conn::Switching => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            Conn::Switching => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_load() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed("mail.example.test").unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        assert!(server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).is_ok());
        let err =
            server_config(&dir.path().join("key.pem"), &dir.path().join("key.pem")).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let err =
            server_config(&dir.path().join("none.pem"), &dir.path().join("key.pem")).unwrap_err();
        assert!(err.contains("none.pem: No such file or directory"), "{err}");
    }
}
