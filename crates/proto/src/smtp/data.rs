//! The message after DATA (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing and
//! the end of data, without SMTP smuggling.
//!
//! The message ends only at `<CR><LF>.<CR><LF>` (the CRLF before the dot
//! may be the one that ended the DATA command). Bare LF and bare CR never
//! end or split the message: `<LF>.<LF>`, `<LF>.<CR><LF>` and `<CR>.<CR>`
//! are content. A bare LF ends a content line and is stored as CRLF
//! ("normalize", Postfix's default for smtpd_forbid_bare_newline), or the
//! message is refused once it has ended ("reject"). A bare CR is content.
//! The stored message has CRLF line ends and no dot stuffing.

/// What to do with a bare LF in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareLf {
    /// Treat it as CRLF.
    #[default]
    Normalize,
    /// Refuse the message (`550 5.5.2 Error: bare <LF> received`).
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line that followed a real CRLF.
    StartCrlf,
    /// At the start of a line that followed a bare LF.
    StartLf,
    /// `.` at the start of a line after CRLF.
    Dot,
    /// `.<CR>` at the start of a line after CRLF.
    DotCr,
    /// `.` at the start of a line after a bare LF.
    DotLf,
    /// Inside a line.
    Mid,
    /// Inside a line, after a CR.
    Cr,
}

/// Decodes the DATA stream. Feed it bytes until it says the message ended.
#[derive(Debug)]
pub struct DataDecoder {
    state: State,
    out: Vec<u8>,
    limit: u64,
    /// Bytes of message seen (also those past the limit).
    size: u64,
    bare_lf: bool,
    ended: bool,
}

/// The decoder's answer to [`DataDecoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All input used; the message goes on.
    NeedMore,
    /// The message ended after this many bytes of the input; the rest is
    /// the next command.
    Done(usize),
}

impl DataDecoder {
    /// A decoder keeping at most `limit` bytes of message (the size is
    /// still counted past it, so the session can say the message was too
    /// big once it ends).
    pub fn new(limit: u64) -> DataDecoder {
        DataDecoder {
            state: State::StartCrlf,
            out: Vec::with_capacity(8192.min(limit as usize)),
            limit,
            size: 0,
            bare_lf: false,
            ended: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size <= self.limit {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, input: &[u8]) -> Progress {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::StartCrlf | State::StartLf if b == b'.' => {
                    self.state = if self.state == State::StartCrlf {
                        State::Dot
                    } else {
                        State::DotLf
                    };
                    i += 1;
                }
                State::DotLf => {
                    // After a bare LF a dot line is never the end: a lone
                    // dot stays, a stuffed one is dropped.
                    if b == b'\r' || b == b'\n' {
                        self.push(b".");
                    }
                    self.state = State::Mid;
                }
                State::Dot => match b {
                    b'\r' => {
                        self.state = State::DotCr;
                        i += 1;
                    }
                    b'\n' => {
                        // `.<LF>`: not the end. A line of one dot.
                        self.bare_lf = true;
                        self.push(b".\r\n");
                        self.state = State::StartLf;
                        i += 1;
                    }
                    _ => {
                        // Stuffed dot: dropped.
                        self.state = State::Mid;
                    }
                },
                State::DotCr => {
                    if b == b'\n' {
                        self.ended = true;
                        return Progress::Done(i + 1);
                    }
                    // `.<CR>x`: the dot is stuffing, the CR is content.
                    self.push(b"\r");
                    self.state = State::Mid;
                }
                State::Cr => {
                    if b == b'\n' {
                        self.push(b"\r\n");
                        self.state = State::StartCrlf;
                        i += 1;
                    } else {
                        self.push(b"\r");
                        self.state = State::Mid;
                    }
                }
                State::StartCrlf | State::StartLf | State::Mid => {
                    // Copy the run of ordinary bytes at once.
                    let rest = &input[i..];
                    let run = rest
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(rest.len());
                    if run > 0 {
                        self.push(&rest[..run]);
                        i += run;
                        self.state = State::Mid;
                        continue;
                    }
                    if b == b'\r' {
                        self.state = State::Cr;
                    } else {
                        self.bare_lf = true;
                        self.push(b"\r\n");
                        self.state = State::StartLf;
                    }
                    i += 1;
                }
            }
        }
        Progress::NeedMore
    }

    /// Whether the end of data was seen.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The size of the message as received (after unstuffing).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the message was larger than the limit.
    pub fn too_big(&self) -> bool {
        self.size > self.limit
    }

    /// Whether a bare LF was seen.
    pub fn saw_bare_lf(&self) -> bool {
        self.bare_lf
    }

    /// The message (CRLF line ends, unstuffed).
    pub fn into_message(self) -> Vec<u8> {
        self.out
    }
}

/// BDAT content is not dot-stuffed; bare LFs become CRLF as in DATA's
/// normalize mode. Returns the content and whether a bare LF was seen.
pub fn normalize_newlines(content: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64);
    let mut bare = false;
    let mut prev = 0u8;
    for &b in content {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
            bare = true;
        }
        out.push(b);
        prev = b;
    }
    (out, bare)
}

/// Dot-stuffs a message for sending (RFC 5321 §4.5.2) and adds the end
/// marker. The message must have CRLF line ends.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_start = true;
    for &b in message {
        if at_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(input: &[u8]) -> (Vec<u8>, Option<usize>, bool) {
        let mut d = DataDecoder::new(1 << 20);
        let done = match d.feed(input) {
            Progress::Done(n) => Some(n),
            Progress::NeedMore => None,
        };
        let bare = d.saw_bare_lf();
        (d.into_message(), done, bare)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let (m, done, _) = decode(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        assert_eq!(m, b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(done, Some(b"Subject: x\r\n\r\nbody\r\n.\r\n".len()));
        // Empty message.
        assert_eq!(decode(b".\r\n").1, Some(3));
        // Smuggling attempts are content.
        for trick in [
            &b"a\n.\nMAIL FROM:<x>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x>\r\n",
            b"a\r.\rMAIL FROM:<x>\r\n",
            b"a\r\n.\nMAIL FROM:<x>\r\n",
            b"a\r.\r\nMAIL FROM:<x>\r\n",
        ] {
            let (_, done, _) = decode(trick);
            assert_eq!(done, None, "{:?}", String::from_utf8_lossy(trick));
        }
    }

    #[test]
    fn unstuffing_and_normalizing() {
        let (m, _, bare) = decode(b"..leading\r\n...\r\n.x\r\n\r\n.\r\n");
        assert_eq!(m, b".leading\r\n..\r\nx\r\n\r\n");
        assert!(!bare);
        let (m, done, bare) = decode(b"a\nb\r\n.\r\n");
        assert_eq!(m, b"a\r\nb\r\n");
        assert!(bare && done.is_some());
        let (m, _, _) = decode(b"x\ry\r\n.\r\n");
        assert_eq!(m, b"x\ry\r\n");
        // A lone dot line after a bare LF stays a dot line.
        let (m, done, _) = decode(b"a\n.\nb\r\n.\r\n");
        assert_eq!(m, b"a\r\n.\r\nb\r\n");
        assert!(done.is_some());
    }

    #[test]
    fn size_limit() {
        let mut d = DataDecoder::new(10);
        assert_eq!(d.feed(b"0123456789abcdef\r\n"), Progress::NeedMore);
        assert_eq!(d.feed(b".\r\n"), Progress::Done(3));
        assert!(d.too_big());
        assert_eq!(d.size(), 18);
    }

    #[test]
    fn stuffing() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n"), b"..a\r\nb\r\n.\r\n");
        assert_eq!(dot_stuff(b"x"), b"x\r\n.\r\n");
        assert_eq!(
            normalize_newlines(b"a\nb\r\n"),
            (b"a\r\nb\r\n".to_vec(), true)
        );
    }

    proptest! {
        /// Arbitrary bytes decode the same in one piece or in chunks.
        #[test]
        fn chunking_does_not_matter(bytes in proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a')], 0..64), chunk in 1usize..8) {
            let mut one = DataDecoder::new(1 << 20);
            let r1 = one.feed(&bytes);
            let mut many = DataDecoder::new(1 << 20);
            let mut used = 0;
            let mut r2 = Progress::NeedMore;
            for c in bytes.chunks(chunk) {
                match many.feed(c) {
                    Progress::NeedMore => used += c.len(),
                    Progress::Done(n) => { r2 = Progress::Done(used + n); break; }
                }
            }
            prop_assert_eq!(r1, r2);
            prop_assert_eq!(one.into_message(), many.into_message());
        }

        /// Any message with CRLF lines survives stuffing and decoding, fed
        /// in any chunks, byte for byte.
        #[test]
        fn round_trip(lines in proptest::collection::vec("[.a-z\r ]{0,12}", 0..12), chunk in 1usize..40) {
            let mut message = Vec::new();
            for l in &lines {
                // Bare CRs inside lines are allowed content; keep CRLF ends.
                let l = l.trim_end_matches('\r');
                message.extend_from_slice(l.as_bytes());
                message.extend_from_slice(b"\r\n");
            }
            let wire = dot_stuff(&message);
            let mut d = DataDecoder::new(1 << 20);
            let mut used = 0;
            // Also: any input decodes the same whatever the chunking.
            let whole = {
                let mut w = DataDecoder::new(1 << 20);
                let _ = w.feed(&wire);
                w.into_message()
            };
            let mut done = false;
            for c in wire.chunks(chunk) {
                match d.feed(c) {
                    Progress::NeedMore => used += c.len(),
                    Progress::Done(n) => { used += n; done = true; break; }
                }
            }
            prop_assert!(done);
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(&whole, &message);
            prop_assert_eq!(d.into_message(), message);
        }
    }
}
