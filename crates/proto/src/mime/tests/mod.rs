//! The corpus in `corpus/`: each `NAME.eml` with what Dovecot 2.3 answered
//! for it in `NAME.dovecot` (recorded by `dovecot-expect.py` from a private
//! Dovecot; entries `=== ITEM LENGTH`, the value as it was on the wire).
//! Every entry is compared with our answer; the few places where we
//! differ on purpose are listed in [`DEVIATIONS`] with the reason.

use super::*;
use std::path::PathBuf;

/// (message, item, why we answer differently). An item ending in `*`
/// stands for every item that starts so.
const DEVIATIONS: &[(&str, &str, &str)] = &[
    (
        "header-only",
        "BODY[HEADER.FIELDS (SUBJECT FROM)]",
        "a header without an empty line: Dovecot's answer depends on its cache (with a fresh \
         cache it ends with an empty line, as we always do)",
    ),
    (
        "content-types",
        "BINARY.SIZE[*",
        "Dovecot computes BINARY.SIZE over the whole message and fails for every part when one \
         part has an unknown encoding (while BINARY[part] works); we give the part's size",
    ),
    ("encodings", "BINARY.SIZE[*", "as content-types"),
    (
        "qp-fake-boundary",
        "BINARY.SIZE[*",
        "as content-types, with the PARSE error of part 1",
    ),
    (
        "nested-alternative",
        "BINARY.SIZE[1]",
        "Dovecot says 301 and sends 306 octets for BINARY[1]; we say what we send",
    ),
    (
        "message-global",
        "BINARY.SIZE[]",
        "Dovecot says 506 and sends 528 octets for BINARY[]",
    ),
    (
        "message-global",
        "BINARY.SIZE[3]",
        "Dovecot says 0 and sends 22 octets for BINARY[3]",
    ),
    (
        "probe-hdr1",
        "BODY[HEADER.FIELDS (SUBJECT FROM)]",
        "as header-only",
    ),
    (
        "probe-struct11",
        "BINARY[]",
        "a base64 message/rfc822 part: Dovecot relabels it `binary` without decoding it; we \
         leave its header as it is",
    ),
    ("probe-struct11", "BINARY[TEXT]", "as BINARY[]"),
    (
        "probe-struct11",
        "BINARY.SIZE[*",
        "Dovecot's sizes are not those of what it sends",
    ),
    (
        "probe-struct6",
        "BINARY[]",
        "a quoted-printable message/rfc822: Dovecot cuts its answer short",
    ),
    (
        "probe-struct6",
        "BINARY.SIZE[*",
        "Dovecot's sizes are not those of what it sends",
    ),
    (
        "probe-struct7",
        "BINARY.SIZE[]",
        "Dovecot says 80 and sends 97 octets for BINARY[]",
    ),
];

fn deviation(name: &str, key: &str) -> bool {
    DEVIATIONS.iter().any(|(n, k, _)| {
        *n == name
            && (k
                .strip_suffix('*')
                .is_some_and(|prefix| key.starts_with(prefix))
                || *k == key)
    })
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/mime/tests/corpus")
}

fn entries(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let nl = i + data[i..].iter().position(|&b| b == b'\n').unwrap();
        let head = std::str::from_utf8(&data[i..nl]).unwrap();
        let head = head.strip_prefix("=== ").unwrap();
        let (key, len) = head.rsplit_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        out.push((key.to_string(), data[nl + 1..nl + 1 + len].to_vec()));
        i = nl + 1 + len + 1;
    }
    out
}

/// `1.2.HEADER.FIELDS (A B)` as a [`Section`].
fn section(spec: &str) -> Section {
    let (head, list) = match spec.split_once(" (") {
        Some((h, l)) => (
            h,
            l.trim_end_matches(')')
                .split(' ')
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        ),
        None => (spec, Vec::new()),
    };
    let mut part = Vec::new();
    let mut rest = Vec::new();
    for tok in head.split('.').filter(|s| !s.is_empty()) {
        match tok.parse::<u32>() {
            Ok(n) if rest.is_empty() => part.push(n),
            _ => rest.push(tok),
        }
    }
    let text = match rest.join(".").as_str() {
        "" => None,
        "HEADER" => Some(SectionText::Header),
        "TEXT" => Some(SectionText::Text),
        "MIME" => Some(SectionText::Mime),
        "HEADER.FIELDS" => Some(SectionText::HeaderFields(list)),
        "HEADER.FIELDS.NOT" => Some(SectionText::HeaderFieldsNot(list)),
        other => panic!("section {other}"),
    };
    Section { part, text }
}

/// `ITEM[spec]<a.b>` → (item, spec, partial).
fn split_item(key: &str) -> (&str, &str, Option<Partial>) {
    let open = key.find('[').unwrap();
    let close = key.rfind(']').unwrap();
    let partial = key[close + 1..].strip_prefix('<').map(|p| {
        let (a, b) = p.trim_end_matches('>').split_once('.').unwrap();
        Partial {
            start: a.parse().unwrap(),
            count: b.parse().unwrap(),
        }
    });
    (&key[..open], &key[open + 1..close], partial)
}

fn ours(m: &Message<'_>, key: &str) -> Vec<u8> {
    match key {
        "RFC822.SIZE" => return m.size().to_string().into_bytes(),
        "ENVELOPE" => return envelope(m.raw()),
        "BODY" => return body(m, false),
        "BODYSTRUCTURE" => return body(m, true),
        _ => {}
    }
    let (item, spec, partial) = split_item(key);
    let s = section(spec);
    let text = s.text == Some(SectionText::Text);
    match item {
        "BODY" => {
            let v = body_section(m, &s, partial);
            let mut out = format!("{{{}}}\r\n", v.len()).into_bytes();
            out.extend(v);
            out
        }
        "BINARY" => match binary_section(m, &s.part, text, partial) {
            Ok(b) => {
                let mut out = format!(
                    "{}{{{}}}\r\n",
                    if b.literal8 { "~" } else { "" },
                    b.data.len()
                )
                .into_bytes();
                out.extend(b.data);
                out
            }
            Err(e) => format!("! NO [{}] {}.", e.code(), e.text()).into_bytes(),
        },
        "BINARY.SIZE" => match binary_size(m, &s.part, text) {
            Ok(n) => n.to_string().into_bytes(),
            Err(e) => format!("! NO [{}] {}.", e.code(), e.text()).into_bytes(),
        },
        other => panic!("item {other}"),
    }
}

fn show(v: &[u8]) -> String {
    let s = format!("{:?}", String::from_utf8_lossy(v));
    if s.len() > 600 {
        format!("{}...", &s[..600])
    } else {
        s
    }
}

#[test]
fn corpus_matches_dovecot() {
    let mut names: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".dovecot")
                .map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 30, "corpus not found");
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in &names {
        let raw = std::fs::read(corpus().join(format!("{name}.eml"))).unwrap();
        let expected = std::fs::read(corpus().join(format!("{name}.dovecot"))).unwrap();
        let m = Message::parse(&raw);
        for (key, want) in entries(&expected) {
            if key == "BODYSTRUCTURE.FIRST" {
                continue;
            }
            let got = ours(&m, &key);
            compared += 1;
            if got == want || deviation(name, &key) {
                continue;
            }
            failures.push(format!(
                "{name} {key}\n  dovecot: {}\n  ours:    {}",
                show(&want),
                show(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every function on every prefix of every corpus message, and on some
/// damaged forms: nothing panics, and sizes add up.
#[test]
fn prefixes_and_damage_do_not_panic() {
    let mut names: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".eml")
                .map(String::from)
        })
        .collect();
    names.sort();
    for name in names {
        let raw = std::fs::read(corpus().join(format!("{name}.eml"))).unwrap();
        let step = (raw.len() / 40).max(1);
        let mut variants: Vec<Vec<u8>> = (0..raw.len())
            .step_by(step)
            .map(|n| raw[..n].to_vec())
            .collect();
        variants.push(
            raw.iter()
                .map(|&b| if b == b'\n' { b'\r' } else { b })
                .collect(),
        );
        variants.push(raw.iter().filter(|&&b| b != b'\r').copied().collect());
        for v in &variants {
            let m = Message::parse(v);
            assert_eq!(
                m.size() as usize,
                v.len()
                    + v.iter()
                        .enumerate()
                        .filter(|&(i, &b)| b == b'\n' && (i == 0 || v[i - 1] != b'\r'))
                        .count()
            );
            let _ = envelope(v);
            let _ = body(&m, true);
            for part in [&[][..], &[1], &[2], &[1, 1], &[2, 1], &[1, 2, 1]] {
                for text in [
                    None,
                    Some(SectionText::Header),
                    Some(SectionText::Text),
                    Some(SectionText::Mime),
                ] {
                    let s = Section {
                        part: part.to_vec(),
                        text,
                    };
                    let _ = body_section(
                        &m,
                        &s,
                        Some(Partial {
                            start: 3,
                            count: 10,
                        }),
                    );
                }
                let _ = binary_section(&m, part, false, None);
            }
        }
    }
}

/// The store may keep LF line ends: the answers are those of the CRLF form.
#[test]
fn lf_and_crlf_give_the_same_answers() {
    for name in [
        "nested-alternative",
        "rfc822-attached",
        "digest",
        "addresses",
        "boundary-edges",
        "params",
    ] {
        let raw = std::fs::read(corpus().join(format!("{name}.eml"))).unwrap();
        let lf: Vec<u8> = raw.iter().filter(|&&b| b != b'\r').copied().collect();
        let crlf: Vec<u8> = lf
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect();
        let (a, b) = (Message::parse(&lf), Message::parse(&crlf));
        assert_eq!(a.size(), b.size(), "{name}");
        assert_eq!(body(&a, true), body(&b, true), "{name}");
        assert_eq!(envelope(&lf), envelope(&crlf), "{name}");
        for part in [&[][..], &[1], &[2], &[1, 1], &[2, 1]] {
            let s = Section {
                part: part.to_vec(),
                text: None,
            };
            assert_eq!(
                body_section(&a, &s, None),
                body_section(&b, &s, None),
                "{name} {part:?}"
            );
        }
    }
}

fn nested(depth: usize) -> Vec<u8> {
    let mut s = String::from("Subject: deep\nContent-Type: multipart/mixed; boundary=\"b0.\"\n\n");
    for i in 1..depth {
        s += &format!(
            "--b{}.\nContent-Type: multipart/mixed; boundary=\"b{i}.\"\n\n",
            i - 1
        );
    }
    s += &format!("--b{}.\nContent-Type: text/plain\n\nleaf\n", depth - 1);
    for i in (0..depth).rev() {
        s += &format!("--b{i}.--\n");
    }
    s.into_bytes()
}

#[test]
fn nesting_limit() {
    // within the limit: every level is a multipart, the leaf is text
    let raw = nested(50);
    let m = Message::parse(&raw);
    let bs = String::from_utf8(body(&m, false)).unwrap();
    assert_eq!(bs.matches(r#" "mixed")"#).count(), 50);
    assert!(bs.contains(r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0)"#));
    // past it: the part at depth 99 is opaque, as in Dovecot
    let raw = nested(120);
    let m = Message::parse(&raw);
    let bs = String::from_utf8(body(&m, true)).unwrap();
    assert_eq!(bs.matches(r#" "mixed" ("boundary""#).count(), 99);
    assert!(bs.contains(r#"("application" "octet-stream" ("boundary" "b99.") NIL NIL "7bit" "#));
    assert!(!bs.contains(r#""text" "plain""#));
    // message/rfc822 nesting counts too
    let raw = "From: a@b\nContent-Type: message/rfc822\n\n".repeat(300) + "Subject: end\n\nx\n";
    let m = Message::parse(raw.as_bytes());
    assert!(m.part_count() <= 101);
    let _ = body(&m, true);
}

#[test]
fn parts_limit() {
    let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\n\n");
    for i in 0..50 {
        raw += &format!("--b\n\npart {i}\n");
    }
    raw += "--b--\n";
    let options = ParseOptions {
        max_parts: 10,
        ..ParseOptions::default()
    };
    let m = Message::parse_with(raw.as_bytes(), options);
    let root = m.root();
    assert_eq!(root.children().len(), 10);
    // the last part holds the rest, boundaries included
    let last = Section {
        part: vec![10],
        text: None,
    };
    let rest = body_section(&m, &last, None);
    assert!(
        rest.starts_with(b"part 9\r\n--b\r\n\r\npart 10"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert!(rest.ends_with(b"part 49\r\n--b--\r\n"));
    // the default limit holds 10000 parts, and a big message parses quickly
    let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\n\n");
    for _ in 0..20_000 {
        raw += "--b\n\nx\n";
    }
    let m = Message::parse(raw.as_bytes());
    assert_eq!(m.root().children().len(), 10_000);
}

#[test]
fn message_global_option() {
    let raw = std::fs::read(corpus().join("message-global.eml")).unwrap();
    let m = Message::parse_with(
        &raw,
        ParseOptions {
            message_global: true,
            ..ParseOptions::default()
        },
    );
    let bs = String::from_utf8(body(&m, false)).unwrap();
    assert!(
        bs.starts_with("((\"message\" \"global\" NIL NIL NIL \"7bit\" 64 (NIL {8}\r\n\u{fc}nicode"),
        "{bs}"
    );
}
