//! The sandbox helper as a stand-alone binary, for this crate's tests and benchmarks (the
//! node's `souk` binary exposes the same [`souk_runtime::sandbox::helper::main`] as a hidden
//! subcommand).

fn main() -> std::process::ExitCode {
    souk_runtime::sandbox::helper::main(std::env::args_os().skip(1))
}
