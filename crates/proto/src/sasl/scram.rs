//! SCRAM-SHA-1 and SCRAM-SHA-256, server side (RFC 5802, RFC 7677).
//!
//! The server keeps, per user, a salt, an iteration count, StoredKey and
//! ServerKey ([`ScramKeys`], stored in Dovecot's `{SCRAM-SHA-256}` form
//! beside the password hash), never the password. The exchange:
//!
//! 1. client-first `n,,n=user,r=cnonce` -> [`ScramServer::client_first`]
//!    returns the user name, so the caller can look up the keys;
//! 2. [`ScramServer::server_first`] answers `r=cnonce+snonce,s=salt,i=N`;
//! 3. client-final `c=biws,r=...,p=proof` -> [`ScramServer::client_final`]
//!    checks the proof and returns the server-final `v=signature`.
//!
//! Channel binding (the -PLUS variants, RFC 5802 §6) uses `tls-exporter`
//! (RFC 9266): the caller gives the exporter value of the TLS connection
//! and says whether -PLUS was offered. A client asking for binding
//! (`p=tls-exporter`) must match it; a client that could bind but believes
//! the server cannot (`y`) is refused when -PLUS was offered (a downgrade).
//! Passwords are used as given (no SASLprep), as Dovecot does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::SaslError;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut m = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    /// Dovecot's scheme name.
    pub fn scheme(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
        }
    }
}

/// What the server stores for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramKeys {
    /// The keys for a password (RFC 5802 §3).
    pub fn derive(hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> ScramKeys {
        let salted = hash.salted_password(password.as_bytes(), salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        ScramKeys {
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
        }
    }

    /// Dovecot's form: `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey`
    /// (base64).
    pub fn to_dovecot(&self, hash: ScramHash) -> String {
        format!(
            "{{{}}}{},{},{},{}",
            hash.scheme(),
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }

    /// Reads Dovecot's form (with or without the `{SCHEME}` prefix).
    pub fn from_dovecot(text: &str) -> Option<(ScramHash, ScramKeys)> {
        let (hash, rest) = if let Some(r) = text.strip_prefix("{SCRAM-SHA-256}") {
            (ScramHash::Sha256, r)
        } else if let Some(r) = text.strip_prefix("{SCRAM-SHA-1}") {
            (ScramHash::Sha1, r)
        } else {
            return None;
        };
        let mut f = rest.trim().split(',');
        let iterations = f.next()?.parse().ok()?;
        let salt = B64.decode(f.next()?).ok()?;
        let stored_key = B64.decode(f.next()?).ok()?;
        let server_key = B64.decode(f.next()?).ok()?;
        Some((
            hash,
            ScramKeys {
                salt,
                iterations,
                stored_key,
                server_key,
            },
        ))
    }
}

#[derive(Debug)]
enum State {
    Start,
    /// After client-first.
    Named {
        gs2_header: String,
        client_first_bare: String,
        client_nonce: String,
    },
    /// After server-first.
    Challenged {
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        keys: ScramKeys,
    },
    Done,
}

/// One SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    hash: ScramHash,
    state: State,
    authzid: Option<String>,
    /// The tls-exporter value of the connection, when there is TLS.
    channel: Option<Vec<u8>>,
    /// Whether the -PLUS variant was offered on this connection.
    plus_offered: bool,
    /// The binding data the client must send back in `c=`.
    binding: Vec<u8>,
}

/// Decodes a saslname (`=2C` is `,`, `=3D` is `=`).
fn decode_saslname(s: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::Malformed("bad escape in user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn printable_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ScramServer {
    pub fn new(hash: ScramHash) -> ScramServer {
        ScramServer {
            hash,
            state: State::Start,
            authzid: None,
            channel: None,
            plus_offered: false,
            binding: Vec::new(),
        }
    }

    /// With TLS: the connection's tls-exporter value, and whether the
    /// -PLUS mechanisms were offered.
    pub fn with_channel(mut self, exporter: Vec<u8>, plus_offered: bool) -> ScramServer {
        self.channel = Some(exporter);
        self.plus_offered = plus_offered;
        self
    }

    /// Whether the client bound the exchange to the TLS channel.
    pub fn is_bound(&self) -> bool {
        !self.binding.is_empty()
    }

    /// The identity the client asked to act as, if any.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// Reads client-first and returns the user name.
    pub fn client_first(&mut self, message: &[u8]) -> Result<String, SaslError> {
        let text = std::str::from_utf8(message).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().unwrap_or("");
        let authzid = parts.next().ok_or(SaslError::Malformed("no GS2 header"))?;
        let bare = parts
            .next()
            .ok_or(SaslError::Malformed("no client-first-message"))?;
        match flag {
            "n" => {}
            // The client could bind and thinks we cannot: if we offered
            // -PLUS, someone removed it on the way.
            "y" if self.plus_offered => return Err(SaslError::Failed),
            "y" => {}
            "p=tls-exporter" => match &self.channel {
                Some(data) => self.binding = data.clone(),
                None => return Err(SaslError::Malformed("channel binding without TLS")),
            },
            f if f.starts_with("p=") => {
                return Err(SaslError::Malformed("unsupported channel binding type"));
            }
            _ => return Err(SaslError::Malformed("bad GS2 flag")),
        }
        if !authzid.is_empty() {
            let z = authzid
                .strip_prefix("a=")
                .ok_or(SaslError::Malformed("bad authzid"))?;
            self.authzid = Some(decode_saslname(z)?);
        }
        let mut fields = bare.split(',');
        let mut first = fields.next().unwrap_or("");
        if first.starts_with("m=") {
            // A mandatory extension we do not know.
            return Err(SaslError::Malformed("unsupported extension"));
        }
        let user = first
            .strip_prefix("n=")
            .ok_or(SaslError::Malformed("no user name"))?;
        let user = decode_saslname(user)?;
        first = fields.next().unwrap_or("");
        let nonce = first
            .strip_prefix("r=")
            .ok_or(SaslError::Malformed("no nonce"))?;
        if user.is_empty() || !printable_nonce(nonce) {
            return Err(SaslError::Malformed("bad user name or nonce"));
        }
        self.state = State::Named {
            gs2_header: format!("{flag},{authzid},"),
            client_first_bare: bare.to_string(),
            client_nonce: nonce.to_string(),
        };
        Ok(user)
    }

    /// The server-first message, with the user's keys (or made-up keys for
    /// an unknown user, so that unknown users look like wrong passwords)
    /// and a fresh random nonce of printable characters.
    pub fn server_first(&mut self, keys: &ScramKeys, server_nonce: &str) -> Vec<u8> {
        let State::Named {
            gs2_header,
            client_first_bare,
            client_nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Vec::new();
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&keys.salt),
            keys.iterations
        );
        self.state = State::Challenged {
            gs2_header,
            client_first_bare,
            server_first: server_first.clone(),
            nonce,
            keys: keys.clone(),
        };
        server_first.into_bytes()
    }

    /// Checks client-final; returns the server-final message on success.
    pub fn client_final(&mut self, message: &[u8]) -> Result<Vec<u8>, SaslError> {
        let State::Challenged {
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
            keys,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(SaslError::Malformed("out of order"));
        };
        let text = std::str::from_utf8(message).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(SaslError::Malformed("no proof"))?;
        let mut fields = without_proof.split(',');
        let cbind = fields
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .ok_or(SaslError::Malformed("no channel binding"))?;
        let their_nonce = fields
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .ok_or(SaslError::Malformed("no nonce"))?;
        let mut expected = gs2_header.as_bytes().to_vec();
        expected.extend_from_slice(&self.binding);
        if cbind != B64.encode(&expected) {
            return Err(SaslError::Failed);
        }
        if their_nonce != nonce {
            return Err(SaslError::Failed);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| SaslError::Malformed("proof is not base64"))?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(SaslError::Failed);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let ok = self.hash.hash(&client_key).ct_eq(&keys.stored_key);
        if !bool::from(ok) {
            return Err(SaslError::Failed);
        }
        let server_signature = self.hash.hmac(&keys.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client, from the RFC's algorithm, for the tests: client-final
    /// (without channel binding) and the server signature to expect.
    fn client_final(
        hash: ScramHash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        gs2: &str,
    ) -> (String, Vec<u8>) {
        client_final_bound(
            hash,
            password,
            client_first_bare,
            server_first,
            gs2.as_bytes(),
        )
    }

    #[test]
    fn rfc_5802_example() {
        // RFC 5802 §5: user "user", password "pencil".
        let keys = ScramKeys::derive(
            ScramHash::Sha1,
            "pencil",
            &B64.decode("QSXCR+Q6sek8bf92").unwrap(),
            4096,
        );
        let mut s = ScramServer::new(ScramHash::Sha1);
        assert_eq!(
            s.client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
                .unwrap(),
            "user"
        );
        assert_eq!(
            s.server_first(&keys, "3rfcNHYJY1ZVvWVs7j"),
            b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
        );
        let fin = s
            .client_final(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
            .unwrap();
        assert_eq!(fin, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn rfc_7677_example() {
        // RFC 7677 §3: SCRAM-SHA-256, user "user", password "pencil".
        let keys = ScramKeys::derive(
            ScramHash::Sha256,
            "pencil",
            &B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap(),
            4096,
        );
        let mut s = ScramServer::new(ScramHash::Sha256);
        s.client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(
            String::from_utf8(s.server_first(&keys, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = s
            .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(fin, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn wrong_password_and_tampering() {
        let keys = ScramKeys::derive(ScramHash::Sha256, "right", b"saltsalt", 4096);
        for (password, tamper) in [("wrong", false), ("right", true)] {
            let mut s = ScramServer::new(ScramHash::Sha256);
            let first_bare = "n=jerry@example.test,r=abcdefgh";
            s.client_first(format!("n,,{first_bare}").as_bytes())
                .unwrap();
            let sf = String::from_utf8(s.server_first(&keys, "XYZ123")).unwrap();
            let (mut fin, _) = client_final(ScramHash::Sha256, password, first_bare, &sf, "n,,");
            if tamper {
                fin = fin.replace("r=abcdefghXYZ123", "r=abcdefghXYZ124");
            }
            assert_eq!(s.client_final(fin.as_bytes()), Err(SaslError::Failed));
        }
        // The right password goes through, with an authzid and escapes.
        let mut s = ScramServer::new(ScramHash::Sha256);
        let first_bare = "n=a=3Db=2Cc,r=nonce1";
        assert_eq!(
            s.client_first(format!("y,a=a=3Db=2Cc,{first_bare}").as_bytes())
                .unwrap(),
            "a=b,c"
        );
        assert_eq!(s.authzid(), Some("a=b,c"));
        let sf = String::from_utf8(s.server_first(&keys, "n2")).unwrap();
        let (fin, want) = client_final(
            ScramHash::Sha256,
            "right",
            first_bare,
            &sf,
            "y,a=a=3Db=2Cc,",
        );
        let got = s.client_final(fin.as_bytes()).unwrap();
        assert_eq!(got, format!("v={}", B64.encode(want)).into_bytes());
        // Channel binding asked for: refused; garbage refused.
        assert!(
            ScramServer::new(ScramHash::Sha1)
                .client_first(b"p=tls-exporter,,n=u,r=x")
                .is_err()
        );
        for bad in [
            &b"n,,r=x"[..],
            b"n,,n=u",
            b"x,,n=u,r=x",
            b"n,,n=u=2X,r=x",
            b"n,,n=u,r=a,b",
        ] {
            let _ = ScramServer::new(ScramHash::Sha1).client_first(bad);
        }
        assert!(
            ScramServer::new(ScramHash::Sha1)
                .client_first(b"n,,n=u=2X,r=x")
                .is_err()
        );
        assert!(
            ScramServer::new(ScramHash::Sha1)
                .client_final(b"c=biws,r=x,p=AA==")
                .is_err()
        );
    }

    #[test]
    fn channel_binding() {
        let keys = ScramKeys::derive(ScramHash::Sha256, "right", b"saltsalt", 4096);
        let exporter = vec![7u8; 32];
        // p=tls-exporter with the right data: accepted.
        let mut s = ScramServer::new(ScramHash::Sha256).with_channel(exporter.clone(), true);
        let first_bare = "n=u,r=abc";
        s.client_first(format!("p=tls-exporter,,{first_bare}").as_bytes())
            .unwrap();
        let sf = String::from_utf8(s.server_first(&keys, "def")).unwrap();
        let gs2: Vec<u8> = [b"p=tls-exporter,,".as_slice(), &exporter].concat();
        let (fin, _) = client_final_bound(ScramHash::Sha256, "right", first_bare, &sf, &gs2);
        assert!(s.client_final(fin.as_bytes()).is_ok());
        // Bound to another channel (a man in the middle): refused.
        let mut s = ScramServer::new(ScramHash::Sha256).with_channel(vec![8u8; 32], true);
        s.client_first(format!("p=tls-exporter,,{first_bare}").as_bytes())
            .unwrap();
        let sf = String::from_utf8(s.server_first(&keys, "def")).unwrap();
        let (fin, _) = client_final_bound(ScramHash::Sha256, "right", first_bare, &sf, &gs2);
        assert_eq!(s.client_final(fin.as_bytes()), Err(SaslError::Failed));
        // "y" while -PLUS was offered: a downgrade.
        let mut s = ScramServer::new(ScramHash::Sha256).with_channel(exporter, true);
        assert_eq!(s.client_first(b"y,,n=u,r=abc"), Err(SaslError::Failed));
    }

    fn client_final_bound(
        hash: ScramHash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        gs2_and_binding: &[u8],
    ) -> (String, Vec<u8>) {
        let fields: Vec<&str> = server_first.split(',').collect();
        let nonce = fields[0].strip_prefix("r=").unwrap();
        let salt = B64.decode(fields[1].strip_prefix("s=").unwrap()).unwrap();
        let iterations: u32 = fields[2].strip_prefix("i=").unwrap().parse().unwrap();
        let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored = hash.hash(&client_key);
        let without = format!("c={},r={nonce}", B64.encode(gs2_and_binding));
        let auth = format!("{client_first_bare},{server_first},{without}");
        let sig = hash.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_key = hash.hmac(&salted, b"Server Key");
        (
            format!("{without},p={}", B64.encode(proof)),
            hash.hmac(&server_key, auth.as_bytes()),
        )
    }

    #[test]
    fn dovecot_form_round_trip() {
        let keys = ScramKeys::derive(ScramHash::Sha256, "pencil", b"0123456789abcdef", 4096);
        let text = keys.to_dovecot(ScramHash::Sha256);
        assert!(text.starts_with("{SCRAM-SHA-256}4096,"));
        assert_eq!(
            ScramKeys::from_dovecot(&text),
            Some((ScramHash::Sha256, keys))
        );
    }
}
