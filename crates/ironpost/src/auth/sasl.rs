//! The server side of a SASL exchange, shared by SMTP AUTH, POP3 AUTH and
//! IMAP AUTHENTICATE: the mechanisms of `ironpost_proto::sasl` (PLAIN,
//! LOGIN, SCRAM-SHA-1/256 with and without channel binding) driven to a
//! login name and a verdict on its password. Each protocol sends the
//! challenges its own way ([`Challenger`]) and words the outcome in its
//! own replies.
//!
//! Passwords are checked on a blocking thread (files, slow hashes, SQL).
//! SCRAM needs the keys stored for the user; for an unknown user, or one
//! without SCRAM keys, made-up keys make the proof fail, so that SCRAM
//! cannot tell who exists.

use std::sync::Arc;

use ironpost_proto::sasl::login::{Login, Step as LoginStep};
use ironpost_proto::sasl::plain;
use ironpost_proto::sasl::scram::{ScramHash, ScramKeys, ScramServer};
use ironpost_proto::sasl::{self, Mechanism, SaslError};

use super::system::{Check, Identity, SystemAuth};

/// How a protocol sends a challenge and reads the client's answer.
///
/// Only ironpost's own sessions implement it, always used with their
/// concrete types, so the futures' auto traits (Send, for tokio::spawn)
/// are known where it matters: `async fn` is fine here.
#[allow(async_fn_in_trait)]
pub trait Challenger {
    /// The connection ended (or failed) during the exchange.
    type Stop;

    /// Sends `data` as a challenge (empty: an empty challenge) and returns
    /// the decoded answer, or the client's cancel or bad base64.
    async fn challenge(&mut self, data: &[u8]) -> Result<Result<Vec<u8>, SaslError>, Self::Stop>;
}

/// How an exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The credentials were checked: the login name (with the default
    /// realm applied as the caller asked) and the verdict.
    Checked { login: String, check: Check },
    /// The client asked to act as someone else (an authzid that is not
    /// its login): refused.
    AuthzRefused,
    /// The exchange broke off: cancelled, bad base64, or a response that
    /// is not the mechanism's syntax.
    Error(SaslError),
}

/// What an exchange needs to know.
pub struct Context<'a> {
    pub accounts: &'a Arc<SystemAuth>,
    /// The TLS channel binding (tls-exporter) when under TLS.
    pub channel_binding: Option<Vec<u8>>,
    /// Whether the -PLUS variant of the chosen SCRAM mechanism is offered
    /// (RFC 5802 §6: a client that could bind but thinks the server
    /// cannot says so, and must be refused when it can).
    pub plus_offered: bool,
    /// Completes a bare login name (smtpd_sasl_local_domain); identity
    /// when `None`.
    pub complete: &'a (dyn Fn(&str) -> String + Sync),
}

/// Runs the exchange for `mech`, starting from the initial response if
/// the client gave one.
pub async fn authenticate<C: Challenger>(
    c: &mut C,
    cx: &Context<'_>,
    mech: Mechanism,
    initial: Option<Vec<u8>>,
) -> Result<Outcome, C::Stop> {
    match mech {
        Mechanism::Plain | Mechanism::Login => {
            let creds = match plain_or_login(c, mech, initial).await? {
                Ok(creds) => creds,
                Err(outcome) => return Ok(outcome),
            };
            let login = (cx.complete)(&creds.authcid);
            let check = check_password(cx.accounts.clone(), login.clone(), creds.password).await;
            Ok(Outcome::Checked { login, check })
        }
        Mechanism::ScramSha1
        | Mechanism::ScramSha256
        | Mechanism::ScramSha1Plus
        | Mechanism::ScramSha256Plus => scram(c, cx, mech, initial).await,
    }
}

/// PLAIN or LOGIN: the credentials, or how the exchange ended.
async fn plain_or_login<C: Challenger>(
    c: &mut C,
    mech: Mechanism,
    initial: Option<Vec<u8>>,
) -> Result<Result<sasl::Credentials, Outcome>, C::Stop> {
    if mech == Mechanism::Plain {
        let message = match initial {
            Some(m) => m,
            None => match c.challenge(b"").await? {
                Ok(m) => m,
                Err(e) => return Ok(Err(Outcome::Error(e))),
            },
        };
        return Ok(match plain::parse(&message) {
            Ok(creds) if plain::authzid_allowed(&creds) => Ok(creds),
            Ok(_) => Err(Outcome::AuthzRefused),
            Err(e) => Err(Outcome::Error(e)),
        });
    }
    let mut l = Login::new();
    let mut step = l.start(initial.as_deref());
    loop {
        match step {
            Ok(LoginStep::Challenge(ch)) => {
                step = match c.challenge(ch).await? {
                    Ok(r) => l.respond(&r),
                    Err(e) => Err(e),
                };
            }
            Ok(LoginStep::Done(creds)) => return Ok(Ok(creds)),
            Err(e) => return Ok(Err(Outcome::Error(e))),
        }
    }
}

/// Checks a password on a blocking thread.
pub async fn check_password(accounts: Arc<SystemAuth>, login: String, password: String) -> Check {
    tokio::task::spawn_blocking(move || match accounts.identify(&login) {
        Ok(Identity::System(user)) => accounts.check(&user, &password),
        Ok(Identity::Virtual(address)) => accounts.check_virtual(&address, &password),
        Err(e) => Check::Unavailable(e.to_string()),
    })
    .await
    .unwrap_or_else(|_| Check::Unavailable("password check failed".into()))
}

/// SCRAM-SHA-1/256 (RFC 5802, RFC 7677), -PLUS with tls-exporter.
async fn scram<C: Challenger>(
    c: &mut C,
    cx: &Context<'_>,
    mech: Mechanism,
    initial: Option<Vec<u8>>,
) -> Result<Outcome, C::Stop> {
    let hash = match mech {
        Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => ScramHash::Sha1,
        _ => ScramHash::Sha256,
    };
    let mut server = ScramServer::new(hash);
    if let Some(binding) = cx.channel_binding.clone() {
        server = server.with_channel(binding, cx.plus_offered);
    }
    let first = match initial {
        Some(m) => m,
        None => match c.challenge(b"").await? {
            Ok(m) => m,
            Err(e) => return Ok(Outcome::Error(e)),
        },
    };
    let user = match server.client_first(&first) {
        Ok(u) => u,
        Err(e) => return Ok(Outcome::Error(e)),
    };
    if server
        .authzid()
        .is_some_and(|z| !z.eq_ignore_ascii_case(&user))
    {
        return Ok(Outcome::AuthzRefused);
    }
    let login = (cx.complete)(&user);
    let accounts = cx.accounts.clone();
    let login2 = login.clone();
    let stored = tokio::task::spawn_blocking(move || match accounts.identify(&login2).ok()? {
        Identity::Virtual(address) => accounts.scram_entry(&address, hash),
        Identity::System(_) => None,
    })
    .await
    .ok()
    .flatten();
    let keys = stored
        .and_then(|s| ScramKeys::from_dovecot(&s))
        .filter(|(h, _)| *h == hash)
        .map(|(_, k)| k);
    let known = keys.is_some();
    let keys =
        keys.unwrap_or_else(|| ScramKeys::derive(hash, &random_token(), login.as_bytes(), 4096));
    let server_first = server.server_first(&keys, &random_token());
    let response = match c.challenge(&server_first).await? {
        Ok(r) => r,
        Err(e) => return Ok(Outcome::Error(e)),
    };
    match server.client_final(&response) {
        Ok(server_final) if known => {
            // The server's proof, then the client's empty answer.
            match c.challenge(&server_final).await? {
                Ok(_) => Ok(Outcome::Checked {
                    login,
                    check: Check::Accepted,
                }),
                Err(e) => Ok(Outcome::Error(e)),
            }
        }
        Ok(_) | Err(SaslError::Failed) => Ok(Outcome::Checked {
            login,
            check: Check::Refused,
        }),
        Err(e) => Ok(Outcome::Error(e)),
    }
}

/// A random printable token (SCRAM nonces, made-up salts).
pub fn random_token() -> String {
    let mut b = [0u8; 18];
    let _ = getrandom::fill(&mut b);
    sasl::encode_challenge(&b)
}
