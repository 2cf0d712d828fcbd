//! TLS settings of the SMTP client: the security level per destination
//! (smtp_tls_security_level, smtp_tls_policy_maps) and the rustls client
//! configurations.
//!
//! - `none`: no STARTTLS.
//! - `may`: STARTTLS when offered, any certificate accepted (opportunistic
//!   TLS protects against passive eavesdropping only, as in Postfix); a
//!   failed handshake is retried without TLS.
//! - `encrypt`: TLS required, any certificate.
//! - `verify`, `secure`: TLS required, the certificate must chain to
//!   smtp_tls_CAfile (or the system's bundle) and name the server (the MX
//!   host for verify, the next hop for secure).
//! - `dane`, `fingerprint`: not supported; treated as `encrypt` with a
//!   warning in the log, so that mail is never sent in the clear.

use std::sync::Arc;

use ironpost_conf::{ConfError, Config, params};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::maps::{LookupError, MapContext, MapList};

/// A TLS security level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    None,
    May,
    Encrypt,
    Verify,
    Secure,
}

impl Level {
    pub fn parse(word: &str) -> Option<Level> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Level::None,
            "may" => Level::May,
            "encrypt" | "dane" | "dane-only" | "fingerprint" => Level::Encrypt,
            "verify" => Level::Verify,
            "secure" => Level::Secure,
            _ => return None,
        })
    }

    pub fn required(self) -> bool {
        matches!(self, Level::Encrypt | Level::Verify | Level::Secure)
    }
}

/// Accepts any certificate (levels may and encrypt), but checks that the
/// handshake's signatures are made with the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS side of the SMTP client.
#[derive(Debug)]
pub struct ClientTls {
    pub level: Level,
    policy: MapList,
    /// For may and encrypt.
    pub any: Arc<rustls::ClientConfig>,
    /// For verify and secure; `Err` says why there is none (no CA file).
    pub verified: Result<Arc<rustls::ClientConfig>, String>,
}

/// The system's CA bundle on Debian.
const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl ClientTls {
    pub fn from_config(cfg: &Config, ctx: &MapContext) -> Result<ClientTls, ConfError> {
        let level_text = cfg.get_enum(params::SMTP_TLS_SECURITY_LEVEL)?;
        let level = Level::parse(&level_text).unwrap_or(Level::May);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        let any = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| ConfError::new(ironpost_conf::ErrorKind::Syntax(e.to_string())))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.clone())))
            .with_no_client_auth();
        let ca = cfg.get_str(params::SMTP_TLS_CAFILE)?.trim().to_string();
        let ca = if ca.is_empty() {
            SYSTEM_CA_FILE.to_string()
        } else {
            ca
        };
        let verified = (|| -> Result<Arc<rustls::ClientConfig>, String> {
            let pem = std::fs::read(&ca)
                .map_err(|e| format!("smtp_tls_CAfile {ca}: {}", ironpost_conf::io_reason(&e)))?;
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(format!("smtp_tls_CAfile {ca}: no certificates"));
            }
            let c = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(c))
        })();
        Ok(ClientTls {
            level,
            policy: MapList::open_all(&cfg.get_maps(params::SMTP_TLS_POLICY_MAPS)?, ctx),
            any: Arc::new(any),
            verified,
        })
    }

    /// The level for a next hop: smtp_tls_policy_maps (the next hop as
    /// written, `[host]:port`, or the domain, then its parents as
    /// `.parent`), else smtp_tls_security_level.
    pub fn level_for(&self, nexthop: &crate::transport::Nexthop) -> Result<Level, LookupError> {
        if self.policy.is_empty() {
            return Ok(self.level);
        }
        let mut keys = vec![nexthop.to_string()];
        if nexthop.mx {
            let mut d = nexthop.host.as_str();
            keys.push(d.to_string());
            while let Some((_, parent)) = d.split_once('.') {
                keys.push(format!(".{parent}"));
                d = parent;
            }
        } else {
            keys.push(format!("[{}]", nexthop.host));
        }
        for k in keys {
            if let Some(v) = self.policy.find(&k)? {
                let word = v.split_whitespace().next().unwrap_or("");
                return Ok(Level::parse(word).unwrap_or(Level::Encrypt));
            }
        }
        Ok(self.level)
    }
}
