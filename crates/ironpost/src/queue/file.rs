//! The queue file format. Text records for the envelope, then the message
//! bytes, then an end marker:
//!
//! ```text
//! IRONPOST-QUEUE 1
//! arrival 1795374087.123456
//! sender :jerry@example.test
//! attr queue_id :35EC31BB80
//! attr client_name :localhost
//! rcpt - :tom@example.test :tom :- :-
//! content 123
//! <123 bytes of message, CRLF line ends>
//! end
//! ```
//!
//! Values are written as `:` followed by the value with `%`, white space and
//! control bytes percent-encoded (so `:` alone is the empty string, the null
//! sender); `-` stands for an absent optional value. The byte after `rcpt `
//! is the recipient's state: `-` pending, `D` done (delivered, bounced or
//! expired). It is overwritten in place when the recipient is done, so a
//! message to three domains where one fails is delivered once to the other
//! two and retried only for the third.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &str = "IRONPOST-QUEUE 1";
/// The largest envelope section read (recipients included).
const MAX_ENVELOPE: usize = 64 << 20;

/// The envelope of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub arrival: SystemTime,
    /// The envelope sender; empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<Recipient>,
    /// Other attributes in order: `envid`, `ret`, `body`, `smtputf8`,
    /// `client_name`, `client_addr`, `helo`, `protocol`, `sasl_username`, ...
    pub attrs: Vec<(String, String)>,
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address to deliver to.
    pub address: String,
    /// The address as the client gave it, before rewriting (X-Original-To).
    pub original: String,
    /// RFC 3461 ORCPT, as received (`rfc822;xtext`).
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY, as received (`SUCCESS,FAILURE`).
    pub notify: Option<String>,
    /// Delivered, bounced or expired: nothing more to do for it.
    pub done: bool,
    /// Where the state byte is in the file (0 before the file is written).
    pub(crate) state_offset: u64,
}

impl Recipient {
    pub fn new(address: &str) -> Recipient {
        Recipient {
            address: address.to_string(),
            original: address.to_string(),
            orcpt: None,
            notify: None,
            done: false,
            state_offset: 0,
        }
    }
}

impl Envelope {
    pub fn new(sender: &str, recipients: Vec<Recipient>) -> Envelope {
        Envelope {
            arrival: SystemTime::now(),
            sender: sender.to_string(),
            recipients,
            attrs: Vec::new(),
        }
    }

    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_attr(&mut self, key: &str, value: &str) {
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.attrs.push((key.to_string(), value.to_string())),
        }
    }
}

fn enc_value(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 1);
    // Only ASCII specials are escaped, so UTF-8 text stays readable.
    s.push(':');
    for ch in value.chars() {
        if ch.is_ascii() {
            let b = ch as u8;
            if b <= b' ' || b == b'%' || b == 0x7f {
                s.push_str(&format!("%{b:02X}"));
                continue;
            }
        }
        s.push(ch);
    }
    s
}

fn enc_opt(value: Option<&str>) -> String {
    match value {
        Some(v) => enc_value(v),
        None => "-".to_string(),
    }
}

fn dec(field: &str) -> Result<Option<String>, String> {
    if field == "-" {
        return Ok(None);
    }
    let Some(body) = field.strip_prefix(':') else {
        return Err(format!("bad value \"{field}\""));
    };
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = body
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in \"{field}\""))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|_| format!("invalid UTF-8 in \"{field}\""))
}

/// The attribute that names the queue ID a file was written for. A file
/// found under another name (a reused file whose new bytes a crash never
/// let reach the disk) is refused, not delivered again. Not shown in
/// [`Envelope::attrs`].
const ATTR_QUEUE_ID: &str = "queue_id";

/// Encodes a queue file. The recipients' state bytes are placed where
/// [`QueueFile::open`] will find them.
pub fn encode(env: &Envelope, content: &[u8]) -> Vec<u8> {
    encode_for(None, env, content)
}

/// [`encode`] for the file of queue ID `id`, which [`QueueFile::open`]
/// then checks against the file's name.
pub fn encode_for(id: Option<&str>, env: &Envelope, content: &[u8]) -> Vec<u8> {
    let mut head = String::with_capacity(256 + env.recipients.len() * 64);
    head.push_str(MAGIC);
    head.push('\n');
    let t = env.arrival.duration_since(UNIX_EPOCH).unwrap_or_default();
    head.push_str(&format!(
        "arrival {}.{:06}\n",
        t.as_secs(),
        t.subsec_micros()
    ));
    head.push_str(&format!("sender {}\n", enc_value(&env.sender)));
    if let Some(id) = id {
        head.push_str(&format!(
            "attr {} {}\n",
            enc_value(ATTR_QUEUE_ID),
            enc_value(id)
        ));
    }
    for (k, v) in &env.attrs {
        head.push_str(&format!("attr {} {}\n", enc_value(k), enc_value(v)));
    }
    for r in &env.recipients {
        head.push_str(&format!(
            "rcpt {} {} {} {} {}\n",
            if r.done { 'D' } else { '-' },
            enc_value(&r.address),
            enc_value(&r.original),
            enc_opt(r.orcpt.as_deref()),
            enc_opt(r.notify.as_deref()),
        ));
    }
    head.push_str(&format!("content {}\n", content.len()));
    let mut out = Vec::with_capacity(head.len() + content.len() + 4);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(content);
    out.extend_from_slice(b"end\n");
    out
}

/// An opened queue file: its envelope and where the message is.
#[derive(Debug)]
pub struct QueueFile {
    pub path: PathBuf,
    pub envelope: Envelope,
    content_offset: u64,
    content_len: u64,
    file: File,
}

fn corrupt(path: &Path, why: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt queue file {}: {why}", path.display()),
    )
}

impl QueueFile {
    /// Opens and parses a queue file. A file without its end marker (never
    /// finished, so never acknowledged) or otherwise malformed is an
    /// `InvalidData` error.
    pub fn open(path: &Path) -> io::Result<QueueFile> {
        let mut file = File::options().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        // Read the envelope: up to and including the "content N" line.
        let mut head = Vec::with_capacity(4096);
        let mut buf = [0u8; 8192];
        let content_line_end;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Err(corrupt(path, "no content record".into()));
            }
            let start = head.len();
            head.extend_from_slice(&buf[..n]);
            // Look for "\ncontent " followed by a full line.
            let search_from = start.saturating_sub(16);
            if let Some(pos) = find(&head[search_from..], b"\ncontent ") {
                let at = search_from + pos + 1;
                if let Some(nl) = head[at..].iter().position(|&c| c == b'\n') {
                    content_line_end = at + nl + 1;
                    break;
                }
            }
            if head.len() > MAX_ENVELOPE {
                return Err(corrupt(path, "envelope too large".into()));
            }
        }
        let text = std::str::from_utf8(&head[..content_line_end])
            .map_err(|_| corrupt(path, "envelope is not UTF-8".into()))?;
        let mut env = Envelope {
            arrival: UNIX_EPOCH,
            sender: String::new(),
            recipients: Vec::new(),
            attrs: Vec::new(),
        };
        let mut offset = 0u64;
        let mut content_len = None;
        let mut saw_sender = false;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let line_start = offset;
            offset += line.len() as u64;
            let line = line.trim_end_matches('\n');
            if i == 0 {
                if line != MAGIC {
                    return Err(corrupt(path, "not a queue file".into()));
                }
                continue;
            }
            let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
            let bad = |why: String| corrupt(path, format!("line {}: {why}", i + 1));
            match kind {
                "arrival" => {
                    let (s, us) = rest.split_once('.').unwrap_or((rest, "0"));
                    let secs: u64 = s.parse().map_err(|_| bad("bad arrival".into()))?;
                    let micros: u64 = us.parse().map_err(|_| bad("bad arrival".into()))?;
                    env.arrival =
                        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
                }
                "sender" => {
                    env.sender = dec(rest).map_err(bad)?.unwrap_or_default();
                    saw_sender = true;
                }
                "attr" => {
                    let (k, v) = rest.split_once(' ').ok_or_else(|| bad("bad attr".into()))?;
                    let k = dec(k).map_err(bad)?.unwrap_or_default();
                    let v = dec(v).map_err(bad)?.unwrap_or_default();
                    if k == ATTR_QUEUE_ID {
                        let name = path.file_name().and_then(|n| n.to_str());
                        if name != Some(v.as_str()) {
                            return Err(corrupt(
                                path,
                                format!("written for queue ID {v}, left under another name"),
                            ));
                        }
                    } else {
                        env.attrs.push((k, v));
                    }
                }
                "rcpt" => {
                    let fields: Vec<&str> = rest.split(' ').collect();
                    if fields.len() != 5 {
                        return Err(bad("bad rcpt".into()));
                    }
                    let done = match fields[0] {
                        "-" => false,
                        "D" => true,
                        _ => return Err(bad("bad recipient state".into())),
                    };
                    env.recipients.push(Recipient {
                        address: dec(fields[1]).map_err(bad)?.unwrap_or_default(),
                        original: dec(fields[2]).map_err(bad)?.unwrap_or_default(),
                        orcpt: dec(fields[3]).map_err(bad)?,
                        notify: dec(fields[4]).map_err(bad)?,
                        done,
                        state_offset: line_start + "rcpt ".len() as u64,
                    });
                }
                "content" => {
                    content_len = Some(
                        rest.parse::<u64>()
                            .map_err(|_| bad("bad content length".into()))?,
                    );
                }
                _ => return Err(bad(format!("unknown record \"{kind}\""))),
            }
        }
        let content_len = content_len.ok_or_else(|| corrupt(path, "no content record".into()))?;
        if !saw_sender {
            return Err(corrupt(path, "no sender record".into()));
        }
        let content_offset = content_line_end as u64;
        let end = content_offset
            .checked_add(content_len)
            .ok_or_else(|| corrupt(path, "bad content length".into()))?;
        let mut marker = [0u8; 4];
        if end + 4 != len || file.read_exact_at(&mut marker, end).is_err() || &marker != b"end\n" {
            return Err(corrupt(path, "incomplete (no end marker)".into()));
        }
        Ok(QueueFile {
            path: path.to_path_buf(),
            envelope: env,
            content_offset,
            content_len,
            file,
        })
    }

    /// The message: headers and body, CRLF line ends.
    pub fn read_content(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.content_len as usize];
        self.file.read_exact_at(&mut buf, self.content_offset)?;
        Ok(buf)
    }

    pub fn content_len(&self) -> u64 {
        self.content_len
    }

    /// Marks recipient `index` done before anything that could make a
    /// second delivery attempt. The byte is written, not fsync'd: a crash
    /// of the process keeps it (the page cache survives); a power failure
    /// may lose it, which means a second delivery, never a lost message.
    pub fn mark_done(&mut self, index: usize) -> io::Result<()> {
        let r = &mut self.envelope.recipients[index];
        if r.done {
            return Ok(());
        }
        self.file.write_all_at(b"D", r.state_offset)?;
        r.done = true;
        Ok(())
    }

    /// Whether every recipient is done.
    pub fn all_done(&self) -> bool {
        self.envelope.recipients.iter().all(|r| r.done)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        let mut env = Envelope::new(
            "",
            vec![
                Recipient::new("jerry@example.test"),
                Recipient {
                    orcpt: Some("rfc822;Jerry+x@example.test".into()),
                    notify: Some("SUCCESS,FAILURE".into()),
                    original: "jerry".into(),
                    ..Recipient::new("\"odd name\"@example.test")
                },
                Recipient::new("josé@exämple.test"),
            ],
        );
        env.set_attr("client_name", "localhost");
        env.set_attr("helo", "with space % and\nnewline");
        env
    }

    #[test]
    fn round_trip_and_mark_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("F00");
        let content = b"Subject: hi\r\n\r\ncontent 5\nend\n\r\n";
        let env = sample();
        std::fs::write(&path, encode(&env, content)).unwrap();
        let mut f = QueueFile::open(&path).unwrap();
        assert_eq!(f.envelope.sender, "");
        assert_eq!(f.envelope.attrs, env.attrs);
        let got: Vec<_> = f
            .envelope
            .recipients
            .iter()
            .map(|r| (&r.address, &r.original, &r.orcpt, &r.notify, r.done))
            .collect();
        let want: Vec<_> = env
            .recipients
            .iter()
            .map(|r| (&r.address, &r.original, &r.orcpt, &r.notify, r.done))
            .collect();
        assert_eq!(got, want);
        assert_eq!(f.read_content().unwrap(), content);
        let arrival_diff = env.arrival.duration_since(f.envelope.arrival).unwrap();
        assert!(arrival_diff < Duration::from_micros(1));

        f.mark_done(1).unwrap();
        let f2 = QueueFile::open(&path).unwrap();
        let states: Vec<bool> = f2.envelope.recipients.iter().map(|r| r.done).collect();
        assert_eq!(states, vec![false, true, false]);
        assert!(!f2.all_done());
    }

    #[test]
    fn truncated_or_damaged_files_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("F01");
        let full = encode(&sample(), b"Subject: x\r\n\r\nbody\r\n");
        for cut in 0..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let err = QueueFile::open(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        for pos in 0..full.len() {
            let mut bad = full.clone();
            bad[pos] ^= 0x55;
            std::fs::write(&path, &bad).unwrap();
            let _ = QueueFile::open(&path); // no panic
        }
    }
}
