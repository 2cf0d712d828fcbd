//! Any command line: parsing never panics, and the line buffer gives the
//! same lines however the input is cut.
#![no_main]

use ironpost_proto::smtp::command;
use ironpost_proto::smtp::line::LineBuffer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut whole = LineBuffer::new();
    whole.feed(data);
    let mut lines = Vec::new();
    while let Some(l) = whole.next_line(2048) {
        let text = String::from_utf8_lossy(&l);
        let _ = command::parse(&text);
        lines.push(l);
    }
    let cut = data.first().map_or(1, |&b| usize::from(b % 16) + 1);
    let mut parts = LineBuffer::new();
    let mut again = Vec::new();
    for chunk in data.chunks(cut) {
        parts.feed(chunk);
        while let Some(l) = parts.next_line(2048) {
            again.push(l);
        }
    }
    assert_eq!(lines, again);
});
