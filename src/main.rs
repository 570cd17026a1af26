//! The `poortwachter` binary: everything lives in the library; see `cli`.

// jemalloc instead of glibc's malloc: fewer instructions per request and a flatter RSS after
// allowlist swaps and load (benches/README.md, "Allocator").
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at start (`_RJEM_MALLOC_CONF` in the environment still
/// overrides them): a background thread returns freed pages after a second instead of ten,
/// so the memory of a replaced 100k-range allowlist goes back to the system between swaps
/// (RSS after 30 swaps: 77 MB with the defaults, 44 MB with these).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    poortwachter::cli::main()
}
