//! Stored passwords, in Dovecot's notation (`{SCHEME}data`) and as bare
//! crypt(3) strings (`$6$...`, as in /etc/shadow).
//!
//! | scheme            | stored as                                            |
//! |-------------------|------------------------------------------------------|
//! | `{ARGON2ID}`      | `$argon2id$v=19$m=65536,t=3,p=1$salt$hash` (PHC)     |
//! | `{BLF-CRYPT}`     | bcrypt `$2y$05$...` (also `$2a$`, `$2b$`)            |
//! | `{SHA512-CRYPT}`  | `$6$salt$hash` (optionally `$6$rounds=N$...`)        |
//! | `{SHA256-CRYPT}`  | `$5$salt$hash`                                       |
//! | `{SSHA512}`       | base64(SHA-512(password + salt) + salt)              |
//! | `{SSHA256}`       | base64(SHA-256(password + salt) + salt)              |
//! | `{SSHA}`          | base64(SHA-1(password + salt) + salt)                |
//! | `{SCRAM-SHA-256}` | `iterations,salt,StoredKey,ServerKey` (also SHA-1)   |
//! | `{CRYPT}`         | any crypt(3) string below                            |
//! | `{PLAIN}`         | the password itself (read only, with a warning)      |
//!
//! Bare crypt strings: yescrypt `$y$`, SHA-512 `$6$`, SHA-256 `$5$`, bcrypt
//! `$2a$`/`$2b$`/`$2y$`, MD5 `$1$`, and `$argon2id$`/`$argon2i$`. The old DES
//! crypt (13 characters) is refused as unsupported.
//!
//! New passwords are stored as `{ARGON2ID}` with Dovecot's parameters.
//! Secrets are compared in constant time (the crypt implementations compare
//! their results so too).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// A stored password that cannot be checked: unknown scheme or damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordError(pub String);

impl std::fmt::Display for PasswordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PasswordError {}

fn err(msg: impl Into<String>) -> PasswordError {
    PasswordError(msg.into())
}

/// The scheme of a stored password: `ARGON2ID`, `SHA512-CRYPT`, ..., or
/// `CRYPT` for a bare crypt string.
pub fn scheme_of(stored: &str) -> Option<String> {
    match split_scheme(stored) {
        Some((scheme, _)) => Some(scheme.to_ascii_uppercase()),
        None if stored.starts_with('$') => Some("CRYPT".to_string()),
        None => None,
    }
}

fn split_scheme(stored: &str) -> Option<(&str, &str)> {
    let rest = stored.strip_prefix('{')?;
    let (scheme, data) = rest.split_once('}')?;
    Some((scheme, data))
}

/// Whether `password` matches the stored value.
pub fn verify(stored: &str, password: &str) -> Result<bool, PasswordError> {
    let stored = stored.trim();
    let Some((scheme, data)) = split_scheme(stored) else {
        return verify_crypt(stored, password);
    };
    match scheme.to_ascii_uppercase().as_str() {
        "ARGON2ID" | "ARGON2I" => verify_argon2(data, password),
        "BLF-CRYPT" | "SHA512-CRYPT" | "SHA256-CRYPT" | "MD5-CRYPT" | "CRYPT" => {
            verify_crypt(data, password)
        }
        "SSHA512" => verify_salted::<Sha512>(data, password, 64),
        "SSHA256" => verify_salted::<Sha256>(data, password, 32),
        "SSHA" => verify_salted::<Sha1>(data, password, 20),
        "SCRAM-SHA-256" | "SCRAM-SHA-1" => verify_scram(stored, password),
        "PLAIN" | "CLEARTEXT" | "CLEAR" => {
            tracing::warn!(
                "a password is stored in plain text ({{{scheme}}}); set it again to store a hash"
            );
            Ok(bool::from(data.as_bytes().ct_eq(password.as_bytes())))
        }
        other => Err(err(format!("unsupported password scheme {{{other}}}"))),
    }
}

/// A new stored password: `{ARGON2ID}` with Dovecot's default parameters
/// (64 MiB, 3 passes, 1 lane) and a random 16-byte salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| err(format!("no random numbers: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| err(e.to_string()))?;
    let params = argon2::Params::new(65536, 3, 1, None).map_err(|e| err(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let h = a
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| err(e.to_string()))?;
    Ok(format!("{{ARGON2ID}}{h}"))
}

fn verify_argon2(data: &str, password: &str) -> Result<bool, PasswordError> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(data).map_err(|e| err(format!("bad argon2 hash: {e}")))?;
    match argon2::Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(err(format!("bad argon2 hash: {e}"))),
    }
}

/// `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey`: the password is
/// right when it gives the same StoredKey.
fn verify_scram(stored: &str, password: &str) -> Result<bool, PasswordError> {
    use ironpost_proto::sasl::scram::ScramKeys;
    let (hash, keys) =
        ScramKeys::from_dovecot(stored).ok_or_else(|| err("bad SCRAM password entry"))?;
    let ours = ScramKeys::derive(hash, password, &keys.salt, keys.iterations);
    Ok(bool::from(ours.stored_key.ct_eq(&keys.stored_key)))
}

fn verify_salted<D: Digest>(
    data: &str,
    password: &str,
    digest_len: usize,
) -> Result<bool, PasswordError> {
    let raw = B64
        .decode(data.trim())
        .map_err(|_| err("salted hash is not base64"))?;
    if raw.len() < digest_len {
        return Err(err("salted hash too short"));
    }
    let (want, salt) = raw.split_at(digest_len);
    let mut h = D::new();
    h.update(password.as_bytes());
    h.update(salt);
    Ok(bool::from(h.finalize().as_slice().ct_eq(want)))
}

/// A crypt(3) string.
fn verify_crypt(data: &str, password: &str) -> Result<bool, PasswordError> {
    let data = data.trim();
    if data.starts_with("$6$") {
        return sha_crypt_result(sha_crypt::sha512_check(password, data), "SHA512-CRYPT");
    }
    if data.starts_with("$5$") {
        return sha_crypt_result(sha_crypt::sha256_check(password, data), "SHA256-CRYPT");
    }
    if data.starts_with("$2a$") || data.starts_with("$2b$") || data.starts_with("$2y$") {
        return bcrypt::verify(password, data).map_err(|e| err(format!("bad bcrypt hash: {e}")));
    }
    if data.starts_with("$y$") {
        use yescrypt::PasswordVerifier;
        return match yescrypt::Yescrypt::default().verify_password(password.as_bytes(), data) {
            Ok(()) => Ok(true),
            Err(yescrypt::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(err(format!("bad yescrypt hash: {e}"))),
        };
    }
    if let Some(rest) = data.strip_prefix("$1$") {
        let salt = rest.split('$').next().unwrap_or("");
        let ours = md5_crypt(password.as_bytes(), salt.as_bytes());
        if !data.contains('$') || rest.split('$').nth(1).is_none() {
            return Err(err("bad MD5-CRYPT hash"));
        }
        return Ok(bool::from(ours.as_bytes().ct_eq(data.as_bytes())));
    }
    if data.starts_with("$argon2") {
        return verify_argon2(data, password);
    }
    if data.len() == 13 && !data.starts_with('$') {
        return Err(err(
            "DES crypt passwords are not supported; set the password again",
        ));
    }
    Err(err("unsupported crypt format"))
}

/// sha-crypt's answer: its error type is not public, so a mismatch is told
/// from a malformed hash by its name.
fn sha_crypt_result<E: std::fmt::Debug>(
    r: Result<(), E>,
    scheme: &str,
) -> Result<bool, PasswordError> {
    match r {
        Ok(()) => Ok(true),
        Err(e) => {
            let what = format!("{e:?}");
            if what.starts_with("HashMismatch") {
                Ok(false)
            } else {
                Err(err(format!("bad {scheme} hash: {what}")))
            }
        }
    }
}

/// The crypt64 alphabet.
const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn to64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(ITOA64[(v & 0x3f) as usize] as char);
        v >>= 6;
    }
}

/// Poul-Henning Kamp's MD5-based crypt (`$1$`), as glibc and FreeBSD have it.
pub fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    use md5::Md5;
    let salt = &salt[..salt.len().min(8)];
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for i in 0..1000 {
        let mut c = Md5::new();
        if i & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if i % 3 != 0 {
            c.update(salt);
        }
        if i % 7 != 0 {
            c.update(password);
        }
        if i & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    let f = |i: usize| u32::from(fin[i]);
    let mut out = String::with_capacity(34);
    out.push_str("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    to64(&mut out, (f(0) << 16) | (f(6) << 8) | f(12), 4);
    to64(&mut out, (f(1) << 16) | (f(7) << 8) | f(13), 4);
    to64(&mut out, (f(2) << 16) | (f(8) << 8) | f(14), 4);
    to64(&mut out, (f(3) << 16) | (f(9) << 8) | f(15), 4);
    to64(&mut out, (f(4) << 16) | (f(10) << 8) | f(5), 4);
    to64(&mut out, f(11), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_are_argon2id_and_verify() {
        let h = hash("s3cret").unwrap();
        assert!(
            h.starts_with("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$"),
            "{h}"
        );
        assert!(verify(&h, "s3cret").unwrap());
        assert!(!verify(&h, "s3cret ").unwrap());
        assert_ne!(hash("s3cret").unwrap(), h, "a fresh salt each time");
        assert_eq!(scheme_of(&h).as_deref(), Some("ARGON2ID"));
    }

    #[test]
    fn vectors_made_by_the_real_tools() {
        // `mkpasswd -m md5crypt secret` and `doveadm pw -s SSHA -p secret`
        // (Debian's whois and dovecot-core); more are made at test time in
        // tests/integration/passwords.rs.
        let md5 = "$1$Hw5uNwuI$GNHItEaIGqmainPdk//LZ1";
        assert_eq!(md5_crypt(b"secret", b"Hw5uNwuI"), md5);
        assert!(verify(md5, "secret").unwrap());
        assert!(!verify(md5, "Secret").unwrap());
        let ssha = "{SSHA}jA7vbWN5vNW4+043pIfPkUNWra+nxHPZ";
        assert!(verify(ssha, "secret").unwrap());
        assert!(!verify(ssha, "secreT").unwrap());
    }

    #[test]
    fn plain_unknown_and_damaged() {
        assert!(verify("{PLAIN}secret", "secret").unwrap());
        assert!(!verify("{PLAIN}secret", "secre").unwrap());
        assert!(verify("{MD4}abc", "x").is_err());
        assert!(verify("{SSHA}!!!", "x").is_err());
        assert!(verify("{SSHA}AAAA", "x").is_err());
        assert!(verify("abcdefghijklm", "x").is_err());
        assert!(verify("$6$broken", "x").is_err());
        assert!(verify("", "x").is_err());
        assert_eq!(scheme_of("$6$a$b").as_deref(), Some("CRYPT"));
        assert_eq!(
            scheme_of("{sha512-crypt}$6$a$b").as_deref(),
            Some("SHA512-CRYPT")
        );
    }
}
