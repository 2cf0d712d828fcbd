//! Any main.cf text: parsing and expanding every parameter never panics
//! or hangs (loops are errors).
#![no_main]

use std::path::Path;

use ironpost_conf::{Config, HostFacts, MainCf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(main) = MainCf::parse(Path::new("main.cf"), text) else {
        return;
    };
    let cfg = Config::from_main(main, "/etc/ironpost".into(), false, &HostFacts::default());
    for name in cfg.names() {
        let _ = cfg.expand(&name);
    }
    let _ = cfg.check();
});
