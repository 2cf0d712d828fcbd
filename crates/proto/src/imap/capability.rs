//! The capability list (RFC 9051 §7.2.2): what CAPABILITY, the greeting's
//! `[CAPABILITY ...]` and the tagged OK of LOGIN/AUTHENTICATE say.
//!
//! The order is Dovecot 2.3's (`CAPABILITY_BANNER_STRING` and the
//! post-login list in `src/imap/imap-client.h`) for what both offer,
//! with ours added where Dovecot puts its own: before login
//! `IMAP4rev1 [IMAP4rev2] SASL-IR ID ENABLE IDLE LITERAL+ [STARTTLS]
//! [LOGINDISABLED] AUTH=...`; after login the whole list of extensions.
//! Dovecot's LOGIN-REFERRALS, CATENATE, URL-PARTIAL, CONTEXT=SEARCH,
//! ESORT, NOTIFY, SNIPPET, PREVIEW, SAVEDATE and I18NLEVEL are not
//! offered: this layer does not parse them.

/// What the list depends on. `Default` is the list after login with
/// nothing optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities<'a> {
    /// Logged in: the whole list (before: the banner's short one).
    pub authenticated: bool,
    /// `IMAP4rev2` beside `IMAP4rev1`.
    pub rev2: bool,
    /// `STARTTLS` (before login, without TLS).
    pub starttls: bool,
    /// `LOGINDISABLED`: LOGIN is refused here (plaintext before TLS).
    pub login_disabled: bool,
    /// `AUTH=mech` for each, before login.
    pub auth: &'a [&'a str],
    /// `LITERAL-` (RFC 7888 §5) instead of `LITERAL+`.
    pub literal_minus: bool,
    /// `COMPRESS=DEFLATE` (RFC 4978), after login.
    pub compress: bool,
    /// `QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE` (RFC 9208).
    pub quota: bool,
    /// `APPENDLIMIT=n` (RFC 7889); `Some(None)` for a bare `APPENDLIMIT`
    /// (limits per mailbox, in STATUS).
    pub append_limit: Option<Option<u64>>,
    /// `UTF8=ACCEPT` (RFC 6855).
    pub utf8_accept: bool,
    /// More capabilities, at the end.
    pub extra: &'a [&'a str],
}

/// The extensions after login, in order (Dovecot's order for those it
/// has).
const AFTER_LOGIN: [&str; 24] = [
    "SORT",
    "SORT=DISPLAY",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "THREAD=ORDEREDSUBJECT",
    "MULTIAPPEND",
    "UNSELECT",
    "CHILDREN",
    "NAMESPACE",
    "UIDPLUS",
    "LIST-EXTENDED",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "SEARCHRES",
    "WITHIN",
    "LIST-STATUS",
    "BINARY",
    "MOVE",
    "STATUS=SIZE",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "ENABLE",
    "IDLE",
];

/// The capability list, space-separated, without `* CAPABILITY`.
pub fn capabilities(c: &Capabilities<'_>) -> String {
    let mut caps: Vec<String> = vec!["IMAP4rev1".into()];
    if c.rev2 {
        caps.push("IMAP4rev2".into());
    }
    caps.push("SASL-IR".into());
    caps.push("ID".into());
    let literal = if c.literal_minus {
        "LITERAL-"
    } else {
        "LITERAL+"
    };
    if c.authenticated {
        caps.extend(AFTER_LOGIN.iter().map(|s| s.to_string()));
        caps.push(literal.into());
        if c.quota {
            caps.extend(["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"].map(String::from));
        }
        match c.append_limit {
            Some(Some(n)) => caps.push(format!("APPENDLIMIT={n}")),
            Some(None) => caps.push("APPENDLIMIT".into()),
            None => {}
        }
        if c.utf8_accept {
            caps.push("UTF8=ACCEPT".into());
        }
        if c.compress {
            caps.push("COMPRESS=DEFLATE".into());
        }
    } else {
        caps.extend(["ENABLE", "IDLE", literal].map(String::from));
        if c.starttls {
            caps.push("STARTTLS".into());
        }
        if c.login_disabled {
            caps.push("LOGINDISABLED".into());
        }
        caps.extend(c.auth.iter().map(|m| format!("AUTH={m}")));
    }
    caps.extend(c.extra.iter().map(|s| s.to_string()));
    caps.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_login() {
        assert_eq!(
            capabilities(&Capabilities {
                starttls: true,
                auth: &["PLAIN", "LOGIN"],
                ..Default::default()
            }),
            "IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN"
        );
        assert_eq!(
            capabilities(&Capabilities {
                rev2: true,
                starttls: true,
                login_disabled: true,
                literal_minus: true,
                auth: &["SCRAM-SHA-256"],
                ..Default::default()
            }),
            "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL- STARTTLS LOGINDISABLED AUTH=SCRAM-SHA-256"
        );
    }

    #[test]
    fn after_login() {
        let all = capabilities(&Capabilities {
            authenticated: true,
            rev2: true,
            compress: true,
            quota: true,
            append_limit: Some(Some(10240000)),
            utf8_accept: true,
            extra: &["X-TEST"],
            ..Default::default()
        });
        assert!(
            all.starts_with("IMAP4rev1 IMAP4rev2 SASL-IR ID SORT SORT=DISPLAY THREAD=REFERENCES")
        );
        assert!(all.ends_with(
            "LITERAL+ QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE APPENDLIMIT=10240000 UTF8=ACCEPT COMPRESS=DEFLATE X-TEST"
        ));
        for cap in [
            "UIDPLUS",
            "MOVE",
            "CONDSTORE",
            "QRESYNC",
            "LIST-STATUS",
            "SPECIAL-USE",
            "ESEARCH",
            "SEARCHRES",
            "BINARY",
            "STATUS=SIZE",
            "NAMESPACE",
            "CHILDREN",
            "UNSELECT",
            "MULTIAPPEND",
            "IDLE",
            "ENABLE",
        ] {
            assert!(all.split(' ').any(|c| c == cap), "{cap}");
        }
        // Nothing before-login only.
        assert!(!all.contains("AUTH=") && !all.contains("STARTTLS"));
        let bare = capabilities(&Capabilities {
            authenticated: true,
            append_limit: Some(None),
            ..Default::default()
        });
        assert!(bare.ends_with("LITERAL+ APPENDLIMIT"));
    }
}
