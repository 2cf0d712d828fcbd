//! The values of the MIME header fields (RFC 2045 §5, RFC 2183, RFC 2231,
//! RFC 3282), parsed as Dovecot 2.3 parses them for BODYSTRUCTURE.
//!
//! Everything is kept as written: type, subtype, parameter names and
//! values keep their case (`"TEXT" "PLAIN" ("CHARSET" "US-ASCII")`, as
//! in RFC 3501's own examples), quoted strings lose their quotes and
//! backslashes, encoded words (RFC 2047) are not decoded.
//!
//! Parameters (`; name=value`):
//! - a value is a token or a quoted string, and may be empty (`a=`);
//!   a name may be empty (`=x` is the parameter `""` = `x`);
//! - whatever follows a value up to the next `;` is skipped
//!   (`boundary=----=_Part_1` is the boundary `----`, as in Dovecot);
//! - a name without `=` (`; bare`, `;;`) or an unterminated quoted string
//!   ends the list;
//! - RFC 2231: `name*0`, `name*1*`, ... are joined in their numeric order
//!   when every number from 0 is there; the result is `name` with the
//!   values joined, or, when a section is extended (`*` at the end),
//!   `name*` with the raw `charset'language'%XX` text joined (an
//!   extended value with no charset part gets `''` in front). Nothing is
//!   percent-decoded or converted: IMAP clients decode `name*` values
//!   themselves, as they do with Dovecot. An incomplete set keeps each
//!   section under its own name. These parameters come after the plain
//!   ones, sorted by name (Dovecot sorts them to join them).

use super::header::unfold;

/// A `name=value` parameter of Content-Type or Content-Disposition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// As written (RFC 2231 joins give `name` or `name*`).
    pub name: Vec<u8>,
    /// Unquoted, unescaped, otherwise as written.
    pub value: Vec<u8>,
}

/// RFC 2045 §5.1 tspecials, plus space and controls.
fn is_token(b: u8) -> bool {
    b > b' ' && b != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

/// A cursor over an unfolded field value.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// White space and comments (RFC 5322 CFWS).
    fn cfws(&mut self) {
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\t' {
                self.i += 1;
            } else if b == b'(' {
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    self.i += 1;
                    match c {
                        b'\\' => self.i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                self.i = self.i.min(self.s.len());
            } else {
                break;
            }
        }
    }

    fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(is_token) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// A quoted string at the cursor; `None` when it does not end.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        let mut out = Vec::new();
        let mut i = self.i + 1;
        while i < self.s.len() {
            match self.s[i] {
                b'"' => {
                    self.i = i + 1;
                    return Some(out);
                }
                b'\\' if i + 1 < self.s.len() => {
                    out.push(self.s[i + 1]);
                    i += 2;
                    continue;
                }
                b => out.push(b),
            }
            i += 1;
        }
        None
    }

    /// Skip to the next `;` (or the end), stepping over quoted strings.
    fn skip_to_semicolon(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b';' => return,
                b'"' => {
                    if self.quoted().is_none() {
                        self.i = self.s.len();
                    }
                }
                b'(' => self.cfws(),
                _ => self.i += 1,
            }
        }
    }
}

/// Content-Type: `Some((type, subtype, params))`, or `None` when the
/// value is not one Dovecot accepts (then BODYSTRUCTURE shows `"" ""` and
/// no parameters). `text` alone is the type `text` with an empty subtype.
pub fn content_type(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Vec<Param>)> {
    let s = unfold(value);
    let mut c = Cursor { s: &s, i: 0 };
    c.cfws();
    let media = c.token().to_vec();
    if media.is_empty() {
        return None;
    }
    c.cfws();
    if c.peek().is_none() {
        return Some((media, Vec::new(), Vec::new()));
    }
    if c.peek() != Some(b'/') {
        return None;
    }
    c.i += 1;
    c.cfws();
    let sub = c.token().to_vec();
    if sub.is_empty() {
        return None;
    }
    let params = params(&mut c);
    Some((media, sub, params))
}

/// Content-Disposition: the type (empty when it is not a token, or when
/// the value is empty) and the parameters.
pub fn disposition(value: &[u8]) -> (Vec<u8>, Vec<Param>) {
    let s = unfold(value);
    let mut c = Cursor { s: &s, i: 0 };
    c.cfws();
    let kind = c.token().to_vec();
    let params = params(&mut c);
    (kind, params)
}

/// Content-Language (RFC 3282): the tags up to the first thing that is
/// not one; `None` when there is none.
pub fn languages(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let s = unfold(value);
    let mut c = Cursor { s: &s, i: 0 };
    let mut out = Vec::new();
    loop {
        c.cfws();
        let tag = c.token();
        if tag.is_empty() {
            break;
        }
        out.push(tag.to_vec());
        c.cfws();
        if c.peek() != Some(b',') {
            break;
        }
        c.i += 1;
    }
    if out.is_empty() { None } else { Some(out) }
}

fn params(c: &mut Cursor<'_>) -> Vec<Param> {
    let mut plain = Vec::new();
    c.skip_to_semicolon();
    loop {
        c.cfws();
        if c.peek() != Some(b';') {
            break;
        }
        c.i += 1;
        c.cfws();
        let name = c.token().to_vec();
        c.cfws();
        if c.peek() != Some(b'=') {
            break;
        }
        c.i += 1;
        c.cfws();
        let value = if c.peek() == Some(b'"') {
            match c.quoted() {
                Some(v) => v,
                None => break,
            }
        } else {
            c.token().to_vec()
        };
        plain.push(Param { name, value });
        c.skip_to_semicolon();
    }
    rfc2231(plain)
}

/// A parameter name as RFC 2231 reads it: (base, section number, extended).
fn split_2231(name: &[u8]) -> Option<(&[u8], Option<u32>, bool)> {
    let star = name.iter().position(|&b| b == b'*')?;
    let base = &name[..star];
    let rest = &name[star + 1..];
    if rest.is_empty() {
        return Some((base, None, true));
    }
    let (digits, extended) = match rest.strip_suffix(b"*") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 6 {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((base, Some(n), extended))
}

/// Joins RFC 2231 continuations (see the module doc).
fn rfc2231(params: Vec<Param>) -> Vec<Param> {
    if !params.iter().any(|p| p.name.contains(&b'*')) {
        return params;
    }
    let mut plain = Vec::new();
    let mut starred = Vec::new();
    for p in params {
        match split_2231(&p.name) {
            Some((base, n, ext)) => starred.push((base.to_ascii_lowercase(), n, ext, p)),
            None => plain.push(p),
        }
    }
    // Dovecot sorts them by name, then by section
    starred.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut i = 0;
    while i < starred.len() {
        let mut j = i;
        while j < starred.len() && starred[j].0 == starred[i].0 {
            j += 1;
        }
        let group = &starred[i..j];
        let numbered: Vec<_> = group.iter().filter(|s| s.1.is_some()).collect();
        let complete = !numbered.is_empty()
            && numbered
                .iter()
                .enumerate()
                .all(|(k, s)| s.1 == Some(k as u32));
        for s in group.iter().filter(|s| s.1.is_none() || !complete) {
            plain.push(s.3.clone());
        }
        if complete {
            let extended = numbered.iter().any(|s| s.2);
            let mut value = Vec::new();
            if extended && !numbered[0].2 {
                value.extend_from_slice(b"''");
            }
            for s in &numbered {
                value.extend_from_slice(&s.3.value);
            }
            let first = &numbered[0].3.name;
            let mut name =
                first[..first.iter().position(|&b| b == b'*').unwrap_or(first.len())].to_vec();
            if extended {
                name.push(b'*');
            }
            plain.push(Param { name, value });
        }
        i = j;
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[Param]) -> Vec<(String, String)> {
        list.iter()
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.name).into_owned(),
                    String::from_utf8_lossy(&p.value).into_owned(),
                )
            })
            .collect()
    }

    type Parsed = (String, String, Vec<(String, String)>);

    fn ct(v: &str) -> Option<Parsed> {
        content_type(v.as_bytes()).map(|(t, s, ps)| {
            (
                String::from_utf8(t).unwrap(),
                String::from_utf8(s).unwrap(),
                p(&ps),
            )
        })
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn types_as_written() {
        assert_eq!(
            ct("TEXT/PLAIN; CHARSET=US-ASCII"),
            Some((
                "TEXT".into(),
                "PLAIN".into(),
                pairs(&[("CHARSET", "US-ASCII")])
            ))
        );
        assert_eq!(ct("text"), Some(("text".into(), "".into(), vec![])));
        assert_eq!(ct("text; charset=x"), None);
        assert_eq!(ct("image/"), None);
        assert_eq!(ct("; charset=x"), None);
        assert_eq!(ct("\"text/plain\""), None);
        assert_eq!(ct("te xt/plain"), None);
        assert_eq!(ct(""), None);
        assert_eq!(
            ct("text/plain (c) ; charset = \"iso-8859-1\" (d)"),
            Some((
                "text".into(),
                "plain".into(),
                pairs(&[("charset", "iso-8859-1")])
            ))
        );
    }

    #[test]
    fn parameter_oddities() {
        let v = |s: &str| ct(s).unwrap().2;
        assert_eq!(
            v("a/b; boundary=----=_Part_0_1.2"),
            pairs(&[("boundary", "----")])
        );
        assert_eq!(v("a/b; a=b c; d=e"), pairs(&[("a", "b"), ("d", "e")]));
        assert_eq!(v("a/b; x=1;; y=2"), pairs(&[("x", "1")]));
        assert_eq!(
            v("a/b; e=\"\"; =n; bare; z=1"),
            pairs(&[("e", ""), ("", "n")])
        );
        assert_eq!(v("a/b; c=; a=b"), pairs(&[("c", ""), ("a", "b")]));
        assert_eq!(v("a/b; c=\"open"), pairs(&[]));
        assert_eq!(
            v("a/b; q=\"x\\\"y\"; f=\"a\r\n b\""),
            pairs(&[("q", "x\"y"), ("f", "a b")])
        );
    }

    #[test]
    fn rfc2231_continuations() {
        let v = |s: &str| ct(s).unwrap().2;
        assert_eq!(v("a/b; t*1=\"b\"; t*0=\"a\""), pairs(&[("t", "ab")]));
        assert_eq!(
            v("a/b; t*0=\"a\"; t*2=\"c\""),
            pairs(&[("t*0", "a"), ("t*2", "c")])
        );
        assert_eq!(
            v("a/b; t*0=\"first \"; t*1=\"second\"; t*2*=%20third"),
            pairs(&[("t*", "''first second%20third")])
        );
        assert_eq!(
            v("a/b; f*0*=UTF-8'en'%E2%82%AC; f*1=\" x.pdf\"; size=1"),
            pairs(&[("size", "1"), ("f*", "UTF-8'en'%E2%82%AC x.pdf")])
        );
        assert_eq!(
            v("a/b; n=\"x\"; n*=utf-8''y"),
            pairs(&[("n", "x"), ("n*", "utf-8''y")])
        );
    }

    #[test]
    fn disposition_and_language() {
        let d = |s: &str| {
            let (k, ps) = disposition(s.as_bytes());
            (String::from_utf8(k).unwrap(), p(&ps))
        };
        assert_eq!(
            d("attachment; filename=x"),
            ("attachment".into(), pairs(&[("filename", "x")]))
        );
        assert_eq!(
            d("\"attachment\"; filename=x"),
            ("".into(), pairs(&[("filename", "x")]))
        );
        assert_eq!(d("attachment filename=x"), ("attachment".into(), vec![]));
        assert_eq!(d("  "), ("".into(), vec![]));
        let l = |s: &str| {
            languages(s.as_bytes()).map(|v| {
                v.into_iter()
                    .map(|t| String::from_utf8(t).unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(l("en-US, (c) en"), Some(vec!["en-US".into(), "en".into()]));
        assert_eq!(l("en,,de"), Some(vec!["en".into()]));
        assert_eq!(l("\"en\""), None);
        assert_eq!(l(""), None);
    }
}
