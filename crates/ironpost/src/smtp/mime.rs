//! 8-bit MIME to 7-bit for servers without 8BITMIME (RFC 6152 §3), as
//! Postfix's smtp does: every body part with 8-bit text is re-encoded as
//! quoted-printable (RFC 2045 §6.7) and its Content-Transfer-Encoding
//! changed; multipart and message/rfc822 parts are converted part by part.
//! Headers are left as they are (8-bit headers need SMTPUTF8, not MIME).

/// One header field: its name in lower case and its raw bytes (folded
/// lines included, CRLF at the end).
struct Field<'a> {
    name: String,
    raw: &'a [u8],
}

/// Splits an entity into header fields and the body.
fn split(entity: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    while pos < entity.len() {
        let end = entity[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(entity.len(), |e| pos + e + 1);
        let line = &entity[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return (fields, &entity[end..]);
        }
        if (line[0] == b' ' || line[0] == b'\t') && !fields.is_empty() {
            let last = fields.last_mut().expect("a field to continue");
            let start = last.raw.as_ptr() as usize - entity.as_ptr() as usize;
            last.raw = &entity[start..end];
        } else {
            let name = line
                .iter()
                .position(|&b| b == b':')
                .map(|c| {
                    String::from_utf8_lossy(&line[..c])
                        .trim()
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            fields.push(Field { name, raw: line });
        }
        pos = end;
    }
    (fields, &entity[entity.len()..])
}

fn value(f: &Field<'_>) -> String {
    let text = String::from_utf8_lossy(f.raw);
    text.split_once(':')
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A parameter of a Content-Type value (`boundary`), unquoted.
fn param(v: &str, name: &str) -> Option<String> {
    for part in v.split(';').skip(1) {
        let (k, val) = part.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(name) {
            let val = val.trim();
            return Some(val.trim_matches('"').to_string());
        }
    }
    None
}

/// Converts a whole message (or body part).
pub fn downgrade(entity: &[u8]) -> Vec<u8> {
    downgrade_depth(entity, 0)
}

fn downgrade_depth(entity: &[u8], depth: usize) -> Vec<u8> {
    let (fields, body) = split(entity);
    if !body.iter().any(|b| *b >= 0x80) || depth > 20 {
        return entity.to_vec();
    }
    let ctype = fields
        .iter()
        .rfind(|f| f.name == "content-type")
        .map(value)
        .unwrap_or_else(|| "text/plain".into());
    let media = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let head_len = entity.len() - body.len();
    let mut out = Vec::with_capacity(entity.len() + entity.len() / 8);
    if media.starts_with("multipart/")
        && let Some(boundary) = param(&ctype, "boundary")
    {
        out.extend_from_slice(&entity[..head_len]);
        out.extend_from_slice(&multipart(body, &boundary, depth));
        return out;
    }
    if media == "message/rfc822" {
        for f in &fields {
            if f.name != "content-transfer-encoding" {
                out.extend_from_slice(f.raw);
            }
        }
        out.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
        out.extend_from_slice(&downgrade_depth(body, depth + 1));
        return out;
    }
    for f in &fields {
        if f.name != "content-transfer-encoding" {
            out.extend_from_slice(f.raw);
        }
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    out.extend_from_slice(&quoted_printable(body));
    out
}

/// The parts of a multipart body, each converted.
fn multipart(body: &[u8], boundary: &str, depth: usize) -> Vec<u8> {
    let delim = format!("--{boundary}");
    let mut out = Vec::with_capacity(body.len() + body.len() / 8);
    // Lines; a part runs from after a delimiter line to the CRLF before the
    // next one.
    let mut pos = 0;
    let mut part_start: Option<usize> = None;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |e| pos + e + 1);
        let line = &body[pos..end];
        let trimmed = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        let is_delim = trimmed.starts_with(delim.as_bytes())
            && trimmed[delim.len()..]
                .iter()
                .all(|b| *b == b'-' || *b == b' ' || *b == b'\t');
        if is_delim {
            match part_start {
                Some(s) => {
                    // The CRLF before the delimiter belongs to it.
                    let part_end = if pos >= 2 && &body[pos - 2..pos] == b"\r\n" {
                        pos - 2
                    } else {
                        pos
                    };
                    let part = &body[s..part_end.max(s)];
                    out.extend_from_slice(&downgrade_depth(part, depth + 1));
                    out.extend_from_slice(&body[part_end.max(s)..end]);
                }
                None => out.extend_from_slice(&body[..end]),
            }
            part_start = Some(end);
            if trimmed.ends_with(b"--") && trimmed.len() >= delim.len() + 2 {
                // The closing delimiter: the epilogue stays as it is.
                out.extend_from_slice(&body[end..]);
                return out;
            }
        }
        pos = end;
    }
    match part_start {
        // No closing delimiter: convert the last part to the end.
        Some(s) => out.extend_from_slice(&downgrade_depth(&body[s..], depth + 1)),
        None => out.extend_from_slice(&quoted_printable(body)),
    }
    out
}

/// Quoted-printable with CRLF line ends kept as line breaks and soft
/// breaks keeping lines within 76 characters.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(body.len() + body.len() / 4);
    let lines = body.split_inclusive(|&b| b == b'\n');
    for line in lines {
        let (text, eol) = if let Some(t) = line.strip_suffix(b"\r\n") {
            (t, true)
        } else if let Some(t) = line.strip_suffix(b"\n") {
            (t, true)
        } else {
            (line, false)
        };
        let mut col = 0;
        for (i, &b) in text.iter().enumerate() {
            let last = i + 1 == text.len();
            let plain = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let width = if plain { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if plain {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
            col += width;
        }
        if eol {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_8bit_message() {
        let m = b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe =x \r\n.\r\n";
        let out = downgrade(m);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe =3Dx=20\r\n.\r\n"
        );
        // 7-bit messages are left alone.
        let seven = b"Subject: x\r\n\r\nplain\r\n";
        assert_eq!(downgrade(seven), seven.to_vec());
    }

    #[test]
    fn long_lines_get_soft_breaks() {
        let body = [b"\xe9".repeat(40), b"\r\n".to_vec()].concat();
        let qp = String::from_utf8(quoted_printable(&body)).unwrap();
        assert!(qp.lines().all(|l| l.len() <= 76), "{qp}");
        assert!(qp.contains("=\r\n"));
        assert!(qp.ends_with("=E9\r\n"));
    }

    #[test]
    fn multipart_parts_one_by_one() {
        let m = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii only\r\n--b1\r\nContent-Type: text/plain; charset=latin1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n--b1--\r\nepilogue\r\n";
        let out = String::from_utf8(downgrade(m)).unwrap();
        assert_eq!(
            out,
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii only\r\n--b1\r\nContent-Type: text/plain; charset=latin1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n--b1--\r\nepilogue\r\n"
        );
        assert!(out.is_ascii());
    }
}
