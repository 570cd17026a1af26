#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../invariants/overrides.rs");

fuzz_target!(|data: &[u8]| check(data));
