#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../invariants/proxy_protocol.rs");

fuzz_target!(|data: &[u8]| check(data));
