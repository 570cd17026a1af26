//! Replays the fuzz corpus of the PROXY protocol parser (`tests/fuzz/corpus/proxy_protocol`,
//! grown with `cargo +nightly fuzz run --fuzz-dir tests/fuzz proxy_protocol`) on stable: the
//! same invariants as the fuzz target, on every input it kept.

#[path = "fuzz/invariants.rs"]
mod invariants;

#[test]
fn every_corpus_input_keeps_the_invariants() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/proxy_protocol");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        invariants::check(&data);
        n += 1;
    }
    println!("{n} corpus inputs from {}", dir.display());
    assert!(
        n >= 20,
        "the corpus is there ({n} inputs in {})",
        dir.display()
    );
}
