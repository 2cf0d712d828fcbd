//! Envelope addresses in MAIL FROM and RCPT TO (RFC 5321 §4.1.2), read the
//! way Postfix reads them: angle brackets optional, source routes
//! (`<@a,@b:user@c>`) dropped, quoted local parts kept quoted, address
//! literals (`user@[192.0.2.1]`) allowed, 8-bit (UTF-8) text allowed.
//!
//! Rewriting (appending @$myorigin to `root`, case of the domain, routing
//! operators such as `%` and `!`) is not done here: that belongs to the
//! server's address resolver, which sees the result.

/// An envelope address as the client gave it, without brackets or source
/// route; empty for the null sender `<>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address(String);

/// The address could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

impl Address {
    /// `<>`.
    pub fn null() -> Address {
        Address(String::new())
    }

    pub fn is_null(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The domain part (after the last `@` outside quotes), if any.
    pub fn domain(&self) -> Option<&str> {
        split_at_domain(&self.0).map(|i| &self.0[i + 1..])
    }
}

/// The index of the `@` that starts the domain, ignoring `@` inside quotes.
fn split_at_domain(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    let mut at = None;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b'@' if !quoted => at = Some(i),
            _ => {}
        }
    }
    at
}

/// Reads a path: `<address>`, `<>`, `<@route:address>`, or a bare address.
pub fn parse_path(token: &str) -> Result<Address, BadAddress> {
    let inner = match token.strip_prefix('<') {
        Some(rest) => rest.strip_suffix('>').ok_or(BadAddress)?,
        None => {
            if token.ends_with('>') {
                return Err(BadAddress);
            }
            token
        }
    };
    if inner.is_empty() {
        return Ok(Address::null());
    }
    // A source route: `@a,@b:` before the mailbox (RFC 5321 §4.1.2,
    // C.2); it is ignored, as RFC 5321 §3.6.1 allows.
    let mailbox = if inner.starts_with('@') {
        let colon = inner.find(':').ok_or(BadAddress)?;
        let route = &inner[..colon];
        for hop in route.split(',') {
            let host = hop.strip_prefix('@').ok_or(BadAddress)?;
            if !valid_domain(host) {
                return Err(BadAddress);
            }
        }
        &inner[colon + 1..]
    } else {
        inner
    };
    if mailbox.is_empty() {
        return Err(BadAddress);
    }
    let (local, domain) = match split_at_domain(mailbox) {
        Some(i) => (&mailbox[..i], Some(&mailbox[i + 1..])),
        None => (mailbox, None),
    };
    if !valid_local(local) {
        return Err(BadAddress);
    }
    if let Some(d) = domain
        && !valid_domain(d)
    {
        return Err(BadAddress);
    }
    Ok(Address(mailbox.to_string()))
}

/// A local part: atoms separated by dots, or quoted strings, or a mix (as
/// Postfix accepts `a."b c".d`); no unquoted white space, controls or
/// specials.
fn valid_local(local: &str) -> bool {
    if local.is_empty() {
        return false;
    }
    let mut quoted = false;
    let mut escaped = false;
    for ch in local.chars() {
        if escaped {
            escaped = false;
            if ch.is_control() && ch != '\t' {
                return false;
            }
            continue;
        }
        match ch {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_control() => return false,
            ' ' | '\t' if !quoted => return false,
            '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' if !quoted => return false,
            _ => {}
        }
    }
    !quoted && !escaped
}

/// A domain: a host name (letters, digits, `-`, `_`, UTF-8; dot-separated
/// non-empty labels; one trailing dot tolerated) or an address literal.
pub fn valid_domain(d: &str) -> bool {
    if let Some(lit) = d.strip_prefix('[') {
        let Some(lit) = lit.strip_suffix(']') else {
            return false;
        };
        if let Some(v6) = lit
            .strip_prefix("IPv6:")
            .or_else(|| lit.strip_prefix("ipv6:"))
        {
            return v6.parse::<std::net::Ipv6Addr>().is_ok();
        }
        return lit.parse::<std::net::Ipv4Addr>().is_ok();
    }
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() || d.len() > 255 {
        return false;
    }
    d.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let ok = |t: &str| parse_path(t).map(Address::into_string);
        assert_eq!(ok("<jerry@example.test>"), Ok("jerry@example.test".into()));
        assert_eq!(ok("jerry"), Ok("jerry".into()));
        assert_eq!(ok("<>"), Ok("".into()));
        assert_eq!(ok("<@a,@b.example:u@c>"), Ok("u@c".into()));
        assert_eq!(ok("<\"a b\"@x>"), Ok("\"a b\"@x".into()));
        assert_eq!(ok("<\"a@b\"@x>").unwrap(), "\"a@b\"@x");
        assert_eq!(
            ok("<u@[IPv6:2001:db8::1]>"),
            Ok("u@[IPv6:2001:db8::1]".into())
        );
        assert_eq!(
            ok("<jérôme@exämple.test>"),
            Ok("jérôme@exämple.test".into())
        );
        assert_eq!(ok("<u@example.test.>"), Ok("u@example.test.".into()));
        assert_eq!(ok("<u%v@example.test>"), Ok("u%v@example.test".into()));
        for bad in [
            "<a@b",
            "a@b>",
            "<a b@c>",
            "<a@>",
            "<@>",
            "<a@b..c>",
            "<a@[300.1.1.1]>",
            "<\"open@x>",
            "<a\u{1}b@c>",
            "<@a:>",
            "<a,b@c>",
            "<@a@b>",
        ] {
            assert_eq!(parse_path(bad), Err(BadAddress), "{bad}");
        }
        assert_eq!(parse_path("<\"q@x\"@dom>").unwrap().domain(), Some("dom"));
    }
}
