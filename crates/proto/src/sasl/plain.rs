//! PLAIN (RFC 4616): one message `[authzid] NUL authcid NUL passwd`, UTF-8,
//! each part at most 255 bytes, no NUL inside a part.

use super::{Credentials, SaslError};

/// The longest part accepted (RFC 4616 §2).
const MAX_PART: usize = 255;

/// Reads a PLAIN message.
pub fn parse(message: &[u8]) -> Result<Credentials, SaslError> {
    let parts: Vec<&[u8]> = message.split(|&b| b == 0).collect();
    let [authzid, authcid, password] = parts[..] else {
        return Err(SaslError::Malformed(
            "PLAIN needs authzid NUL authcid NUL password",
        ));
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed("empty user name or password"));
    }
    if [authzid, authcid, password]
        .iter()
        .any(|p| p.len() > MAX_PART)
    {
        return Err(SaslError::Malformed("a part is longer than 255 bytes"));
    }
    let text =
        |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed("not UTF-8"));
    Ok(Credentials {
        authzid: if authzid.is_empty() {
            None
        } else {
            Some(text(authzid)?)
        },
        authcid: text(authcid)?,
        password: text(password)?,
    })
}

/// RFC 4616 §2: acting as another identity needs authorization; we allow
/// only the identity itself (an authzid equal to the authcid, case aside).
pub fn authzid_allowed(c: &Credentials) -> bool {
    match &c.authzid {
        None => true,
        Some(z) => z.eq_ignore_ascii_case(&c.authcid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let c = parse(b"\0jerry@example.test\0secret").unwrap();
        assert_eq!(c.authzid, None);
        assert_eq!(c.authcid, "jerry@example.test");
        assert_eq!(c.password, "secret");
        assert!(authzid_allowed(&c));
        let c = parse(b"admin\0jerry\0s3cr\xc3\xa9t").unwrap();
        assert_eq!(c.authzid.as_deref(), Some("admin"));
        assert_eq!(c.password, "s3cr\u{e9}t");
        assert!(!authzid_allowed(&c));
        assert!(authzid_allowed(&parse(b"Jerry\0jerry\0x").unwrap()));
        for bad in [
            &b"jerry\0secret"[..],
            b"\0\0secret",
            b"\0jerry\0",
            b"\0jerry\0se\0cret",
            b"\0jer\xffry\0secret",
            b"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let long = [b"\0".as_slice(), &[b'a'; 256], b"\0x"].concat();
        assert!(parse(&long).is_err());
    }
}
