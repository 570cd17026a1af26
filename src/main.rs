//! The `poortwachter` binary: everything lives in the library; see `cli`.

// jemalloc instead of glibc's malloc: fewer instructions per request and a flatter RSS after
// allowlist swaps and load (benches/README.md, "Allocator").
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    poortwachter::cli::main()
}
