//! Modified UTF-7 (RFC 3501 §5.1.3), the form of mailbox names on the
//! wire unless UTF8=ACCEPT (RFC 6855) or IMAP4rev2 (RFC 9051 §5.1) is
//! enabled.
//!
//! The rules: printable US-ASCII (0x20..=0x7e) stands for itself, except
//! `&`, which is written `&-`; every other character is written as UTF-16
//! (surrogate pairs for characters past the BMP) in a variant of base64
//! with `,` instead of `/` and no padding, between `&` and `-`.
//!
//! [`decode`] accepts only what [`encode`] produces, so that one name has
//! one spelling (RFC 3501: "&Jjo!" and "&U,BTFw-&ZeVnLIqe-" are not
//! permitted): no raw 8-bit or control octets, no printable US-ASCII
//! inside a shift, no two shifts in a row, no bits left over that are not
//! zero or that make a whole octet, no unpaired surrogates, and every
//! shift ended by `-`.

use std::fmt;

/// A name that is not valid modified UTF-7; `at` is the octet offset of
/// the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf7 {
    pub at: usize,
}

impl fmt::Display for InvalidUtf7 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid modified UTF-7 at octet {}", self.at)
    }
}

impl std::error::Error for InvalidUtf7 {}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn sextet(b: u8) -> Option<u32> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    } as u32)
}

/// Appends the shifted form of `units` (UTF-16 code units): `&`, modified
/// base64, `-`.
fn push_shifted(out: &mut String, units: &[u16]) {
    out.push('&');
    let mut bits: u32 = 0;
    let mut nbits = 0;
    for &u in units {
        bits = (bits << 16) | u32::from(u);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 0x3f) as usize] as char);
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize] as char);
    }
    out.push('-');
}

/// The modified UTF-7 form of a name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            if !units.is_empty() {
                push_shifted(&mut out, &units);
                units.clear();
            }
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    if !units.is_empty() {
        push_shifted(&mut out, &units);
    }
    out
}

/// The name a modified UTF-7 form stands for.
pub fn decode(wire: &[u8]) -> Result<String, InvalidUtf7> {
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    // Whether the previous octets were a shift (not `&-`): a shift may
    // not follow another directly.
    let mut after_shift = false;
    while i < wire.len() {
        let b = wire[i];
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(InvalidUtf7 { at: i });
            }
            out.push(b as char);
            after_shift = false;
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if wire.get(i) == Some(&b'-') {
            out.push('&');
            after_shift = false;
            i += 1;
            continue;
        }
        if after_shift {
            return Err(InvalidUtf7 { at: start });
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units: Vec<u16> = Vec::new();
        loop {
            let Some(&c) = wire.get(i) else {
                return Err(InvalidUtf7 { at: i });
            };
            if c == b'-' {
                break;
            }
            let Some(v) = sextet(c) else {
                return Err(InvalidUtf7 { at: i });
            };
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
            i += 1;
        }
        // Left-over bits: fewer than 6, all zero.
        if nbits >= 6 || bits != 0 || units.is_empty() {
            return Err(InvalidUtf7 { at: i });
        }
        for r in char::decode_utf16(units.iter().copied()) {
            match r {
                Ok(c) if (' '..='~').contains(&c) => return Err(InvalidUtf7 { at: start }),
                Ok(c) => out.push(c),
                Err(_) => return Err(InvalidUtf7 { at: start }),
            }
        }
        i += 1; // the '-'
        after_shift = true;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3501_examples() {
        // RFC 3501 §5.1.3.
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"
        );
        assert_eq!(
            encode("~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        // "&Jjo!" is not permitted: the shift is not ended.
        assert!(decode(b"&Jjo!").is_err());
        // Two shifts in a row are not permitted.
        assert!(decode(b"&U,BTFw-&ZeVnLIqe-").is_err());
        // The ampersand.
        assert_eq!(decode(b"&-").unwrap(), "&");
        assert_eq!(encode("&"), "&-");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode(b"Tom &- Jerry").unwrap(), "Tom & Jerry");
        // A shift after &- is fine.
        assert_eq!(decode(b"&-&AOk-").unwrap(), "&\u{e9}");
        assert_eq!(encode("&\u{e9}"), "&-&AOk-");
    }

    #[test]
    fn common_names() {
        // Dovecot/Thunderbird spellings of localised folder names.
        assert_eq!(encode("Entw\u{fc}rfe"), "Entw&APw-rfe");
        assert_eq!(decode(b"Entw&APw-rfe").unwrap(), "Entw\u{fc}rfe");
        assert_eq!(encode("Gel\u{f6}scht"), "Gel&APY-scht");
        assert_eq!(encode("\u{e9}l\u{e9}ments"), "&AOk-l&AOk-ments");
        assert_eq!(
            encode("\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}"),
            "&BB8EQAQ4BDIENQRC-"
        );
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn non_bmp_through_surrogates() {
        // U+1F600 is D83D DE00 in UTF-16.
        assert_eq!(encode("\u{1f600}"), "&2D3eAA-");
        assert_eq!(decode(b"&2D3eAA-").unwrap(), "\u{1f600}");
        assert_eq!(encode("a\u{1f4e7}b"), "a&2D3c5w-b");
        assert_eq!(decode(b"a&2D3c5w-b").unwrap(), "a\u{1f4e7}b");
        // A lone high surrogate, a lone low one.
        assert!(decode(b"&2D0-").is_err());
        assert!(decode(b"&3gA-").is_err());
    }

    #[test]
    fn rejects_non_canonical_forms() {
        // Raw 8-bit and control octets.
        assert!(decode("Entw\u{fc}rfe".as_bytes()).is_err());
        assert!(decode(b"a\tb").is_err());
        // Printable ASCII inside a shift ("A" is AEE).
        assert!(decode(b"&AEE-").is_err());
        // Bad base64 character, '/' instead of ','.
        assert!(decode(b"&U/BTFw-").is_err());
        // Non-zero left-over bits: "&AOl-" has bits set past U+00E9.
        assert!(decode(b"&AOl-").is_err());
        // A whole octet left over (AOkA: 24 bits, one unit + 8 bits).
        assert!(decode(b"&AOkA-").is_err());
        // An empty shift is only the ampersand form.
        assert!(decode(b"&").is_err());
        assert!(decode(b"abc&").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(name in any::<String>()) {
            let wire = encode(&name);
            prop_assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(wire.as_bytes()).unwrap(), name);
        }

        #[test]
        fn decode_is_canonical(bytes in proptest::collection::vec(
            prop_oneof![Just(b'&'), Just(b'-'), Just(b'A'), Just(b'O'), Just(b'k'),
                        Just(b','), Just(b'2'), Just(b'D'), Just(b'x'), Just(b'\xc3')], 0..24)) {
            // Whatever decodes, encodes back to the same octets.
            if let Ok(name) = decode(&bytes) {
                let again = encode(&name);
                prop_assert_eq!(again.as_bytes(), &bytes[..]);
            }
        }
    }
}
