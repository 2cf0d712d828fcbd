//! Command lines (and SASL response lines) from a byte stream.
//!
//! A line ends at LF; one CR before the LF is dropped, so CRLF and, as
//! Dovecot's `i_stream_next_line` accepts, a bare LF both end a line. A
//! bare CR elsewhere is part of the line.
//!
//! The limit counts the octets of a line with its line end, as RFC 2449 §4
//! counts them ("255 octets, including the terminating CRLF"). A line over
//! the limit is reported once, as soon as the limit is passed (whether or
//! not its end has arrived yet), and the rest of it, up to and including
//! its LF, is discarded. Dovecot disconnects at that point (`-ERR Input
//! line too long.` after login, `-ERR Input buffer full, aborting` before);
//! the session chooses.
//!
//! The buffer never drops bytes it was given: pipelined commands stay in
//! it until asked for, [`LineBuffer::has_pending`] tells whether any are
//! waiting (RFC 2595 §4: nothing pipelined after STLS may be executed; the
//! session calls [`LineBuffer::discard_pending`] before the handshake).

use std::fmt;

/// RFC 2449 §4: a command line is at most 255 octets with its CRLF.
pub const COMMAND_LINE_LIMIT: usize = 255;

/// The longest SASL response line Dovecot's login process takes
/// (`LOGIN_MAX_AUTH_BUF_SIZE`, 8192 octets). RFC 5034 §4 puts no limit on
/// continuation lines, and OAuth tokens are long.
pub const SASL_LINE_LIMIT: usize = 8192;

/// A line was longer than the limit; its rest is being discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("line too long")
    }
}

impl std::error::Error for TooLong {}

/// An input buffer cut into lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// Skipping the rest of an over-long line (already reported).
    discarding: bool,
}

impl LineBuffer {
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// Appends bytes read from the peer.
    pub fn extend(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read into without zeroing memory first (for readers
    /// that append to a `Vec`, such as tokio's `read_buf`): at least `n`
    /// bytes of spare capacity. Bytes appended to it are input.
    pub fn read_target(&mut self, n: usize) -> &mut Vec<u8> {
        self.compact();
        self.buf.reserve(n);
        &mut self.buf
    }

    fn compact(&mut self) {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos > 64 * 1024) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Bytes received and not yet handed out.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Whether the client sent more than has been handed out (pipelining).
    pub fn has_pending(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Marks `n` pending bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Drops everything pending, and forgets an over-long line being
    /// skipped (before a TLS handshake: RFC 2595 §4).
    pub fn discard_pending(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.discarding = false;
    }

    /// The next complete line without its line end; `Err(TooLong)` once
    /// for a line over `limit` octets (line end included; a limit under 1
    /// counts as 1). `None` when no whole line is buffered yet.
    pub fn next_line(&mut self, limit: usize) -> Option<Result<Vec<u8>, TooLong>> {
        let limit = limit.max(1);
        loop {
            let pending = &self.buf[self.pos..];
            if pending.is_empty() {
                return None;
            }
            if self.discarding {
                match pending.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.pos += i + 1;
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.pos = self.buf.len();
                        return None;
                    }
                }
            }
            // The LF must be among the first `limit` octets.
            let window = &pending[..pending.len().min(limit)];
            return match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let end = if i > 0 && pending[i - 1] == b'\r' {
                        i - 1
                    } else {
                        i
                    };
                    let line = pending[..end].to_vec();
                    self.pos += i + 1;
                    Some(Ok(line))
                }
                None if pending.len() >= limit => {
                    self.discarding = true;
                    Some(Err(TooLong))
                }
                None => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Out = Vec<Result<Vec<u8>, TooLong>>;

    /// Feeds `input` in chunks of `size` bytes (0: all at once, through
    /// `read_target`), collecting every line after each chunk.
    fn feed(input: &[u8], size: usize, limit: usize) -> Out {
        let mut b = LineBuffer::new();
        let mut out = Vec::new();
        if size == 0 {
            b.read_target(input.len()).extend_from_slice(input);
            while let Some(l) = b.next_line(limit) {
                out.push(l);
            }
            return out;
        }
        for chunk in input.chunks(size) {
            b.extend(chunk);
            while let Some(l) = b.next_line(limit) {
                out.push(l);
            }
        }
        out
    }

    fn ok(lines: &[&[u8]]) -> Out {
        lines.iter().map(|l| Ok(l.to_vec())).collect()
    }

    /// Every input gives the same lines fed whole and in chunks of 1, 2,
    /// 3, ... bytes.
    fn check(input: &[u8], limit: usize, want: &Out) {
        for size in 0..=input.len() {
            assert_eq!(
                &feed(input, size, limit),
                want,
                "{:?} in chunks of {size}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn line_ends() {
        check(
            b"USER jerry\r\nPASS a b\nSTAT\r\n",
            255,
            &ok(&[b"USER jerry", b"PASS a b", b"STAT"]),
        );
        // Empty lines are lines; a bare CR is content; only one CR before
        // the LF belongs to the line end.
        check(
            b"\r\n\nNO\rOP\r\nX\r\r\n",
            255,
            &ok(&[b"", b"", b"NO\rOP", b"X\r"]),
        );
        // A line not yet ended is not handed out.
        check(b"QUIT", 255, &Vec::new());
        check(b"QUIT\r", 255, &Vec::new());
        check(b"", 255, &Vec::new());
    }

    #[test]
    fn limit_counts_the_line_end() {
        // Exactly the limit with CRLF, and with a bare LF.
        check(b"abc\r\n", 5, &ok(&[b"abc"]));
        check(b"abcd\n", 5, &ok(&[b"abcd"]));
        // One over: reported once, the rest discarded, the next line kept.
        check(
            b"abcd\r\nOK\r\n",
            5,
            &vec![Err(TooLong), Ok(b"OK".to_vec())],
        );
        check(
            b"abcde\nQUIT\n",
            5,
            &vec![Err(TooLong), Ok(b"QUIT".to_vec())],
        );
        // Far over, with the line end arriving much later.
        let mut long = vec![b'x'; 1000];
        long.extend_from_slice(b"\r\nSTAT\r\n");
        check(&long, 255, &vec![Err(TooLong), Ok(b"STAT".to_vec())]);
        // Two long lines in a row: each reported once.
        check(
            b"aaaaaaaa\r\nbbbbbbbb\r\nok\r\n",
            5,
            &vec![Err(TooLong), Err(TooLong), Ok(b"ok".to_vec())],
        );
        // An over-long line never ended: reported once, nothing more.
        check(&[b'y'; 600], 255, &vec![Err(TooLong)]);
        // RFC 2449's limit: 253 octets and CRLF pass, 254 do not.
        let mut at = vec![b'a'; 253];
        at.extend_from_slice(b"\r\n");
        check(&at, COMMAND_LINE_LIMIT, &ok(&[&at[..253]]));
        let mut over = vec![b'a'; 254];
        over.extend_from_slice(b"\r\n");
        check(&over, COMMAND_LINE_LIMIT, &vec![Err(TooLong)]);
    }

    #[test]
    fn pending_and_pipelining() {
        let mut b = LineBuffer::new();
        b.extend(b"STLS\r\nUSER x\r\n");
        assert_eq!(b.next_line(255), Some(Ok(b"STLS".to_vec())));
        assert!(b.has_pending());
        assert_eq!(b.pending(), b"USER x\r\n");
        b.discard_pending();
        assert!(!b.has_pending());
        assert_eq!(b.next_line(255), None);
        // consume() hands raw bytes to the session.
        b.extend(b"abcQUIT\r\n");
        b.consume(3);
        assert_eq!(b.next_line(255), Some(Ok(b"QUIT".to_vec())));
        assert!(!b.has_pending());
        // discard_pending also ends the skipping of a long line.
        b.extend(b"0123456789");
        assert_eq!(b.next_line(5), Some(Err(TooLong)));
        b.discard_pending();
        b.extend(b"NOOP\r\n");
        assert_eq!(b.next_line(255), Some(Ok(b"NOOP".to_vec())));
    }

    #[test]
    fn limit_can_change_between_lines() {
        // The session reads a command with 255, then a SASL response with
        // a larger limit.
        let mut b = LineBuffer::new();
        let mut input = b"AUTH PLAIN\r\n".to_vec();
        input.extend_from_slice(&[b'Q'; 1000]);
        input.extend_from_slice(b"\r\n");
        b.extend(&input);
        assert_eq!(b.next_line(255), Some(Ok(b"AUTH PLAIN".to_vec())));
        assert_eq!(b.next_line(SASL_LINE_LIMIT), Some(Ok(vec![b'Q'; 1000])));
    }

    proptest! {
        /// Arbitrary input gives the same lines and errors in any chunks.
        #[test]
        fn chunking_does_not_matter(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), Just(b' ')], 0..80),
            chunk in 1usize..12,
            limit in 1usize..12,
        ) {
            prop_assert_eq!(feed(&bytes, chunk, limit), feed(&bytes, 0, limit));
        }
    }
}
