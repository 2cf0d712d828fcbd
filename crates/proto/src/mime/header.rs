//! Header fields as stored (RFC 5322 §2.2): names, values and folding,
//! with Dovecot's reading of the odd cases.
//!
//! A field is a line that does not start with white space, plus the
//! continuation lines that do (RFC 5322 §2.2.3). The header ends at the
//! first empty line. Lines may end in CRLF or a bare LF.
//!
//! What Dovecot 2.3 does, and this module repeats:
//! - the name is what comes before the colon, trailing white space removed
//!   (`From : a@b` is a From field); a line without a colon is a field with
//!   that name and no value (it is kept by `HEADER` and `HEADER.FIELDS.NOT`);
//! - the value starts after the colon with the white space that follows it
//!   skipped, when the first line has something else after it; when the
//!   first line has only white space after the colon, exactly one white
//!   space character is skipped (`Message-ID:   ` is two spaces);
//! - trailing white space is kept (`<id>   ` stays so);
//! - unfolding ([`unfold`]) removes the CR and LF of every line end and
//!   keeps the white space that starts the next line; a bare CR becomes a
//!   space.

/// One header field as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// All its lines, with their line ends.
    pub raw: &'a [u8],
    /// The name (see the module doc); the whole first line when there is
    /// no colon.
    pub name: &'a [u8],
    /// The value as stored: folding line ends kept, the final line end
    /// left out. Empty when there is no colon.
    pub value: &'a [u8],
    /// Whether the first line has a colon.
    pub has_colon: bool,
}

/// The fields of a header (the bytes of a header as [`crate::mime::Part`]
/// ranges give them); stops at the empty line.
pub fn fields(header: &[u8]) -> Fields<'_> {
    Fields { rest: header }
}

/// Iterator returned by [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

/// The length of the line at the start of `data`, with its line end.
pub(crate) fn line_len(data: &[u8]) -> usize {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => data.len(),
    }
}

/// The length of a line without its line end (`\n` or `\r\n`).
pub(crate) fn content_len(line: &[u8]) -> usize {
    let mut n = line.len();
    if n > 0 && line[n - 1] == b'\n' {
        n -= 1;
        if n > 0 && line[n - 1] == b'\r' {
            n -= 1;
        }
    }
    n
}

pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let data = self.rest;
        if data.is_empty() {
            return None;
        }
        let first = line_len(data);
        if content_len(&data[..first]) == 0 {
            // the empty line that ends the header
            self.rest = &[];
            return None;
        }
        let mut end = first;
        while end < data.len() && is_wsp(data[end]) {
            end += line_len(&data[end..]);
        }
        let raw = &data[..end];
        self.rest = &data[end..];
        let first_line = &raw[..content_len(&raw[..first])];
        let Some(colon) = first_line.iter().position(|&b| b == b':') else {
            return Some(Field {
                raw,
                name: first_line,
                value: &[],
                has_colon: false,
            });
        };
        let mut name = &first_line[..colon];
        while let [rest @ .., last] = name {
            if !is_wsp(*last) {
                break;
            }
            name = rest;
        }
        let mut start = colon + 1;
        let after = &first_line[start..];
        if after.iter().any(|&b| !is_wsp(b)) {
            while is_wsp(raw[start]) {
                start += 1;
            }
        } else if !after.is_empty() {
            start += 1;
        }
        let value = &raw[start..content_len(raw).max(start)];
        Some(Field {
            raw,
            name,
            value,
            has_colon: true,
        })
    }
}

/// The value of a field with its line ends removed (RFC 5322 §2.2.3
/// unfolding, as Dovecot does it; see the module doc).
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\n' => {}
            b'\r' if value.get(i + 1) == Some(&b'\n') => {}
            b'\r' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The value of the last field named `name` (case-insensitive), as the
/// envelope takes it.
pub(crate) fn last_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    fields(header)
        .filter(|f| f.has_colon && f.name.eq_ignore_ascii_case(name))
        .last()
        .map(|f| f.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(h: &[u8]) -> Vec<(&[u8], &[u8])> {
        fields(h).map(|f| (f.name, f.value)).collect()
    }

    #[test]
    fn names_values_and_folding() {
        let h = b"Subject: a\r\n b\r\nFrom : x@y\nTo:z\n\nbody";
        assert_eq!(
            all(h),
            vec![
                (&b"Subject"[..], &b"a\r\n b"[..]),
                (b"From", b"x@y"),
                (b"To", b"z")
            ]
        );
        assert_eq!(unfold(b"a\r\n b\n\tc\rd"), b"a b\tc d");
    }

    #[test]
    fn leading_white_space() {
        let h = b"A:    x  \nB:   \nC:\t\nD: \nE:\n  y\n";
        assert_eq!(
            all(h),
            vec![
                (&b"A"[..], &b"x  "[..]),
                (b"B", b"  "),
                (b"C", b""),
                (b"D", b""),
                (b"E", b"\n  y"),
            ]
        );
    }

    #[test]
    fn lines_without_colon_and_leading_continuation() {
        let h = b" lead\nNo colon\nX: 1\n";
        let f: Vec<_> = fields(h).collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].raw, b" lead\n");
        assert!(!f[1].has_colon);
        assert_eq!(f[1].name, b"No colon");
        assert_eq!(last_value(h, b"x"), Some(&b"1"[..]));
    }

    #[test]
    fn header_without_line_end() {
        assert_eq!(
            all(b"A: 1\nB: 2"),
            vec![(&b"A"[..], &b"1"[..]), (b"B", b"2")]
        );
    }
}
