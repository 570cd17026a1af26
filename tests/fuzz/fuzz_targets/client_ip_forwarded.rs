#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../invariants/client_ip.rs");

fuzz_target!(|data: &[u8]| check_forwarded(data));
