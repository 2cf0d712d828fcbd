//! Any DATA stream: decoding never panics and does not depend on how the
//! input is cut; what dot_stuff writes decodes back to the same message.
#![no_main]

use ironpost_proto::smtp::data::{DataDecoder, Progress, dot_stuff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut one = DataDecoder::new(1 << 20);
    let r1 = one.feed(data);
    let cut = data.first().map_or(1, |&b| usize::from(b % 16) + 1);
    let mut many = DataDecoder::new(1 << 20);
    let mut used = 0;
    let mut r2 = Progress::NeedMore;
    for chunk in data.chunks(cut) {
        match many.feed(chunk) {
            Progress::NeedMore => used += chunk.len(),
            Progress::Done(n) => {
                r2 = Progress::Done(used + n);
                break;
            }
        }
    }
    assert_eq!(r1, r2);
    let message = one.into_message();
    assert_eq!(message, many.into_message());
    // A finished message is CRLF text: stuffing and decoding it again
    // gives it back.
    if matches!(r1, Progress::Done(_)) {
        let wire = dot_stuff(&message);
        let mut back = DataDecoder::new(1 << 20);
        assert_eq!(back.feed(&wire), Progress::Done(wire.len()));
        assert_eq!(back.into_message(), message);
    }
});
