//! Command lines from a byte stream.
//!
//! A line ends at LF; a CR before it is dropped (Postfix accepts commands
//! ended by a bare LF). A line longer than the limit is cut at the limit
//! and the rest, up to its end, is discarded, as Postfix's smtpd does with
//! line_length_limit. The buffer also hands out raw bytes (DATA, BDAT) so
//! that pipelined input is never lost between commands.

/// An input buffer cut into lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// Skipping the rest of an over-long line.
    discarding: bool,
}

impl LineBuffer {
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// Appends bytes read from the peer.
    pub fn feed(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read into without zeroing memory first (for readers
    /// that append to a `Vec`, such as tokio's `read_buf`): at least `n`
    /// bytes of spare capacity.
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

    /// Bytes waiting.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn has_pending(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Marks `n` pending bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// The next complete line, without its line end; lines over `limit`
    /// bytes are cut at `limit` (the rest is skipped). `None` when no whole
    /// line is buffered yet.
    pub fn next_line(&mut self, limit: usize) -> Option<Vec<u8>> {
        loop {
            let pending = &self.buf[self.pos..];
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
            let window = &pending[..pending.len().min(limit + 1)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = pending[..i].to_vec();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.pos += i + 1;
                    return Some(line);
                }
                None if pending.len() > limit => {
                    let line = pending[..limit].to_vec();
                    self.pos += limit;
                    self.discarding = true;
                    return Some(line);
                }
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_limits() {
        let mut b = LineBuffer::new();
        b.feed(b"EHLO a\r\nMAIL FROM:<x>\nRC");
        assert_eq!(b.next_line(2048).unwrap(), b"EHLO a");
        assert_eq!(b.next_line(2048).unwrap(), b"MAIL FROM:<x>");
        assert_eq!(b.next_line(2048), None);
        b.feed(b"PT TO:<y>\r\n");
        assert_eq!(b.next_line(2048).unwrap(), b"RCPT TO:<y>");
        b.feed(b"0123456789ABC\r\nNOOP\r\n");
        assert_eq!(b.next_line(10).unwrap(), b"0123456789");
        assert_eq!(b.next_line(10).unwrap(), b"NOOP");
        assert!(!b.has_pending());
        // A long line cut across reads.
        b.feed(b"0123456789AB");
        assert_eq!(b.next_line(10).unwrap(), b"0123456789");
        assert_eq!(b.next_line(10), None);
        b.feed(b"CD\r\nQUIT\r\n");
        assert_eq!(b.next_line(10).unwrap(), b"QUIT");
    }

    #[test]
    fn refeed_in_chunks() {
        let input = b"EHLO a\r\nMAIL FROM:<x>\r\nRCPT TO:<y>\nDATA\r\n";
        for size in 1..input.len() {
            let mut b = LineBuffer::new();
            let mut lines = Vec::new();
            for chunk in input.chunks(size) {
                b.feed(chunk);
                while let Some(l) = b.next_line(2048) {
                    lines.push(l);
                }
            }
            assert_eq!(lines.len(), 4, "chunk size {size}");
            assert_eq!(lines[3], b"DATA");
        }
    }
}
