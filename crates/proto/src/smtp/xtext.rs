//! xtext (RFC 3461 §4): printable ASCII except `+` and `=`, with other
//! bytes written as `+` and two upper-case hex digits.

/// Whether `s` is valid xtext.
pub fn is_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if i + 2 >= b.len() {
                    return false;
                }
                if !(hex(b[i + 1]) && hex(b[i + 2])) {
                    return false;
                }
                i += 3;
            }
            33..=126 if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Decodes xtext; `None` when it is not valid.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !is_valid(s) {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Encodes bytes as xtext.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert!(is_valid("QQ+2B314"));
        assert!(is_valid("a"));
        assert!(!is_valid("a+b"));
        assert!(!is_valid("a+2"));
        assert!(!is_valid("a+"));
        assert!(!is_valid("a=b"));
        assert!(!is_valid("a b"));
        assert!(!is_valid("+2b"));
        assert_eq!(decode("b+40example.test").unwrap(), b"b@example.test");
        assert_eq!(encode(b"a+b=c d"), "a+2Bb+3Dc+20d");
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = encode(&bytes);
            prop_assert!(is_valid(&e));
            prop_assert_eq!(decode(&e).unwrap(), bytes);
        }
    }
}
