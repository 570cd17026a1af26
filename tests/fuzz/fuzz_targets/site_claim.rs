#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../invariants/site_claim.rs");

fuzz_target!(|data: &[u8]| check(data));
