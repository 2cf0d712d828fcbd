//! Tests across the IMAP modules: every command from its RFC examples and
//! from real clients' traffic, the reader fed in chunks of every size,
//! continuations, limits and recovery, errors with and without a tag,
//! and round trips through the encoders.

use proptest::prelude::*;

use super::command::Fault;
use super::reader::{Continuation, LITERAL_MINUS_MAX, LineTooLong, is_done};

use super::response::{self, Code, Status};
use super::*;

fn opts() -> ParseOptions {
    ParseOptions::default()
}

/// The command `wire` (literals inline, CRLF added) gives through the
/// reader, the same fed whole and in chunks of every size; `None` when it
/// gives nothing (an empty line).
fn via_reader(wire: &[u8]) -> Option<Result<Command, CommandError>> {
    let mut input = wire.to_vec();
    input.extend_from_slice(b"\r\n");
    let mut want: Option<Vec<Event>> = None;
    for size in 0..=input.len() {
        let events: Vec<Event> = feed(&input, size, Limits::default())
            .into_iter()
            .filter(|e| !matches!(e, Event::Continue(_)))
            .collect();
        match &want {
            None => want = Some(events),
            Some(w) => assert_eq!(
                &events,
                w,
                "chunks of {size}: {:?}",
                String::from_utf8_lossy(wire)
            ),
        }
    }
    let mut events = want.unwrap_or_default();
    assert!(events.len() <= 1, "{events:?}");
    events.pop().map(|e| match e {
        Event::Command(c) => Ok(c),
        Event::Error(e) => Err(e),
        Event::Continue(_) => unreachable!(),
    })
}

/// Parses wire text (literals inline) and returns the kind; the reader,
/// fed in chunks of every size, must agree.
#[track_caller]
fn p(wire: &str) -> CommandKind {
    let parsed = parse_wire(wire.as_bytes(), &opts());
    if let Some(read) = via_reader(wire.as_bytes()) {
        assert_eq!(read, parsed, "reader and parse_wire differ on {wire:?}");
    }
    match parsed {
        Ok(c) => c.kind,
        Err(e) => panic!("{wire:?}: {e:?}"),
    }
}

#[track_caller]
fn perr(wire: &str) -> CommandError {
    let parsed = parse_wire(wire.as_bytes(), &opts());
    if let Some(read) = via_reader(wire.as_bytes()) {
        assert_eq!(read, parsed, "reader and parse_wire differ on {wire:?}");
    }
    match parsed {
        Ok(c) => panic!("{wire:?} parsed: {c:?}"),
        Err(e) => e,
    }
}

fn mb(s: &str) -> MailboxName {
    MailboxName::new(s)
}

fn set(s: &str) -> SequenceSet {
    SequenceSet::parse(s.as_bytes()).unwrap()
}

fn date(s: &str) -> Date {
    Date::parse(s.as_bytes()).unwrap()
}

fn fields(names: &[&str]) -> FetchAttr {
    FetchAttr::BodySection {
        peek: true,
        section: Section {
            part: vec![],
            text: Some(SectionText::HeaderFields {
                not: false,
                fields: names.iter().map(|s| s.to_string()).collect(),
            }),
        },
        partial: None,
    }
}

fn search(uid: bool, key: SearchKey) -> CommandKind {
    CommandKind::Search(SearchCommand {
        uid,
        returns: None,
        charset: None,
        key,
    })
}

fn fetch(uid: bool, s: &str, items: Vec<FetchAttr>) -> CommandKind {
    CommandKind::Fetch(FetchCommand {
        uid,
        set: set(s),
        items,
        changed_since: None,
        vanished: false,
    })
}

// ---------------------------------------------------------------------
// Commands of any state and before login.

#[test]
fn any_state_commands() {
    let c = parse_wire(b"A001 CAPABILITY", &opts()).unwrap();
    assert_eq!((c.tag.as_str(), c.kind), ("A001", CommandKind::Capability));
    assert_eq!(p("a002 NOOP"), CommandKind::Noop);
    assert_eq!(p("A023 LOGOUT"), CommandKind::Logout);
    assert_eq!(p("a002 noop"), CommandKind::Noop);
    // RFC 2971.
    assert_eq!(
        p(r#"a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")"#),
        CommandKind::Id(Some(vec![
            ("name".into(), Some("sodr".into())),
            ("version".into(), Some("19.34".into())),
            ("vendor".into(), Some("Pink Floyd Music Limited".into())),
        ]))
    );
    assert_eq!(p("a042 ID NIL"), CommandKind::Id(None));
    assert_eq!(p("a042 ID ()"), CommandKind::Id(Some(vec![])));
    assert_eq!(
        p(r#"3 ID ("name" "Thunderbird" "version" "115.3.1" "x" NIL)"#),
        CommandKind::Id(Some(vec![
            ("name".into(), Some("Thunderbird".into())),
            ("version".into(), Some("115.3.1".into())),
            ("x".into(), None),
        ]))
    );
    // Apple Mail's dotted tags.
    let c = parse_wire(
        br#"7.91 ID ("name" "Mac OS X Mail" "version" "16.0 (3696.120.41.1.1)" "os" "Mac OS X" "os-version" "12.4 (21F79)" "vendor" "Apple Inc.")"#,
        &opts(),
    )
    .unwrap();
    assert_eq!(c.tag, "7.91");
    assert!(matches!(c.kind, CommandKind::Id(Some(ref v)) if v.len() == 5));
}

#[test]
fn login_and_authenticate() {
    assert_eq!(
        p("a001 LOGIN SMITH SESAME"),
        CommandKind::Login {
            username: "SMITH".into(),
            password: Secret(b"SESAME".to_vec())
        }
    );
    // Quoted, with escapes; a literal password (Thunderbird sends one when
    // it has special characters); `*` and `%` and `]` in atoms.
    assert_eq!(
        p(r#"A1 LOGIN "fred@example.com" "pa\"ss\\w d""#),
        CommandKind::Login {
            username: "fred@example.com".into(),
            password: Secret(br#"pa"ss\w d"#.to_vec())
        }
    );
    assert_eq!(
        p("2 login {16}\r\nfred@example.com {9}\r\nse\"cr{t}\n"),
        CommandKind::Login {
            username: "fred@example.com".into(),
            password: Secret(b"se\"cr{t}\n".to_vec())
        }
    );
    assert_eq!(
        p("a LOGIN fred p*ss%wo]rd"),
        CommandKind::Login {
            username: "fred".into(),
            password: Secret(b"p*ss%wo]rd".to_vec())
        }
    );
    // UTF-8 user name unquoted (lenient), and quoted.
    assert_eq!(
        p("a LOGIN j\u{f6}rg \"gr\u{fc}n\""),
        CommandKind::Login {
            username: "j\u{f6}rg".into(),
            password: Secret("gr\u{fc}n".as_bytes().to_vec())
        }
    );
    // Passwords stay out of Debug.
    let dbg = format!("{:?}", p("a LOGIN fred hunter2"));
    assert!(
        !dbg.contains("hunter2") && dbg.contains("<hidden>"),
        "{dbg}"
    );

    assert_eq!(
        p("A001 AUTHENTICATE GSSAPI"),
        CommandKind::Authenticate {
            mechanism: "GSSAPI".into(),
            initial: None
        }
    );
    // RFC 4959 SASL-IR, and `=` for an empty initial response.
    assert_eq!(
        p("a01 authenticate plain dGVzdAB0ZXN0AHRlc3Q="),
        CommandKind::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(Secret(b"dGVzdAB0ZXN0AHRlc3Q=".to_vec()))
        }
    );
    assert_eq!(
        p("a02 AUTHENTICATE EXTERNAL ="),
        CommandKind::Authenticate {
            mechanism: "EXTERNAL".into(),
            initial: Some(Secret(b"=".to_vec()))
        }
    );
    assert_eq!(p("a001 STARTTLS"), CommandKind::StartTls);
    for bad in [
        "a LOGIN",
        "a LOGIN fred",
        "a LOGIN fred a b",
        "a AUTHENTICATE",
        "a LOGIN (x) y",
    ] {
        assert_eq!(perr(bad).tag.as_deref(), Some("a"), "{bad}");
    }
}

// ---------------------------------------------------------------------
// Authenticated state.

#[test]
fn enable_select_examine() {
    assert_eq!(
        p("t2 ENABLE IMAP4rev2 CONDSTORE"),
        CommandKind::Enable(vec!["IMAP4REV2".into(), "CONDSTORE".into()])
    );
    assert_eq!(
        p("a ENABLE utf8=accept"),
        CommandKind::Enable(vec!["UTF8=ACCEPT".into()])
    );
    assert!(perr("a ENABLE").fault == Fault::Syntax("Missing arguments."));
    assert_eq!(
        p("A142 SELECT INBOX"),
        CommandKind::Select {
            mailbox: mb("INBOX"),
            params: SelectParams::default()
        }
    );
    assert_eq!(
        p("4 select \"inbox\" (CONDSTORE)"),
        CommandKind::Select {
            mailbox: mb("INBOX"),
            params: SelectParams {
                condstore: true,
                qresync: None
            }
        }
    );
    assert_eq!(
        p("A932 EXAMINE blurdybloop"),
        CommandKind::Examine {
            mailbox: mb("blurdybloop"),
            params: SelectParams::default()
        }
    );
    // RFC 7162 §3.2.5.
    assert_eq!(
        p("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
        CommandKind::Select {
            mailbox: mb("INBOX"),
            params: SelectParams {
                condstore: false,
                qresync: Some(Qresync {
                    uid_validity: 67890007,
                    mod_seq: 20050715194045000,
                    known_uids: Some(set("41,43:211,214:541")),
                    seq_match: None
                })
            }
        }
    );
    assert_eq!(
        p(
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))"
        ),
        CommandKind::Select {
            mailbox: mb("INBOX"),
            params: SelectParams {
                condstore: false,
                qresync: Some(Qresync {
                    uid_validity: 67890007,
                    mod_seq: 90060115194045000,
                    known_uids: Some(set("1:29997")),
                    seq_match: Some((
                        set("5000,7500,9000,9990:9999"),
                        set(
                            "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997"
                        )
                    ))
                })
            }
        }
    );
    assert_eq!(
        p("a SELECT INBOX (QRESYNC (1 2))"),
        CommandKind::Select {
            mailbox: mb("INBOX"),
            params: SelectParams {
                condstore: false,
                qresync: Some(Qresync {
                    uid_validity: 1,
                    mod_seq: 2,
                    known_uids: None,
                    seq_match: None
                })
            }
        }
    );
    assert_eq!(
        p("a SELECT INBOX (QRESYNC (1 2 (1:3 4:6)))"),
        CommandKind::Select {
            mailbox: mb("INBOX"),
            params: SelectParams {
                condstore: false,
                qresync: Some(Qresync {
                    uid_validity: 1,
                    mod_seq: 2,
                    known_uids: None,
                    seq_match: Some((set("1:3"), set("4:6")))
                })
            }
        }
    );
    assert!(perr("a SELECT INBOX (FOO)").fault == Fault::UnknownArgument("FOO".into()));
    assert!(perr("a SELECT INBOX (QRESYNC (0 2))").tag.is_some());
    assert!(perr("a SELECT").tag.is_some());
}

#[test]
fn mailbox_management() {
    assert_eq!(
        p("A003 CREATE owatagusiam/"),
        CommandKind::Create {
            mailbox: mb("owatagusiam/"),
            special_use: vec![]
        }
    );
    // RFC 6154 §5.2.
    assert_eq!(
        p(r#"t1 CREATE "Drafts" (USE (\Drafts \Sent))"#),
        CommandKind::Create {
            mailbox: mb("Drafts"),
            special_use: vec!["\\Drafts".into(), "\\Sent".into()]
        }
    );
    assert!(perr("t1 CREATE x (FOO (\\Drafts))").tag.is_some());
    assert_eq!(
        p("A683 DELETE blurdybloop"),
        CommandKind::Delete(mb("blurdybloop"))
    );
    assert_eq!(
        p("A683 RENAME blurdybloop sarasoop"),
        CommandKind::Rename {
            from: mb("blurdybloop"),
            to: mb("sarasoop")
        }
    );
    assert_eq!(
        p("A002 SUBSCRIBE #news.comp.mail.mime"),
        CommandKind::Subscribe(mb("#news.comp.mail.mime"))
    );
    assert_eq!(
        p("A002 UNSUBSCRIBE #news.comp.mail.mime"),
        CommandKind::Unsubscribe(mb("#news.comp.mail.mime"))
    );
    // Modified UTF-7 names are decoded.
    assert_eq!(
        p("a CREATE Entw&APw-rfe"),
        CommandKind::Create {
            mailbox: mb("Entw\u{fc}rfe"),
            special_use: vec![]
        }
    );
    assert_eq!(p("A001 NAMESPACE"), CommandKind::Namespace);
}

fn list(reference: &str, patterns: &[&str]) -> ListCommand {
    ListCommand {
        reference: reference.into(),
        patterns: patterns.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn list_commands() {
    // RFC 3501 §6.3.8 and Outlook.
    assert_eq!(p(r#"A101 LIST "" """#), CommandKind::List(list("", &[""])));
    assert_eq!(
        p(r#"A102 LIST #news.comp.mail.misc """#),
        CommandKind::List(list("#news.comp.mail.misc", &[""]))
    );
    assert_eq!(
        p(r#"A202 LIST ~/Mail/ %"#),
        CommandKind::List(list("~/Mail/", &["%"]))
    );
    assert_eq!(p(r#"A682 LIST "" *"#), CommandKind::List(list("", &["*"])));
    assert_eq!(p(r#"5 LIST "" "*""#), CommandKind::List(list("", &["*"])));
    assert_eq!(
        p(r#"a LIST "" INBOX.%"#),
        CommandKind::List(list("", &["INBOX.%"]))
    );
    // Thunderbird.
    assert_eq!(
        p(r#"9 list (SUBSCRIBED) "" "*""#),
        CommandKind::List(ListCommand {
            select: ListSelect {
                subscribed: true,
                ..Default::default()
            },
            extended: true,
            ..list("", &["*"])
        })
    );
    // RFC 5258 §5.
    assert_eq!(
        p(r#"A02 LIST (SUBSCRIBED REMOTE) "" "*" RETURN (CHILDREN)"#),
        CommandKind::List(ListCommand {
            select: ListSelect {
                subscribed: true,
                remote: true,
                ..Default::default()
            },
            returns: ListReturn {
                children: true,
                ..Default::default()
            },
            extended: true,
            ..list("", &["*"])
        })
    );
    assert_eq!(
        p(r#"A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)"#),
        CommandKind::List(ListCommand {
            select: ListSelect {
                subscribed: true,
                recursive_match: true,
                ..Default::default()
            },
            returns: ListReturn {
                children: true,
                ..Default::default()
            },
            extended: true,
            ..list("", &["%"])
        })
    );
    assert_eq!(
        p(r#"BBB LIST "" ("INBOX" "Drafts" "Sent/%")"#),
        CommandKind::List(ListCommand {
            extended: true,
            ..list("", &["INBOX", "Drafts", "Sent/%"])
        })
    );
    assert!(perr(r#"A05 LIST (RECURSIVEMATCH) "" "%""#).tag.is_some());
    // RFC 5819 LIST-STATUS and RFC 6154.
    assert_eq!(
        p(r#"A02 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))"#),
        CommandKind::List(ListCommand {
            returns: ListReturn {
                status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                ..Default::default()
            },
            extended: true,
            ..list("", &["%"])
        })
    );
    assert_eq!(
        p(r#"t1 LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE SUBSCRIBED)"#),
        CommandKind::List(ListCommand {
            select: ListSelect {
                special_use: true,
                ..Default::default()
            },
            returns: ListReturn {
                special_use: true,
                subscribed: true,
                ..Default::default()
            },
            extended: true,
            ..list("", &["*"])
        })
    );
    assert_eq!(
        p(r#"a LIST () "" "*" RETURN ()"#),
        CommandKind::List(ListCommand {
            extended: true,
            ..list("", &["*"])
        })
    );
    assert_eq!(
        p(r##"A002 LSUB "#news." "comp.mail.*""##),
        CommandKind::Lsub {
            reference: "#news.".into(),
            pattern: "comp.mail.*".into()
        }
    );
    assert_eq!(
        p(r#"a LSUB "" *"#),
        CommandKind::Lsub {
            reference: "".into(),
            pattern: "*".into()
        }
    );
    // Patterns are decoded like names.
    assert_eq!(
        p(r#"a LIST "" "Entw&APw-*""#),
        CommandKind::List(list("", &["Entw\u{fc}*"]))
    );
    assert!(perr(r#"a LIST "" * RETURN (FOO)"#).fault == Fault::UnknownArgument("FOO".into()));
    assert!(perr(r#"a LIST "" * FOO"#).tag.is_some());
}

#[test]
fn status_commands() {
    assert_eq!(
        p("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        CommandKind::Status {
            mailbox: mb("blurdybloop"),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
    assert_eq!(
        p(
            r#"a0005 STATUS "INBOX" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ APPENDLIMIT DELETED-STORAGE)"#
        ),
        CommandKind::Status {
            mailbox: mb("INBOX"),
            items: vec![
                StatusItem::Messages,
                StatusItem::Recent,
                StatusItem::UidNext,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::Deleted,
                StatusItem::Size,
                StatusItem::HighestModSeq,
                StatusItem::AppendLimit,
                StatusItem::DeletedStorage,
            ]
        }
    );
    assert!(perr("a STATUS INBOX ()").tag.is_some());
    assert_eq!(
        perr("a STATUS INBOX (FOO)").fault,
        Fault::UnknownArgument("FOO".into())
    );
    assert!(perr("a STATUS INBOX").tag.is_some());
}

#[test]
fn append_commands() {
    // RFC 3501 §6.3.11 (the message shortened).
    let msg = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\n\r\nHello Joe\r\n";
    let wire = format!(
        "A003 APPEND saved-messages (\\Seen) {{{}}}\r\n{msg}",
        msg.len()
    );
    assert_eq!(
        p(&wire),
        CommandKind::Append {
            mailbox: mb("saved-messages"),
            messages: vec![AppendMessage {
                flags: vec![Flag::Seen],
                date: None,
                data: msg.as_bytes().to_vec(),
                binary: false,
                utf8: false
            }]
        }
    );
    // With a date-time, LITERAL+, and no flags.
    let CommandKind::Append { messages, .. } =
        p("a APPEND INBOX \" 7-Feb-1994 22:43:04 -0800\" {5+}\r\nhello")
    else {
        panic!()
    };
    assert_eq!(
        messages[0].date.unwrap().to_string(),
        "07-Feb-1994 22:43:04 -0800"
    );
    assert_eq!(messages[0].data, b"hello");
    // Empty flag list, keyword flags.
    let CommandKind::Append { messages, .. } = p("a APPEND Sent () {1}\r\nx") else {
        panic!()
    };
    assert!(messages[0].flags.is_empty());
    let CommandKind::Append { messages, .. } =
        p("a APPEND Sent (\\Seen $Forwarded \\Draft) {1}\r\nx")
    else {
        panic!()
    };
    assert_eq!(
        messages[0].flags,
        [Flag::Seen, Flag::Keyword("$Forwarded".into()), Flag::Draft]
    );
    // RFC 3502 MULTIAPPEND.
    let CommandKind::Append { mailbox, messages } = p(
        "A003 APPEND saved-messages (\\Seen) {3}\r\none (\\Seen) \" 7-Feb-1994 22:43:04 -0800\" {3}\r\ntwo {5}\r\nthree",
    ) else {
        panic!()
    };
    assert_eq!(mailbox, mb("saved-messages"));
    assert_eq!(
        messages.iter().map(|m| m.data.clone()).collect::<Vec<_>>(),
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert!(messages[1].date.is_some() && messages[2].flags.is_empty());
    // RFC 3516 literal8 with NUL, RFC 6855 UTF8 (...).
    let CommandKind::Append { messages, .. } = p("a APPEND Drafts ~{3}\r\na\0b") else {
        panic!()
    };
    assert!(messages[0].binary && messages[0].data == b"a\0b");
    let CommandKind::Append { messages, .. } =
        p("a APPEND Drafts (\\Draft) UTF8 (~{4}\r\n\u{e9}\u{e9})")
    else {
        panic!()
    };
    assert!(
        messages[0].utf8 && messages[0].binary && messages[0].data == "\u{e9}\u{e9}".as_bytes()
    );
    // A mailbox given as a literal.
    let CommandKind::Append { mailbox, .. } = p("a APPEND {4}\r\nSent {1}\r\nx") else {
        panic!()
    };
    assert_eq!(mailbox, mb("Sent"));
    for bad in [
        "a APPEND INBOX",
        "a APPEND INBOX (\\Seen)",
        "a APPEND INBOX \"x\" {1}\r\nx",
        "a APPEND INBOX \"17-Jul-1996 02:44:25 -0700\"",
        "a APPEND INBOX hello",
        "a APPEND INBOX (\\*) {1}\r\nx",
        "a APPEND INBOX UTF8 {1}\r\nx",
    ] {
        assert_eq!(perr(bad).verb.as_deref(), Some("APPEND"), "{bad:?}");
    }
}

#[test]
fn quota_compress_idle() {
    // RFC 9208.
    assert_eq!(
        p(r#"G0001 GETQUOTA "!partition/sda4""#),
        CommandKind::GetQuota("!partition/sda4".into())
    );
    assert_eq!(
        p("G0002 GETQUOTAROOT INBOX"),
        CommandKind::GetQuotaRoot(mb("INBOX"))
    );
    assert_eq!(
        p(r#"10 getquotaroot "INBOX""#),
        CommandKind::GetQuotaRoot(mb("INBOX"))
    );
    assert_eq!(
        p(r##"S0000 SETQUOTA "#user/alice" (STORAGE 510)"##),
        CommandKind::SetQuota {
            root: "#user/alice".into(),
            limits: vec![("STORAGE".into(), 510)]
        }
    );
    assert_eq!(
        p(r#"S1 SETQUOTA "" (storage 512 MESSAGE 1000)"#),
        CommandKind::SetQuota {
            root: "".into(),
            limits: vec![("STORAGE".into(), 512), ("MESSAGE".into(), 1000)]
        }
    );
    assert_eq!(
        p(r#"S1 SETQUOTA "" ()"#),
        CommandKind::SetQuota {
            root: "".into(),
            limits: vec![]
        }
    );
    assert_eq!(
        p("a COMPRESS DEFLATE"),
        CommandKind::Compress("DEFLATE".into())
    );
    assert_eq!(p("A002 IDLE"), CommandKind::Idle);
    assert!(
        is_done(b"DONE")
            && is_done(b"done")
            && is_done(b"DONE  ")
            && !is_done(b"DONE2")
            && !is_done(b"")
    );
}

// ---------------------------------------------------------------------
// Selected state.

#[test]
fn selected_simple_commands() {
    assert_eq!(p("FXXZ CHECK"), CommandKind::Check);
    assert_eq!(p("A341 CLOSE"), CommandKind::Close);
    assert_eq!(p("A342 UNSELECT"), CommandKind::Unselect);
    assert_eq!(p("A202 EXPUNGE"), CommandKind::Expunge);
    assert_eq!(
        p("A003 UID EXPUNGE 3000:3002"),
        CommandKind::UidExpunge(set("3000:3002"))
    );
    assert_eq!(p("16 uid expunge 5"), CommandKind::UidExpunge(set("5")));
    assert_eq!(
        p("A003 COPY 2:4 MEETING"),
        CommandKind::Copy {
            uid: false,
            set: set("2:4"),
            mailbox: mb("MEETING")
        }
    );
    assert_eq!(
        p("a UID COPY 5 \"Trash\""),
        CommandKind::Copy {
            uid: true,
            set: set("5"),
            mailbox: mb("Trash")
        }
    );
    // RFC 6851.
    assert_eq!(
        p("a UID MOVE 42:69 foo"),
        CommandKind::Move {
            uid: true,
            set: set("42:69"),
            mailbox: mb("foo")
        }
    );
    assert_eq!(
        p("A003 MOVE 2:4 MEETING"),
        CommandKind::Move {
            uid: false,
            set: set("2:4"),
            mailbox: mb("MEETING")
        }
    );
    assert_eq!(
        p("a COPY $ Archive"),
        CommandKind::Copy {
            uid: false,
            set: SequenceSet::Saved,
            mailbox: mb("Archive")
        }
    );
}

#[test]
fn fetch_commands() {
    use FetchAttr::*;
    // RFC 3501 §6.4.5 and §6.4.8.
    assert_eq!(
        p("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
        fetch(
            false,
            "2:4",
            vec![
                Flags,
                BodySection {
                    peek: false,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields {
                            not: false,
                            fields: vec!["DATE".into(), "FROM".into()]
                        })
                    },
                    partial: None
                }
            ]
        )
    );
    assert_eq!(
        p("A999 UID FETCH 4827313:4828442 FLAGS"),
        fetch(true, "4827313:4828442", vec![Flags])
    );
    // Thunderbird.
    assert_eq!(
        p("6 UID fetch 1:* (FLAGS)"),
        fetch(true, "1:*", vec![Flags])
    );
    assert_eq!(
        p(
            "11 UID fetch 5 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"
        ),
        fetch(
            true,
            "5",
            vec![
                Uid,
                Rfc822Size,
                Flags,
                fields(&[
                    "From",
                    "To",
                    "Cc",
                    "Bcc",
                    "Subject",
                    "Date",
                    "Message-ID",
                    "Priority",
                    "X-Priority",
                    "References",
                    "Newsgroups",
                    "In-Reply-To",
                    "Content-Type",
                    "Reply-To"
                ])
            ]
        )
    );
    assert_eq!(
        p("12 UID fetch 5 (UID RFC822.SIZE BODY.PEEK[]<0.10240>)"),
        fetch(
            true,
            "5",
            vec![
                Uid,
                Rfc822Size,
                BodySection {
                    peek: true,
                    section: Section::default(),
                    partial: Some(Partial {
                        offset: 0,
                        length: 10240
                    })
                }
            ]
        )
    );
    // mutt.
    assert_eq!(
        p(
            "a0003 UID FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL)])"
        ),
        fetch(
            true,
            "1:3",
            vec![
                Uid,
                Flags,
                InternalDate,
                Rfc822Size,
                fields(&[
                    "DATE",
                    "FROM",
                    "SUBJECT",
                    "TO",
                    "CC",
                    "MESSAGE-ID",
                    "REFERENCES",
                    "CONTENT-TYPE",
                    "CONTENT-DESCRIPTION",
                    "IN-REPLY-TO",
                    "REPLY-TO",
                    "LINES",
                    "LIST-POST",
                    "X-LABEL"
                ])
            ]
        )
    );
    // Apple Mail, RFC 7162 §3.1.4.1 and §3.2.6.
    assert_eq!(
        p("4.118 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1234)"),
        CommandKind::Fetch(FetchCommand {
            uid: true,
            set: set("1:*"),
            items: vec![Flags],
            changed_since: Some(1234),
            vanished: false
        })
    );
    assert_eq!(
        p("a103 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)"),
        CommandKind::Fetch(FetchCommand {
            uid: true,
            set: set("300:500"),
            items: vec![Flags],
            changed_since: Some(12345),
            vanished: true
        })
    );
    assert_eq!(p("a FETCH 1 (MODSEQ)"), fetch(false, "1", vec![ModSeq]));
    assert_eq!(
        p("a FETCH 1:* ALL"),
        fetch(
            false,
            "1:*",
            vec![Flags, InternalDate, Rfc822Size, Envelope]
        )
    );
    assert_eq!(
        p("a FETCH 1 full"),
        fetch(
            false,
            "1",
            vec![Flags, InternalDate, Rfc822Size, Envelope, Body]
        )
    );
    // RFC 5182 §2.
    assert_eq!(
        p("A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)"),
        fetch(false, "$", vec![Uid, InternalDate, Flags, Rfc822Header])
    );
    // RFC 3516.
    assert_eq!(
        p("t FETCH 1 (BINARY[1]<0.100> BINARY.SIZE[1])"),
        fetch(
            false,
            "1",
            vec![
                Binary {
                    peek: false,
                    part: vec![1],
                    partial: Some(Partial {
                        offset: 0,
                        length: 100
                    })
                },
                BinarySize { part: vec![1] }
            ]
        )
    );
    // Outlook's header fetch, lower case.
    assert_eq!(
        p("4 uid fetch 1:* (UID FLAGS body.peek[header.fields (from to subject date)])"),
        fetch(
            true,
            "1:*",
            vec![Uid, Flags, fields(&["from", "to", "subject", "date"])]
        )
    );
    for (bad, fault) in [
        ("a FETCH 0 FLAGS", Fault::Syntax("Invalid messageset")),
        ("a FETCH 1:0 FLAGS", Fault::Syntax("Invalid messageset")),
        ("a FETCH 1,,2 FLAGS", Fault::Syntax("Invalid messageset")),
        (
            "a FETCH 1 (FLAGS) (VANISHED)",
            Fault::Syntax("VANISHED can only be used with UID FETCH and CHANGEDSINCE."),
        ),
        (
            "a FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)",
            Fault::Syntax("VANISHED can only be used with UID FETCH and CHANGEDSINCE."),
        ),
        (
            "a FETCH 1 (FLAGS) (CHANGEDSINCE 0)",
            Fault::Syntax("Invalid modseq."),
        ),
        (
            "a FETCH 1 (FLAGS) (FOO)",
            Fault::UnknownArgument("FOO".into()),
        ),
        (
            "a FETCH 1 (FLAGS XYZZY)",
            Fault::UnknownArgument("XYZZY".into()),
        ),
        ("a FETCH 1", Fault::Syntax("Missing arguments.")),
        ("a FETCH", Fault::Syntax("Missing arguments.")),
    ] {
        assert_eq!(perr(bad).fault, fault, "{bad}");
    }
    assert_eq!(
        perr("a UID FETCH 1:* FOO").verb.as_deref(),
        Some("UID FETCH")
    );
}

#[test]
fn store_commands() {
    let store = |uid, s: &str, unchanged_since, mode, silent, flags: Vec<Flag>| {
        CommandKind::Store(StoreCommand {
            uid,
            set: set(s),
            unchanged_since,
            mode,
            silent,
            flags,
        })
    };
    assert_eq!(
        p("A003 STORE 2:4 +FLAGS (\\Deleted)"),
        store(
            false,
            "2:4",
            None,
            StoreMode::Add,
            false,
            vec![Flag::Deleted]
        )
    );
    assert_eq!(
        p("a0006 UID STORE 1,3 +FLAGS.SILENT (\\Deleted)"),
        store(true, "1,3", None, StoreMode::Add, true, vec![Flag::Deleted])
    );
    assert_eq!(
        p("13 uid store 5 +Flags (\\Seen)"),
        store(true, "5", None, StoreMode::Add, false, vec![Flag::Seen])
    );
    assert_eq!(
        p("a STORE 1 -FLAGS.SILENT \\Seen $Junk"),
        store(
            false,
            "1",
            None,
            StoreMode::Remove,
            true,
            vec![Flag::Seen, Flag::Keyword("$Junk".into())]
        )
    );
    assert_eq!(
        p("a STORE 1:* FLAGS ()"),
        store(false, "1:*", None, StoreMode::Replace, false, vec![])
    );
    // RFC 7162 §3.1.3.
    assert_eq!(
        p("a102 STORE 1:5 (UNCHANGEDSINCE 12345) +FLAGS (\\Deleted)"),
        store(
            false,
            "1:5",
            Some(12345),
            StoreMode::Add,
            false,
            vec![Flag::Deleted]
        )
    );
    assert_eq!(
        p("a UID STORE 7 (UNCHANGEDSINCE 0) FLAGS.SILENT (\\Seen)"),
        store(
            true,
            "7",
            Some(0),
            StoreMode::Replace,
            true,
            vec![Flag::Seen]
        )
    );
    for bad in [
        "a STORE 1 FLAGS",
        "a STORE 1 +FLAGSX (\\Seen)",
        "a STORE 1 FLAGS (\\*)",
        "a STORE 1 (FOO 1) FLAGS (\\Seen)",
        "a STORE 1 FLAGS (\\Seen",
        "a STORE 1 *FLAGS (\\Seen)",
    ] {
        assert_eq!(perr(bad).verb.as_deref(), Some("STORE"), "{bad}");
    }
}

#[test]
fn search_commands() {
    use SearchKey::*;
    // RFC 3501 §6.4.4.
    assert_eq!(
        p(r#"A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith""#),
        search(
            false,
            And(vec![
                Flagged,
                Since(date("1-Feb-1994")),
                Not(Box::new(From("Smith".into())))
            ])
        )
    );
    assert_eq!(
        p(r#"A283 SEARCH TEXT "string not in mailbox""#),
        search(false, Text("string not in mailbox".into()))
    );
    assert_eq!(
        p("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX"),
        CommandKind::Search(SearchCommand {
            uid: false,
            returns: None,
            charset: Some("UTF-8".into()),
            key: Text("XXXXXX".into())
        })
    );
    // K-9 and imaplib.
    assert_eq!(
        p("5 UID SEARCH 1:* NOT DELETED"),
        search(
            true,
            And(vec![SequenceSet(set("1:*")), Not(Box::new(Deleted))])
        )
    );
    assert_eq!(p("JHFE3 UID SEARCH ALL"), search(true, All));
    assert_eq!(p("a0007 UID SEARCH UID 1:*"), search(true, Uid(set("1:*"))));
    // Every key.
    let every = "a SEARCH ALL ANSWERED BCC b BEFORE 1-Jan-2000 BODY \"x y\" CC c DELETED DRAFT FLAGGED FROM f \
        HEADER List-Id \"<l>\" KEYWORD $Junk LARGER 100 NEW OLD ON \"2-Feb-2001\" RECENT SEEN SENTBEFORE 3-Mar-2002 \
        SENTON 4-Apr-2003 SENTSINCE 5-May-2004 SINCE 6-Jun-2005 SMALLER 9000000000 SUBJECT s TEXT t TO to UID 5:7 \
        UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD Junk UNSEEN 1,2 OR SEEN FLAGGED (DELETED DRAFT) \
        MODSEQ 10 OLDER 60 YOUNGER 3600 $";
    let CommandKind::Search(SearchCommand { key: And(keys), .. }) = p(every) else {
        panic!()
    };
    assert_eq!(
        keys,
        vec![
            All,
            Answered,
            Bcc("b".into()),
            Before(date("1-Jan-2000")),
            Body("x y".into()),
            Cc("c".into()),
            Deleted,
            Draft,
            Flagged,
            From("f".into()),
            Header("List-Id".into(), "<l>".into()),
            Keyword("$Junk".into()),
            Larger(100),
            New,
            Old,
            On(date("2-Feb-2001")),
            Recent,
            Seen,
            SentBefore(date("3-Mar-2002")),
            SentOn(date("4-Apr-2003")),
            SentSince(date("5-May-2004")),
            Since(date("6-Jun-2005")),
            Smaller(9000000000),
            Subject("s".into()),
            Text("t".into()),
            To("to".into()),
            Uid(set("5:7")),
            Unanswered,
            Undeleted,
            Undraft,
            Unflagged,
            Unkeyword("Junk".into()),
            Unseen,
            SequenceSet(set("1,2")),
            Or(Box::new(Seen), Box::new(Flagged)),
            And(vec![Deleted, Draft]),
            ModSeq {
                entry: None,
                modseq: 10
            },
            Older(60),
            Younger(3600),
            SequenceSet(super::SequenceSet::Saved),
        ]
    );
    // Nested OR/NOT, a one-key list, the empty header value.
    assert_eq!(
        p("a SEARCH OR (FROM a) NOT (OR TO b CC c) HEADER X-Spam \"\""),
        search(
            false,
            And(vec![
                Or(
                    Box::new(From("a".into())),
                    Box::new(Not(Box::new(Or(
                        Box::new(To("b".into())),
                        Box::new(Cc("c".into()))
                    ))))
                ),
                Header("X-Spam".into(), "".into())
            ])
        )
    );
    // RFC 7162 §3.1.5.
    assert_eq!(
        p(r#"a SEARCH MODSEQ "/flags/\\draft" all 620162338"#),
        search(
            false,
            ModSeq {
                entry: Some(super::search::ModSeqEntry {
                    name: "/flags/\\draft".into(),
                    kind: super::search::EntryKind::All
                }),
                modseq: 620162338
            }
        )
    );
    // RFC 4731 and RFC 5182.
    assert_eq!(
        p(r#"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith""#),
        CommandKind::Search(SearchCommand {
            uid: false,
            returns: Some(vec![SearchReturn::Min, SearchReturn::Count]),
            charset: None,
            key: And(vec![
                Flagged,
                Since(date("1-Feb-1994")),
                Not(Box::new(From("Smith".into())))
            ])
        })
    );
    assert_eq!(
        p("A285 UID SEARCH RETURN (MIN MAX) 1:5000"),
        CommandKind::Search(SearchCommand {
            uid: true,
            returns: Some(vec![SearchReturn::Min, SearchReturn::Max]),
            charset: None,
            key: SequenceSet(set("1:5000"))
        })
    );
    assert_eq!(
        p(
            r#"A301 UID SEARCH RETURN (SAVE ALL) CHARSET US-ASCII SINCE 1-Jan-2004 NOT FROM "Smith" UID 5000:*"#
        ),
        CommandKind::Search(SearchCommand {
            uid: true,
            returns: Some(vec![SearchReturn::Save, SearchReturn::All]),
            charset: Some("US-ASCII".into()),
            key: And(vec![
                Since(date("1-Jan-2004")),
                Not(Box::new(From("Smith".into()))),
                Uid(set("5000:*"))
            ])
        })
    );
    assert_eq!(
        p("a SEARCH RETURN () UNSEEN"),
        CommandKind::Search(SearchCommand {
            uid: false,
            returns: Some(vec![]),
            charset: None,
            key: Unseen
        })
    );
    // UTF-8 search strings, quoted (rev2) and as a literal.
    assert_eq!(
        p("a SEARCH SUBJECT \"caf\u{e9}\""),
        search(false, Subject("caf\u{e9}".into()))
    );
    for (bad, fault) in [
        ("a SEARCH", Fault::Syntax("Missing arguments.")),
        ("a SEARCH FOO", Fault::UnknownArgument("FOO".into())),
        (
            "a SEARCH SINCE 31-Feb-2000",
            Fault::Syntax("Invalid search date parameter."),
        ),
        ("a SEARCH OR SEEN", Fault::Syntax("Missing arguments.")),
        ("a SEARCH (SEEN", Fault::Syntax("Missing ')'.")),
        ("a SEARCH ()", Fault::Syntax("Invalid arguments.")),
        ("a SEARCH UID", Fault::Syntax("Missing arguments.")),
        ("a SEARCH 1:0", Fault::Syntax("Invalid messageset")),
        (
            "a SEARCH RETURN (FOO) ALL",
            Fault::UnknownArgument("FOO".into()),
        ),
        ("a SEARCH LARGER x", Fault::Syntax("Expected number.")),
        ("a SEARCH $,1", Fault::Syntax("Invalid messageset")),
    ] {
        assert_eq!(perr(bad).fault, fault, "{bad}");
    }
    // Nesting is bounded, not recursed into without end.
    let deep = format!("a SEARCH {}SEEN{}", "(".repeat(1000), ")".repeat(1000));
    assert_eq!(
        perr(&deep).fault,
        Fault::Syntax("Search keys nested too deeply.")
    );
    let nots = format!("a SEARCH {}SEEN", "NOT ".repeat(1000));
    assert_eq!(
        perr(&nots).fault,
        Fault::Syntax("Search keys nested too deeply.")
    );
    let ok = format!("a SEARCH {}SEEN{}", "(".repeat(50), ")".repeat(50));
    assert_eq!(p(&ok), search(false, Seen));
}

#[test]
fn sort_and_thread() {
    use SearchKey::*;
    let crit = |reverse, key| SortCriterion { reverse, key };
    // RFC 5256 §5.
    assert_eq!(
        p("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994"),
        CommandKind::Sort(SortCommand {
            uid: false,
            criteria: vec![crit(false, SortKey::Subject)],
            charset: "UTF-8".into(),
            key: Since(date("1-Feb-1994"))
        })
    );
    assert_eq!(
        p("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
        CommandKind::Sort(SortCommand {
            uid: false,
            criteria: vec![crit(false, SortKey::Subject), crit(true, SortKey::Date)],
            charset: "UTF-8".into(),
            key: All
        })
    );
    assert_eq!(
        p(
            r#"A284 UID SORT (ARRIVAL CC FROM SIZE TO DISPLAYFROM REVERSE DISPLAYTO) US-ASCII TEXT "not in mailbox""#
        ),
        CommandKind::Sort(SortCommand {
            uid: true,
            criteria: vec![
                crit(false, SortKey::Arrival),
                crit(false, SortKey::Cc),
                crit(false, SortKey::From),
                crit(false, SortKey::Size),
                crit(false, SortKey::To),
                crit(false, SortKey::DisplayFrom),
                crit(true, SortKey::DisplayTo)
            ],
            charset: "US-ASCII".into(),
            key: Text("not in mailbox".into())
        })
    );
    assert_eq!(
        p("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000"),
        CommandKind::Thread(ThreadCommand {
            uid: false,
            algorithm: ThreadAlgorithm::OrderedSubject,
            charset: "UTF-8".into(),
            key: Since(date("5-Mar-2000"))
        })
    );
    assert_eq!(
        p("A285 UID THREAD REFERENCES US-ASCII ALL"),
        CommandKind::Thread(ThreadCommand {
            uid: true,
            algorithm: ThreadAlgorithm::References,
            charset: "US-ASCII".into(),
            key: All
        })
    );
    assert_eq!(
        p("a THREAD X-FOO UTF-8 ALL"),
        CommandKind::Thread(ThreadCommand {
            uid: false,
            algorithm: ThreadAlgorithm::Other("X-FOO".into()),
            charset: "UTF-8".into(),
            key: All
        })
    );
    assert!(perr("a SORT () UTF-8 ALL").tag.is_some());
    assert!(perr("a SORT (SUBJECT) UTF-8").tag.is_some());
    assert_eq!(
        perr("a SORT (REVERSE FOO) UTF-8 ALL").fault,
        Fault::UnknownArgument("FOO".into())
    );
    assert!(perr("a THREAD REFERENCES").tag.is_some());
}

// ---------------------------------------------------------------------
// Errors and their responses.

fn response_text(e: &CommandError) -> String {
    String::from_utf8(e.response()).unwrap()
}

#[test]
fn errors_with_and_without_tag() {
    assert_eq!(
        response_text(&perr("A1 FOO")),
        "A1 BAD Error in IMAP command FOO: Unknown command.\r\n"
    );
    assert_eq!(
        response_text(&perr("A1 UID FOO 1")),
        "A1 BAD Error in IMAP command UID FOO: Unknown command.\r\n"
    );
    assert_eq!(
        response_text(&perr("a LOGIN fred")),
        "a BAD Error in IMAP command LOGIN: Missing arguments.\r\n"
    );
    assert_eq!(
        response_text(&perr("a NOOP now")),
        "a BAD Error in IMAP command NOOP: Unexpected extra arguments.\r\n"
    );
    assert_eq!(
        response_text(&perr("a SELECT \"&Jjo!\"")),
        "a BAD Error in IMAP command SELECT: Mailbox name is not valid mUTF-7.\r\n"
    );
    assert_eq!(response_text(&perr("A1")), "A1 BAD Missing command.\r\n");
    assert_eq!(response_text(&perr("A1 ")), "A1 BAD Missing command.\r\n");
    // No tag to answer with: untagged (RFC 9051 §7.1.5).
    for bad in [
        "",
        " NOOP",
        "+1 NOOP",
        "a*b NOOP",
        "\"a\" NOOP",
        "(x) NOOP",
        "{3}\r\nabc NOOP",
        "a%",
    ] {
        assert_eq!(
            response_text(&perr(bad)),
            "* BAD Invalid tag.\r\n",
            "{bad:?}"
        );
    }
    // Before login, Dovecot's one text.
    assert_eq!(
        perr("login username password").response_before_login(),
        b"login BAD Error in IMAP command received by server.\r\n"
    );
    assert_eq!(
        perr("+x NOOP").response_before_login(),
        b"* BAD Invalid tag.\r\n"
    );
    // Trailing spaces and doubled spaces are accepted.
    assert_eq!(p("a NOOP  "), CommandKind::Noop);
    assert_eq!(
        p("a  LOGIN  fred   secret "),
        CommandKind::Login {
            username: "fred".into(),
            password: Secret(b"secret".to_vec())
        }
    );
    // A tag may hold `]` (it is an ASTRING-CHAR).
    assert_eq!(parse_wire(b"a]1 NOOP", &opts()).unwrap().tag, "a]1");
}

#[test]
fn utf8_mailbox_names() {
    let utf8 = ParseOptions { utf8: true };
    let c = parse_wire("a SELECT \"Entw\u{fc}rfe\"".as_bytes(), &utf8).unwrap();
    assert_eq!(
        c.kind,
        CommandKind::Select {
            mailbox: mb("Entw\u{fc}rfe"),
            params: SelectParams::default()
        }
    );
    // In UTF-8 mode `&` is not special.
    let c = parse_wire(b"a SELECT \"R&D\"", &utf8).unwrap();
    assert_eq!(
        c.kind,
        CommandKind::Select {
            mailbox: mb("R&D"),
            params: SelectParams::default()
        }
    );
    assert!(parse_wire(b"a SELECT \"R&D\"", &opts()).is_err());
    assert!(parse_wire(b"a SELECT \"\xff\"", &utf8).is_err());
}

#[test]
fn state_table() {
    use State::*;
    let all = [NotAuthenticated, Authenticated, Selected, Logout];
    let allowed = |wire: &str| -> Vec<State> {
        let kind = p(wire);
        all.iter()
            .copied()
            .filter(|s| kind.allowed_in(*s))
            .collect()
    };
    for w in ["a CAPABILITY", "a NOOP", "a LOGOUT", "a ID NIL"] {
        assert_eq!(
            allowed(w),
            [NotAuthenticated, Authenticated, Selected],
            "{w}"
        );
    }
    for w in ["a STARTTLS", "a LOGIN u p", "a AUTHENTICATE PLAIN"] {
        assert_eq!(allowed(w), [NotAuthenticated], "{w}");
    }
    assert_eq!(allowed("a ENABLE CONDSTORE"), [Authenticated]);
    for w in [
        "a SELECT INBOX",
        "a EXAMINE INBOX",
        "a CREATE x",
        "a DELETE x",
        "a RENAME x y",
        "a SUBSCRIBE x",
        "a UNSUBSCRIBE x",
        "a LIST \"\" *",
        "a LSUB \"\" *",
        "a NAMESPACE",
        "a STATUS x (MESSAGES)",
        "a APPEND x {1}\r\nx",
        "a IDLE",
        "a GETQUOTA \"\"",
        "a GETQUOTAROOT INBOX",
        "a SETQUOTA \"\" ()",
        "a COMPRESS DEFLATE",
    ] {
        assert_eq!(allowed(w), [Authenticated, Selected], "{w}");
    }
    for w in [
        "a CHECK",
        "a CLOSE",
        "a UNSELECT",
        "a EXPUNGE",
        "a UID EXPUNGE 1",
        "a SEARCH ALL",
        "a UID SEARCH ALL",
        "a FETCH 1 FLAGS",
        "a UID FETCH 1 FLAGS",
        "a STORE 1 FLAGS ()",
        "a UID STORE 1 FLAGS ()",
        "a COPY 1 x",
        "a UID COPY 1 x",
        "a MOVE 1 x",
        "a UID MOVE 1 x",
        "a SORT (DATE) UTF-8 ALL",
        "a UID SORT (DATE) UTF-8 ALL",
        "a THREAD REFERENCES UTF-8 ALL",
        "a UID THREAD REFERENCES UTF-8 ALL",
    ] {
        assert_eq!(allowed(w), [Selected], "{w}");
    }
    assert_eq!(p("a UID FETCH 1 FLAGS").name(), "UID FETCH");
    assert_eq!(p("a MOVE 1 x").name(), "MOVE");
}

// ---------------------------------------------------------------------
// The reader.

/// Feeds `input` in chunks of `size` (0: all at once) and collects every
/// event.
fn feed(input: &[u8], size: usize, limits: Limits) -> Vec<Event> {
    let mut r = Reader::new(limits);
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = if size == 0 {
        vec![input]
    } else {
        input.chunks(size).collect()
    };
    for chunk in chunks {
        r.feed(chunk);
        for ev in r.by_ref() {
            out.push(ev);
        }
    }
    assert!(!r.has_pending());
    out
}

/// The same events whole and in chunks of every size.
#[track_caller]
fn check_chunks(input: &[u8], limits: Limits) -> Vec<Event> {
    let whole = feed(input, 0, limits);
    for size in 1..=input.len() {
        assert_eq!(
            feed(input, size, limits),
            whole,
            "chunks of {size}: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

fn cmd(ev: &Event) -> &Command {
    match ev {
        Event::Command(c) => c,
        other => panic!("not a command: {other:?}"),
    }
}

fn err(ev: &Event) -> &CommandError {
    match ev {
        Event::Error(e) => e,
        other => panic!("not an error: {other:?}"),
    }
}

fn cont(size: u64, tag: &str, verb: &str, message: bool) -> Event {
    Event::Continue(Continuation {
        tag: Some(tag.into()),
        verb: Some(verb.into()),
        size,
        message,
    })
}

#[test]
fn a_session_in_chunks() {
    let msg = "From: a@b\r\nSubject: {5}\r\n\r\nbody with \"quotes\" and {3}\r\n";
    let input = format!(
        "1 capability\r\n2 authenticate PLAIN\r\n3 ID (\"name\" \"Thunderbird\")\r\n\
         4 LOGIN {{4}}\r\nfred {{6+}}\r\nsecret\r\n\
         5 select \"INBOX\" (CONDSTORE)\r\n\r\n\
         6 UID fetch 1:* (FLAGS)\n\
         7 APPEND Sent (\\Seen) {{{}}}\r\n{msg} {{2+}}\r\nhi\r\n\
         8 SEARCH SUBJECT \"{{3}}\"\r\n\
         9 logout\r\n",
        msg.len()
    );
    let events = check_chunks(input.as_bytes(), Limits::default());
    let tags: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Command(c) => c.tag.clone(),
            Event::Continue(c) => format!("+{}", c.size),
            Event::Error(e) => format!("error {e:?}"),
        })
        .collect();
    assert_eq!(
        tags,
        [
            "1",
            "2",
            "3",
            "+4",
            "4",
            "5",
            "6",
            &format!("+{}", msg.len()),
            "7",
            "8",
            "9"
        ]
    );
    assert_eq!(events[3], cont(4, "4", "LOGIN", false));
    assert_eq!(events[7], cont(msg.len() as u64, "7", "APPEND", true));
    assert_eq!(
        cmd(&events[4]).kind,
        CommandKind::Login {
            username: "fred".into(),
            password: Secret(b"secret".to_vec())
        }
    );
    let CommandKind::Append { messages, .. } = &cmd(&events[8]).kind else {
        panic!()
    };
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].data, msg.as_bytes());
    assert_eq!(messages[1].data, b"hi");
    // `{3}` inside quotes is not a literal.
    assert_eq!(
        cmd(&events[9]).kind,
        search(false, SearchKey::Subject("{3}".into()))
    );
}

#[test]
fn continuation_exactly_when_announced() {
    let mut r = Reader::new(Limits::default());
    r.feed(b"a1 LOGIN {4}");
    assert_eq!(r.next(), None);
    r.feed(b"\r");
    assert_eq!(r.next(), None);
    r.feed(b"\n");
    assert_eq!(r.next(), Some(cont(4, "a1", "LOGIN", false)));
    assert_eq!(r.next(), None);
    assert!(r.in_command());
    r.feed(b"fre");
    assert_eq!(r.next(), None);
    r.feed(b"d {6}\r\n");
    assert_eq!(r.next(), Some(cont(6, "a1", "LOGIN", false)));
    assert_eq!(r.next(), None);
    r.feed(b"secret\r\n");
    let ev = r.next().unwrap();
    assert_eq!(cmd(&ev).tag, "a1");
    assert_eq!(r.next(), None);
    assert!(!r.in_command());
    // Non-synchronizing: no continuation.
    r.feed(b"a2 LOGIN {4+}\r\nfred {6+}\r\nsecret\r\n");
    assert_eq!(cmd(&r.next().unwrap()).tag, "a2");
    assert_eq!(r.next(), None);
    // A zero-length literal still gets one; the empty string is a string.
    r.feed(b"a3 LOGIN {0}\r\n");
    assert_eq!(r.next(), Some(cont(0, "a3", "LOGIN", false)));
    r.feed(b" {0}\r\n");
    assert_eq!(r.next(), Some(cont(0, "a3", "LOGIN", false)));
    r.feed(b"\r\n");
    assert_eq!(
        cmd(&r.next().unwrap()).kind,
        CommandKind::Login {
            username: "".into(),
            password: Secret(vec![])
        }
    );
    // A literal8 APPEND message is a message literal.
    r.feed(b"a4 APPEND Drafts ~{3}\r\n");
    assert_eq!(r.next(), Some(cont(3, "a4", "APPEND", true)));
    r.feed(b"a\0b\r\n");
    assert_eq!(cmd(&r.next().unwrap()).tag, "a4");
    // Doubled spaces do not hide the verb.
    r.feed(b"a6  append  INBOX  {2}\r\n");
    assert_eq!(r.next(), Some(cont(2, "a6", "APPEND", true)));
    r.feed(b"xy\r\n");
    assert_eq!(cmd(&r.next().unwrap()).tag, "a6");
    // The mailbox of APPEND as a literal is not the message.
    r.feed(b"a5 APPEND {4}\r\n");
    assert_eq!(r.next(), Some(cont(4, "a5", "APPEND", false)));
    r.feed(b"Sent {1}\r\n");
    assert_eq!(r.next(), Some(cont(1, "a5", "APPEND", true)));
    r.feed(b"x\r\n");
    assert_eq!(cmd(&r.next().unwrap()).tag, "a5");
}

#[test]
fn refusing_a_literal() {
    // The session refuses (say, APPEND over quota): the client does not
    // send the literal, and its next line is a new command.
    let mut r = Reader::new(Limits::default());
    r.feed(b"a1 APPEND INBOX {300}\r\na2 NOOP\r\n");
    assert_eq!(r.next(), Some(cont(300, "a1", "APPEND", true)));
    r.refuse_literal();
    assert_eq!(cmd(&r.next().unwrap()).kind, CommandKind::Noop);
    assert_eq!(r.next(), None);
    // refuse_literal at another time does nothing.
    r.feed(b"a3 LOGIN {1}\r\n");
    assert_eq!(r.next(), Some(cont(1, "a3", "LOGIN", false)));
    assert_eq!(r.next(), None);
    r.refuse_literal();
    r.feed(b"x x\r\n");
    assert_eq!(cmd(&r.next().unwrap()).tag, "a3");
}

#[test]
fn bare_lf_blank_lines_and_cr() {
    let events = check_chunks(
        b"\r\n\n\r\na NOOP\nb NOOP\r\n\r\n\nc NOOP\r\r\nd LOGIN {2}\nxy z\r\n",
        Limits::default(),
    );
    assert_eq!(cmd(&events[0]).tag, "a");
    assert_eq!(cmd(&events[1]).tag, "b");
    // `c NOOP\r` CRLF: the first CR is content, so NOOP has an argument.
    assert_eq!(err(&events[2]).tag.as_deref(), Some("c"));
    assert_eq!(events[3], cont(2, "d", "LOGIN", false));
    assert_eq!(
        cmd(&events[4]).kind,
        CommandKind::Login {
            username: "xy".into(),
            password: Secret(b"z".to_vec())
        }
    );
    assert_eq!(events.len(), 5);
}

fn small(line: usize, literal: u64, message: u64, literal_plus: bool) -> Limits {
    Limits {
        line,
        literal,
        message,
        literal_plus,
    }
}

#[test]
fn line_limit() {
    let limits = small(20, 100, 1000, true);
    // Exactly at the limit (20 octets without the line end): fine, with
    // CRLF and with a bare LF.
    let events = check_chunks(b"a LOGIN 0123456 7890\r\nb LOGIN 0123456 7890\n", limits);
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0], Event::Command(_)) && matches!(events[1], Event::Command(_)));
    // One over: an error with the tag, the rest skipped, the next command
    // read.
    let events = check_chunks(b"a LOGIN 0123456 78901\r\nb NOOP\r\n", limits);
    assert_eq!(events.len(), 2);
    assert_eq!(err(&events[0]).fault, Fault::LineTooLong { limit: 20 });
    assert_eq!(
        response_text(err(&events[0])),
        "a BAD Command line too long.\r\n"
    );
    assert_eq!(cmd(&events[1]).tag, "b");
    // Far over, reported once, as soon as the limit is passed.
    let mut long = b"tag1 SEARCH ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 500));
    long.extend_from_slice(b"\r\nnext NOOP\r\n");
    let events = check_chunks(&long, limits);
    assert_eq!(events.len(), 2);
    assert_eq!(err(&events[0]).tag.as_deref(), Some("tag1"));
    let mut r = Reader::new(limits);
    r.feed(&long[..30]);
    assert!(matches!(r.next(), Some(Event::Error(_))));
    assert_eq!(r.next(), None);
    // A line too long before its tag ends: untagged.
    let events = check_chunks(&[b'x'; 50], limits);
    assert_eq!(
        response_text(err(&events[0])),
        "* BAD Command line too long.\r\n"
    );
    // The skipped part announces a non-synchronizing literal: its octets
    // are skipped too (they could hold a line that looks like a command).
    let mut input =
        b"a SEARCH xxxxxxxxxxxxxxxxxxxxxx {10+}\r\nz LOGOUT\r\n TEXT y\r\nb NOOP\r\n".to_vec();
    let events = check_chunks(&input, limits);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(err(&events[0]).tag.as_deref(), Some("a"));
    assert_eq!(cmd(&events[1]).tag, "b");
    // Wherever the limit falls (in the tag, the verb, the header), a
    // non-synchronizing literal's octets are never taken for a command.
    let skipped = b"a SEARCH xxxxxxxxx {10+}\r\nz LOGOUT\r\n\r\nb NOOP\r\n";
    for line in 1..40 {
        let events = check_chunks(skipped, small(line, 100, 100, true));
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::Command(c) if c.tag == "z")),
            "limit {line}: {events:?}"
        );
        if line >= 6 {
            assert_eq!(cmd(events.last().unwrap()).tag, "b", "limit {line}");
        }
    }
    // A synchronizing literal in the skipped part: the client waits for a
    // continuation that does not come, sees the BAD, and goes on.
    input = b"a SEARCH xxxxxxxxxxxxxxxxxxxxxx {9}\r\nb NOOP\r\n".to_vec();
    let events = check_chunks(&input, limits);
    assert_eq!(events.len(), 2);
    assert_eq!(cmd(&events[1]).tag, "b");
    // Literal octets do not count against the line limit; the text after
    // a literal does.
    let events = check_chunks(
        b"a LOGIN {30}\r\n012345678901234567890123456789 p\r\n",
        limits,
    );
    assert_eq!(events.len(), 2);
    assert!(matches!(events[1], Event::Command(_)));
    let events = check_chunks(
        b"a LOGIN {3}\r\nabc pppppppppppppppppp\r\nb NOOP\r\n",
        limits,
    );
    assert_eq!(err(&events[1]).fault, Fault::LineTooLong { limit: 20 });
    assert_eq!(cmd(&events[2]).tag, "b");
}

#[test]
fn literal_limits() {
    let limits = small(1000, 10, 100, true);
    // A synchronizing literal over the limit: refused before the client
    // sends it, so the next line is a new command.
    let events = check_chunks(b"a LOGIN {11}\r\nb NOOP\r\n", limits);
    assert_eq!(events.len(), 2);
    assert_eq!(
        err(&events[0]).fault,
        Fault::LiteralTooBig {
            size: Some(11),
            limit: 10,
            message: false
        }
    );
    assert_eq!(
        response_text(err(&events[0])),
        "a BAD [TOOBIG] Literal too large.\r\n"
    );
    assert_eq!(cmd(&events[1]).tag, "b");
    // An APPEND message has the message limit, and is answered NO.
    let events = check_chunks(b"a APPEND INBOX {100}\r\n", limits);
    assert_eq!(events, [cont(100, "a", "APPEND", true)]);
    let events = check_chunks(b"a APPEND INBOX (\\Seen) {101}\r\nb NOOP\r\n", limits);
    assert_eq!(
        response_text(err(&events[0])),
        "a NO [TOOBIG] Mail size is larger than the maximum size allowed by server configuration.\r\n"
    );
    assert_eq!(cmd(&events[1]).tag, "b");
    // The mailbox literal of APPEND has the small limit.
    let events = check_chunks(b"a APPEND {11}\r\nb NOOP\r\n", limits);
    assert_eq!(
        err(&events[0]).fault,
        Fault::LiteralTooBig {
            size: Some(11),
            limit: 10,
            message: false
        }
    );
    // A non-synchronizing literal over the limit is on its way: read and
    // discarded with the rest of its command (even a line in it that
    // looks like a command).
    let events = check_chunks(
        b"a LOGIN {12+}\r\nz LOGOUT\r\nxx {3+}\r\nabc\r\nb NOOP\r\n",
        limits,
    );
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        response_text(err(&events[0])),
        "a BAD [TOOBIG] Literal too large.\r\n"
    );
    assert_eq!(cmd(&events[1]).tag, "b");
    // A size that does not fit 64 bits.
    let events = check_chunks(b"a LOGIN {99999999999999999999999}\r\nb NOOP\r\n", limits);
    assert_eq!(
        err(&events[0]).fault,
        Fault::LiteralTooBig {
            size: None,
            limit: 10,
            message: false
        }
    );
    assert_eq!(cmd(&events[1]).tag, "b");
}

#[test]
fn literal_minus() {
    let limits = Limits {
        literal_plus: false,
        ..Limits::default()
    };
    // Up to 4096 octets non-synchronizing is fine.
    assert_eq!(LITERAL_MINUS_MAX, 4096);
    let mut input = b"a LOGIN fred {4096+}\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'p', 4096));
    input.extend_from_slice(b"\r\n");
    let events = feed(&input, 0, limits);
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&cmd(&events[0]).kind, CommandKind::Login { password, .. } if password.0.len() == 4096)
    );
    // 4097: BAD [TOOBIG], discarded, the next command read (RFC 7888 §5).
    let mut input = b"a APPEND INBOX {4097+}\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'm', 4097));
    input.extend_from_slice(b"\r\nb NOOP\r\n");
    for size in [0, 1, 7, 100, 4096] {
        let events = feed(&input, size, limits);
        assert_eq!(events.len(), 2);
        assert_eq!(
            err(&events[0]).fault,
            Fault::NonSyncLiteralTooBig { size: Some(4097) }
        );
        assert_eq!(
            response_text(err(&events[0])),
            "a BAD [TOOBIG] Non-synchronizing literal larger than 4096 octets.\r\n"
        );
        assert_eq!(cmd(&events[1]).tag, "b");
    }
    // A synchronizing one of any size within the limits.
    let events = feed(b"a APPEND INBOX {5000}\r\n", 0, limits);
    assert_eq!(events, [cont(5000, "a", "APPEND", true)]);
    // With LITERAL+ the same 4097 octets are fine.
    let events = feed(&input, 0, Limits::default());
    assert!(matches!(events[0], Event::Command(_)) && matches!(events[1], Event::Command(_)));
}

#[test]
fn errors_through_the_reader() {
    let events = check_chunks(
        b"a1 FOO\r\n+x NOOP\r\na2\r\na3 LOGIN {3}\r\nabc\r\na4 NOOP\r\n",
        Limits::default(),
    );
    assert_eq!(
        response_text(err(&events[0])),
        "a1 BAD Error in IMAP command FOO: Unknown command.\r\n"
    );
    assert_eq!(response_text(err(&events[1])), "* BAD Invalid tag.\r\n");
    assert_eq!(
        response_text(err(&events[2])),
        "a2 BAD Missing command.\r\n"
    );
    assert_eq!(events[3], cont(3, "a3", "LOGIN", false));
    assert_eq!(
        response_text(err(&events[4])),
        "a3 BAD Error in IMAP command LOGIN: Missing arguments.\r\n"
    );
    assert_eq!(cmd(&events[5]).tag, "a4");
    // A literal announced by a line without a valid tag: still framed, so
    // its octets are not taken for a command.
    let events = check_chunks(b"+ {9}\r\nz LOGOUT\r\na NOOP\r\n", Limits::default());
    assert_eq!(
        events[0],
        Event::Continue(Continuation {
            tag: None,
            verb: None,
            size: 9,
            message: false
        })
    );
    assert_eq!(response_text(err(&events[1])), "* BAD Invalid tag.\r\n");
    assert_eq!(cmd(&events[2]).tag, "a");
}

#[test]
fn idle_and_authenticate_lines() {
    let mut r = Reader::new(Limits::default());
    r.feed(b"a IDLE\r\nDO");
    assert_eq!(cmd(&r.next().unwrap()).kind, CommandKind::Idle);
    assert_eq!(r.next_line(100), None);
    r.feed(b"NE\r\nb NOOP\r\n");
    let line = r.next_line(100).unwrap().unwrap();
    assert!(is_done(&line));
    assert_eq!(cmd(&r.next().unwrap()).tag, "b");
    // AUTHENTICATE without SASL-IR: the session sends `+ ` and reads a
    // base64 line; `*` cancels.
    r.feed(b"c AUTHENTICATE PLAIN\r\nAGZyZWQAc2VjcmV0\r\nd AUTHENTICATE PLAIN\r\n*\r\n");
    assert!(matches!(
        cmd(&r.next().unwrap()).kind,
        CommandKind::Authenticate { initial: None, .. }
    ));
    assert_eq!(r.next_line(8192), Some(Ok(b"AGZyZWQAc2VjcmV0".to_vec())));
    assert!(matches!(
        cmd(&r.next().unwrap()).kind,
        CommandKind::Authenticate { .. }
    ));
    assert!(reader::is_sasl_cancel(&r.next_line(8192).unwrap().unwrap()));
    // A line over the limit: once, the rest skipped.
    r.feed(b"0123456789abcdef");
    assert_eq!(r.next_line(8), Some(Err(LineTooLong)));
    assert_eq!(r.next_line(8), None);
    r.feed(b"ghij\r\nDONE\r\n");
    assert_eq!(r.next_line(8), Some(Ok(b"DONE".to_vec())));
    r.feed(b"123456789\n");
    assert_eq!(r.next_line(8), Some(Err(LineTooLong)));
    r.feed(b"12345678\r\n");
    assert_eq!(r.next_line(8), Some(Ok(b"12345678".to_vec())));
    assert!(!r.has_pending());
}

#[test]
fn starttls_and_compress() {
    let mut r = Reader::new(Limits::default());
    // Nothing pipelined after STARTTLS is used.
    r.feed(b"a STARTTLS\r\nb LOGIN fred secret\r\n");
    assert_eq!(cmd(&r.next().unwrap()).kind, CommandKind::StartTls);
    assert!(r.has_pending());
    r.discard_pending();
    assert!(!r.has_pending());
    assert_eq!(r.next(), None);
    // After COMPRESS the rest is compressed data for the session.
    r.feed(b"c COMPRESS DEFLATE\r\n\x78\x9c\x01\x02");
    assert_eq!(
        cmd(&r.next().unwrap()).kind,
        CommandKind::Compress("DEFLATE".into())
    );
    assert_eq!(r.take_pending(), b"\x78\x9c\x01\x02");
    assert!(!r.has_pending());
    r.feed(b"d NOOP\r\n");
    assert_eq!(cmd(&r.next().unwrap()).tag, "d");
    // UTF-8 names after ENABLE UTF8=ACCEPT.
    r.set_utf8(true);
    r.feed("e SELECT \"Entw\u{fc}rfe\"\r\n".as_bytes());
    assert_eq!(
        cmd(&r.next().unwrap()).kind,
        CommandKind::Select {
            mailbox: mb("Entw\u{fc}rfe"),
            params: SelectParams::default()
        }
    );
}

#[test]
fn read_target_is_input() {
    let mut r = Reader::new(Limits::default());
    r.read_target(64).extend_from_slice(b"a NOOP\r\n");
    assert_eq!(cmd(&r.next().unwrap()).kind, CommandKind::Noop);
    *r.limits_mut() = small(10, 10, 10, false);
    assert_eq!(r.limits().line, 10);
    assert!(!r.options().utf8);
}

#[test]
fn sequence_sets_in_an_empty_mailbox() {
    let CommandKind::Fetch(f) = p("a FETCH 1:* FLAGS") else {
        panic!()
    };
    assert_eq!(f.set.resolve_seq(0), Err(sequence::SeqError::OutOfRange(1)));
    let CommandKind::Fetch(f) = p("a FETCH * FLAGS") else {
        panic!()
    };
    assert_eq!(f.set.resolve_seq(0), Err(sequence::SeqError::Empty));
    assert_eq!(f.set.resolve_seq(3), Ok(vec![3..=3]));
    let CommandKind::Fetch(f) = p("a UID FETCH 1:* FLAGS") else {
        panic!()
    };
    assert_eq!(f.set.resolve_uid(0), Ok(vec![]));
    assert_eq!(f.set.resolve_uid(17), Ok(vec![1..=17]));
}

#[test]
fn status_responses_for_sessions() {
    let mut out = Vec::new();
    response::tagged(
        &mut out,
        "a",
        Status::No,
        Some(&Code::TryCreate),
        "Mailbox doesn't exist: Foo",
    );
    assert_eq!(out, b"a NO [TRYCREATE] Mailbox doesn't exist: Foo\r\n");
    let caps = capabilities(&Capabilities {
        starttls: true,
        auth: &["PLAIN"],
        ..Default::default()
    });
    out.clear();
    response::untagged(
        &mut out,
        Status::Ok,
        Some(&Code::Capability(caps)),
        "Dovecot ready.",
    );
    assert_eq!(
        out,
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"
    );
}

// ---------------------------------------------------------------------
// Properties.

fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => Just(b'a'),
            2 => Just(b' '),
            2 => Just(b'\r'),
            3 => Just(b'\n'),
            1 => Just(b'{'),
            1 => Just(b'}'),
            1 => Just(b'+'),
            1 => Just(b'~'),
            1 => Just(b'"'),
            1 => Just(b'\\'),
            1 => Just(b'('),
            1 => Just(b')'),
            2 => b'0'..=b'9',
            1 => any::<u8>(),
        ],
        0..120,
    )
}

proptest! {
    /// Anything: no panic, and the same events in any chunks.
    #[test]
    fn reader_never_panics(bytes in wire_bytes(), chunk in 1usize..16, line in 1usize..40, literal in 0u64..20) {
        let limits = Limits { line, literal, message: literal * 2, literal_plus: literal % 2 == 0 };
        let whole = feed(&bytes, 0, limits);
        prop_assert_eq!(feed(&bytes, chunk, limits), whole);
    }

    /// Command words with arbitrary arguments: the parser never panics.
    #[test]
    fn parser_never_panics(
        verb in prop_oneof![
            Just("LOGIN"), Just("SELECT"), Just("FETCH"), Just("UID FETCH"), Just("SEARCH"),
            Just("STORE"), Just("APPEND"), Just("LIST"), Just("STATUS"), Just("SORT"),
            Just("THREAD"), Just("ID"), Just("CREATE"), Just("UID STORE"), Just("COPY"),
        ],
        args in "[ ()\\[\\]<>.:,*$%\"\\\\a-zA-Z0-9{}+~-]{0,60}",
    ) {
        let _ = parse_wire(format!("t {verb} {args}").as_bytes(), &opts());
    }

    /// Any mailbox name survives encoding and parsing, in both modes and
    /// through the reader.
    #[test]
    fn mailbox_names_round_trip(name in any::<String>(), utf8 in any::<bool>(), chunk in 1usize..8) {
        let mut wire = b"a SELECT ".to_vec();
        response::mailbox_name(&mut wire, &MailboxName::new(name.clone()), utf8);
        wire.extend_from_slice(b"\r\n");
        let mut r = Reader::new(Limits::default());
        r.set_utf8(utf8);
        let mut events = Vec::new();
        for c in wire.chunks(chunk) {
            r.feed(c);
            for ev in r.by_ref() {
                events.push(ev);
            }
        }
        let last = events.pop().unwrap();
        prop_assert!(events.iter().all(|e| matches!(e, Event::Continue(_))));
        prop_assert_eq!(
            cmd(&last).kind.clone(),
            CommandKind::Select { mailbox: MailboxName::new(name), params: SelectParams::default() }
        );
    }

    /// Sequence sets, flags and sections survive Display and parsing.
    #[test]
    fn sets_flags_sections_round_trip(
        ranges in proptest::collection::vec((0u32..6, 1u32..u32::MAX, 1u32..u32::MAX), 1..6),
        keyword in "[A-Za-z$][A-Za-z0-9$_.-]{0,10}",
        part in proptest::collection::vec(1u32..100, 0..4),
        names in proptest::collection::vec("[A-Za-z][A-Za-z0-9 -]{0,8}", 1..4),
    ) {
        let s = SequenceSet::Ranges(ranges.iter().map(|&(kind, a, b)| {
            let n = |v| SeqNumber::Value(v);
            match kind {
                0 => SeqRange { first: n(a), last: n(a) },
                1 => SeqRange { first: n(a), last: SeqNumber::Largest },
                2 => SeqRange { first: SeqNumber::Largest, last: SeqNumber::Largest },
                _ => SeqRange { first: n(a), last: n(b) },
            }
        }).collect());
        prop_assert_eq!(SequenceSet::parse(s.to_string().as_bytes()), Some(s.clone()));
        for flag in [Flag::Keyword(keyword.clone()), Flag::Extension(keyword.clone()), Flag::Seen, Flag::Draft] {
            prop_assert_eq!(Flag::parse(flag.to_string().as_bytes()), Some(flag.clone()));
        }
        let section = Section {
            part,
            text: Some(SectionText::HeaderFields { not: true, fields: names }),
        };
        let wire = format!("a FETCH {s} BODY.PEEK[{section}]<3.9>");
        prop_assert_eq!(
            parse_wire(wire.as_bytes(), &opts()).unwrap().kind,
            CommandKind::Fetch(FetchCommand {
                uid: false,
                set: s,
                items: vec![FetchAttr::BodySection { peek: true, section, partial: Some(Partial { offset: 3, length: 9 }) }],
                changed_since: None,
                vanished: false,
            })
        );
    }

    /// Any octets survive `string` and `astring` encoding and parsing.
    #[test]
    fn strings_round_trip(s in proptest::collection::vec(any::<u8>(), 0..40), utf8 in any::<bool>(), atom in any::<bool>()) {
        let mut wire = b"a LOGIN u ".to_vec();
        if atom {
            response::astring(&mut wire, &s, utf8);
        } else {
            response::string(&mut wire, &s, utf8);
        }
        let c = parse_wire(&wire, &opts()).unwrap();
        prop_assert_eq!(c.kind, CommandKind::Login { username: "u".into(), password: Secret(s) });
    }
}
