//! The `poortwachter` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    poortwachter::cli::main()
}
