//! Any SASL response: the mechanisms answer or refuse, never panic.
#![no_main]

use ironpost_proto::sasl::scram::{ScramHash, ScramKeys, ScramServer};
use ironpost_proto::sasl::{login::Login, plain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = plain::parse(data);
    let mut l = Login::new();
    let _ = l.start(Some(data));
    let _ = l.respond(data);
    let (first, last) = data.split_at(data.len() / 2);
    let mut s = ScramServer::new(ScramHash::Sha256);
    if s.client_first(first).is_ok() {
        let keys = ScramKeys::derive(ScramHash::Sha256, "pencil", b"salt", 1);
        let _ = s.server_first(&keys, "nonce");
        let _ = s.client_final(last);
    }
});
