// What must hold for any bytes a connection starts with; shared by the fuzz target and the
// corpus replay on stable (`tests/fuzz_corpus.rs`).

use poortwachter::proxy_protocol::{parse, Accept, Parsed, MAX_V2_PAYLOAD};

/// The parser never panics; a verdict does not change as more bytes arrive; a header found
/// is found again in exactly its own bytes; the versions a listener accepts only narrow what
/// is accepted.
pub fn check(data: &[u8]) {
    let any = parse(data, Accept::ANY);
    for cut in [0, 1, data.len() / 2, data.len().saturating_sub(1)] {
        let cut = cut.min(data.len());
        match parse(&data[..cut], Accept::ANY) {
            Ok(Parsed::Incomplete) => {}
            Err(_) => assert!(any.is_err(), "refused at {cut} bytes, then {any:?}"),
            done @ Ok(Parsed::Done { .. }) => assert_eq!(done, any, "at {cut} bytes"),
        }
    }
    if let Ok(Parsed::Done { header, consumed }) = any {
        assert!(consumed <= data.len());
        assert!(consumed <= 16 + MAX_V2_PAYLOAD);
        assert_eq!(
            parse(&data[..consumed], Accept::ANY),
            Ok(Parsed::Done { header, consumed })
        );
        let narrow = parse(data, Accept::V1).or_else(|_| parse(data, Accept::V2));
        assert_eq!(narrow, any, "one of v1, v2 accepts what any accepts");
    }
    for accept in [Accept::V1, Accept::V2] {
        if let Ok(Parsed::Done { .. }) = parse(data, accept) {
            assert_eq!(parse(data, accept), any);
        }
    }
}
