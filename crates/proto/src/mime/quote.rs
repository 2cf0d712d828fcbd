//! IMAP strings as ENVELOPE and BODYSTRUCTURE carry them (RFC 3501 §4.3,
//! §9 `nstring`), chosen as Dovecot 2.3 chooses them.
//!
//! This is a private encoder, kept here so that the MIME code depends on
//! nothing else; the general one belongs to the IMAP response encoder
//! (`crate::imap`), and the two should be unified once both settle.
//!
//! - [`nstring`]: `NIL`, a quoted string (`"` and `\` escaped), or a literal
//!   `{n}\r\n...` when the bytes hold 8-bit characters, CR, LF or NUL.
//! - [`human`]: Dovecot's form for the texts people read (the subject and
//!   display names): runs of white space, CR and LF become one space, and
//!   leading and trailing white space go; the result is sent as a literal
//!   when that changed anything or when it holds `"`, `\` or 8-bit
//!   characters, else quoted; an empty result is `""`.

/// `NIL`, a quoted string or a literal.
pub(crate) fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string(out, s),
    }
}

/// A quoted string or a literal.
pub(crate) fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter()
        .any(|&b| b >= 0x80 || b == b'\r' || b == b'\n' || b == 0)
    {
        literal(out, s);
    } else {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The text people read, in Dovecot's form (see the module doc).
pub(crate) fn human(out: &mut Vec<u8>, s: Option<&[u8]>) {
    let Some(s) = s else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let mut text = Vec::with_capacity(s.len());
    let mut space = false;
    for &b in s {
        if is_space(b) {
            space = true;
            continue;
        }
        if space && !text.is_empty() {
            text.push(b' ');
        }
        space = false;
        text.push(b);
    }
    if text.is_empty() {
        out.extend_from_slice(b"\"\"");
    } else if text != s
        || text
            .iter()
            .any(|&b| b >= 0x80 || b == b'"' || b == b'\\' || b == 0)
    {
        literal(out, &text);
    } else {
        out.push(b'"');
        out.extend_from_slice(&text);
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: Option<&[u8]>) -> Vec<u8> {
        let mut v = Vec::new();
        nstring(&mut v, s);
        v
    }

    fn h(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        human(&mut v, Some(s));
        v
    }

    #[test]
    fn strings() {
        assert_eq!(n(None), b"NIL");
        assert_eq!(n(Some(b"")), b"\"\"");
        assert_eq!(n(Some(b"<q\"uote@x>")), b"\"<q\\\"uote@x>\"");
        assert_eq!(n(Some(b"a\tb")), b"\"a\tb\"");
        assert_eq!(n(Some("é".as_bytes())), b"{2}\r\n\xc3\xa9");
    }

    #[test]
    fn texts_for_people() {
        assert_eq!(h(b"hi"), b"\"hi\"");
        assert_eq!(h(b"a  b"), b"{3}\r\na b");
        assert_eq!(h(b"a\tb"), b"{3}\r\na b");
        assert_eq!(h(b"trailing "), b"{8}\r\ntrailing");
        assert_eq!(h(b"\r\n b"), b"{1}\r\nb");
        assert_eq!(h(b"   "), b"\"\"");
        assert_eq!(h(b"x\"y"), b"{3}\r\nx\"y");
        assert_eq!(h(b"\\"), b"{1}\r\n\\");
        assert_eq!(h(b"{5}"), b"\"{5}\"");
        assert_eq!(h(b"a\x01b"), b"\"a\x01b\"");
    }
}
