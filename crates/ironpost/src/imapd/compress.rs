//! COMPRESS=DEFLATE (RFC 4978): after `OK`, both directions are one raw
//! deflate stream each (RFC 1951, no zlib header). What the server sends
//! is flushed with a sync flush at each write, so the client can inflate
//! every response as soon as it arrives.
//!
//! Input is inflated at most a buffer at a time, into the space the
//! reader offers: a small compressed input that inflates to gigabytes
//! never makes the session hold more than the reader's own limits allow.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The level Dovecot uses by default (`imap_compress_deflate_level`).
const LEVEL: u32 = 6;

pub struct Deflate {
    tx: Compress,
    rx: Decompress,
    /// Compressed bytes from the client not inflated yet.
    input: Vec<u8>,
    used: usize,
    /// The compressed form of the last write.
    output: Vec<u8>,
    /// The client ended its stream (a final block).
    ended: bool,
}

impl Deflate {
    /// Starts compression; `pending` is what the client sent after the
    /// COMPRESS command line and the reader had already buffered (it is
    /// compressed).
    pub fn new(pending: Vec<u8>) -> Deflate {
        Deflate {
            tx: Compress::new(Compression::new(LEVEL), false),
            rx: Decompress::new(false),
            input: pending,
            used: 0,
            output: Vec::new(),
            ended: false,
        }
    }

    /// `plain` compressed and sync-flushed.
    pub fn deflate(&mut self, plain: &[u8]) -> io::Result<&[u8]> {
        self.output.clear();
        let mut done = 0;
        loop {
            self.output.reserve((plain.len() - done) / 2 + 1024);
            let before = self.tx.total_in();
            self.tx
                .compress_vec(&plain[done..], &mut self.output, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            done += (self.tx.total_in() - before) as usize;
            // The flush is complete when all input is taken and the
            // compressor did not run out of room.
            if done == plain.len() && self.output.len() < self.output.capacity() {
                break;
            }
        }
        if self.output.capacity() > 1 << 20 && self.output.len() < 1 << 16 {
            self.output.shrink_to(1 << 16);
        }
        Ok(&self.output)
    }

    /// Inflates buffered input into the spare capacity of `out`; the
    /// number of bytes added (0: more compressed input is needed, or the
    /// stream ended).
    pub fn inflate(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        let before_in = self.rx.total_in();
        let before_len = out.len();
        let status = self
            .rx
            .decompress_vec(&self.input[self.used..], out, FlushDecompress::None)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.used += (self.rx.total_in() - before_in) as usize;
        if status == Status::StreamEnd {
            self.ended = true;
        }
        if self.used == self.input.len() {
            self.input.clear();
            self.used = 0;
        }
        Ok(out.len() - before_len)
    }

    /// Whether the client ended its compressed stream.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Where to read more compressed input (at least `n` bytes free).
    pub fn input_target(&mut self, n: usize) -> &mut Vec<u8> {
        if self.used > 0 {
            self.input.drain(..self.used);
            self.used = 0;
        }
        self.input.reserve(n);
        &mut self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A client's side, written with flate2's stream API.
    fn client_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.flush().unwrap();
        e.get_ref().clone()
    }

    #[test]
    fn each_write_inflates_on_its_own() {
        let mut z = Deflate::new(Vec::new());
        let mut wire = Vec::new();
        let first = b"* OK [CAPABILITY IMAP4rev1] ready\r\n".repeat(3);
        wire.extend_from_slice(z.deflate(&first).unwrap());
        // What has arrived so far inflates to the whole first write.
        let mut d = flate2::read::DeflateDecoder::new(&wire[..]);
        let mut got = vec![0; first.len()];
        d.read_exact(&mut got).unwrap();
        assert_eq!(got, first);
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        wire.extend_from_slice(z.deflate(&big).unwrap());
        let mut d = flate2::read::DeflateDecoder::new(&wire[..]);
        let mut got = vec![0; first.len() + big.len()];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got[first.len()..], &big[..]);
    }

    #[test]
    fn input_is_inflated_a_buffer_at_a_time() {
        let plain = b"a NOOP\r\n".repeat(100_000);
        let wire = client_deflate(&plain);
        assert!(wire.len() < 10_000);
        let mut z = Deflate::new(wire[..10].to_vec());
        z.input_target(0).extend_from_slice(&wire[10..]);
        let mut got = Vec::new();
        loop {
            let mut buf = Vec::with_capacity(16 * 1024);
            let n = z.inflate(&mut buf).unwrap();
            assert!(n <= 16 * 1024);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, plain);
        assert!(!z.ended());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut z = Deflate::new(vec![0xff; 64]);
        let mut buf = Vec::with_capacity(1024);
        assert!(z.inflate(&mut buf).is_err());
    }
}
